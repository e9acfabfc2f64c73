"""Each fast path of ``oauth2_sync.fast`` against the readable reference it shadows.

Property tests: on generated input, including the boundary cases, the fast path gives
the reference's answer (or, for a shortcut that may say "not known", never a wrong one).
The references here are written independently of the code they check, so a mistake
in a rule cannot hide in both.
"""

from __future__ import annotations

import gc
import tempfile
import weakref
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from oauth2_sync import schemacheck
from oauth2_sync.fast.gcpause import HAND_OVER_ABOVE, collector_paused
from oauth2_sync.fast.glob import glob_files
from oauth2_sync.fast.prefix import relative_fast, relative_reference
from oauth2_sync.fast.redirect import plainly_valid
from oauth2_sync.fast.schema import clients_valid
from oauth2_sync.fast.subset import subset_valid
from oauth2_sync.redirects import redirect_uri_problem
from oauth2_sync.render import escape

# The fast path must agree with jsonschema, both ways, on arbitrary client files.
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 315360002),
    st.sampled_from([0.0, 1.0, 2.5, -1.0, 3600.0]),
    st.text(max_size=12),
    st.sampled_from(
        [
            "read",
            "write",
            "acme",
            "acme-x",
            "acme-x\n",
            "never",
            "12h",
            "0s",
            "1w",
            # Durations around the maximum, checked once converted to seconds.
            "5256000m",
            "5256001m",
            "3650d",
            "3651d",
            "521w",
            "1000000w",
            "99999999999999999999s",
            "implicit",
            "password",
            "authorization_code",
            "refresh_token",
            # Open vocabularies: scope tokens and grant names or URIs (RFC 6749).
            "client_credentials",
            "openid",
            "api:read",
            "urn:ietf:params:oauth:grant-type:device_code",
            'a"b',
            "a\\b",
            "a b",
            "Client_Credentials",
            "x" * 201,
            "a@b.example",
            "a@b",
            " ",
            "A",
            # token_endpoint_auth_method: the two the schema allows, and others.
            "none",
            "client_secret_basic",
            "client_secret_post",
            "None",
        ]
    ),
)
_VALUES = st.one_of(_SCALARS, st.lists(_SCALARS, max_size=3))
_KEYS = st.sampled_from(
    [
        "client_id",
        "name",
        "email",
        "partner",
        "scopes",
        "grant_types",
        "redirect_uris",
        "access_token_ttl",
        "refresh_token_ttl",
        "restrict_to_partner_users",
        "token_endpoint_auth_method",
        "other",
    ]
)
_BASE = {"client_id": "acme-x", "name": "X", "email": "x@acme.example", "partner": "acme"}


@hypothesis_settings(max_examples=1500, deadline=None)
@given(changes=st.dictionaries(_KEYS, _VALUES, max_size=4), drop=st.sets(_KEYS, max_size=2))
def test_fast_path_agrees_with_jsonschema(changes: dict[str, Any], drop: set[str]) -> None:
    entry = {k: v for k, v in {**_BASE, **changes}.items() if k not in drop}
    data = {"clients": [entry]}
    slow_ok = not list(schemacheck.validator("clients").iter_errors(data))
    assert clients_valid(data) == slow_ok


@pytest.mark.parametrize(
    ("method", "valid"),
    [("none", True), ("client_secret_basic", True), ("client_secret_post", False),
     (None, False), ("None", False), (True, False), (["none"], False)],
)
def test_fast_path_agrees_on_auth_methods(method: object, valid: bool) -> None:
    data = {"clients": [{**_BASE, "token_endpoint_auth_method": method}]}
    schema = schemacheck.load_schema("clients")
    assert clients_valid(data) is valid
    assert _jsonschema_valid("clients", data) is valid
    assert subset_valid(schema, data, schema) is valid


@pytest.mark.parametrize(
    "data",
    [None, [], {"clients": []}, {"clients": [], "x": 1}, {"clients": {}}, {"clients": [[]]}],
)
def test_fast_path_agrees_on_file_shapes(data: Any) -> None:
    slow_ok = not list(schemacheck.validator("clients").iter_errors(data))
    assert clients_valid(data) == slow_ok


def _jsonschema_valid(name: str, data: Any) -> bool:
    return not list(schemacheck.validator(name).iter_errors(data))


@hypothesis_settings(max_examples=800, deadline=None)
@given(changes=st.dictionaries(_KEYS, _VALUES, max_size=4), drop=st.sets(_KEYS, max_size=2))
def test_schema_subset_says_valid_only_when_jsonschema_does(
    changes: dict[str, Any], drop: set[str]
) -> None:
    entry = {k: v for k, v in {**_BASE, **changes}.items() if k not in drop}
    schema = schemacheck.load_schema("clients")
    if subset_valid(schema, {"clients": [entry]}, schema):
        assert _jsonschema_valid("clients", {"clients": [entry]})


def _settings_base() -> dict[str, Any]:
    return {
        "registry": {"url": "local:.oauth2-sync/registry.db", "page_size": 500},
        "clients": {"paths": ["clients/**/*.yaml"]},
        "teams": {"payments": {"paths": ["clients/payments/**"], "partners": ["acme"]}},
        "policy": {"errors": ["implicit-grant"], "max_refresh_token_ttl": "90d"},
        "safety": {"max_changes": 50, "max_deletes_percent": 10},
        "prune": False,
    }


_SETTINGS_PATHS = st.sampled_from([
    ("registry",), ("registry", "url"), ("registry", "page_size"), ("registry", "retries"),
    ("registry", "auth"), ("registry", "auth", "grant_type"), ("registry", "other"),
    ("clients", "paths"), ("teams",), ("teams", "payments"), ("teams", "payments", "paths"),
    ("teams", "payments", "partners"), ("teams", "Bad Name"), ("policy", "errors"),
    ("policy", "max_refresh_token_ttl"), ("policy", "allowed_grant_types"),
    ("safety", "max_changes"), ("safety", "max_deletes_percent"), ("prune",), ("other",),
    ("secrets",), ("secrets", "directory"),
])
_SETTINGS_VALUES = st.one_of(
    _SCALARS, st.lists(_SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["paths", "partners", "url", "x"]), _SCALARS, max_size=2),
)


@hypothesis_settings(max_examples=800, deadline=None)
@given(st.lists(st.tuples(_SETTINGS_PATHS, _SETTINGS_VALUES), max_size=3))
def test_schema_subset_decides_settings_only_when_jsonschema_agrees(
    edits: list[tuple[tuple[str, ...], Any]]
) -> None:
    data = _settings_base()
    for path, value in edits:
        node: Any = data
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[path[-1]] = value
    schema = schemacheck.load_schema("settings")
    if subset_valid(schema, data, schema):
        assert _jsonschema_valid("settings", data)


def test_schema_subset_decides_the_usual_documents() -> None:
    """Where it matters, it answers: the plain settings and client files are decided."""
    settings, clients = schemacheck.load_schema("settings"), schemacheck.load_schema("clients")
    assert subset_valid(settings, _settings_base(), settings)
    assert subset_valid(clients, {"clients": [{**_BASE, "access_token_ttl": 3600}]}, clients)
    assert not subset_valid(clients, {"clients": [{**_BASE, "access_token_ttl": "1h"}]}, clients)
    assert not subset_valid(settings, {**_settings_base(), "other": 1}, settings)


# Redirect URIs: an independent reading of the rules for https URIs (RFC 6749 §3.1.2).


def _https_acceptable(uri: str) -> bool:
    """Whether an ``https://`` URI is acceptable, read from the rules without urlsplit."""
    assert uri.startswith("https://")
    if any(c in ",*\\#" or c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        return False  # comma, wildcard, backslash, fragment (even empty), space, control
    authority = uri[len("https://") :]
    for sign in "/?":
        authority = authority.split(sign, 1)[0]
    if any(c in authority for c in "@%[]"):
        return False  # user information, percent-encoded host, broken IPv6 literal
    return authority.rpartition(":")[0 if ":" in authority else 2] != ""


_HOSTS = st.text(alphabet="aZ09.-", max_size=12)
_PORTS = st.sampled_from(["", ":", ":8443", ":x", "@x", "]", "%41"])
_TAILS = st.one_of(
    st.sampled_from(["", "#", "/cb#", "/cb#x", "?q=1#", "/c,b", "/c*", "/c\\b", "/c b"]),
    st.tuples(st.sampled_from(["/", "?", "#"]), st.text(max_size=20)).map("".join),
)


@hypothesis_settings(max_examples=1500)
@given(_HOSTS, _PORTS, _TAILS)
def test_redirect_fast_path_accepts_only_what_the_rules_accept(
    host: str, port: str, tail: str
) -> None:
    uri = f"https://{host}{port}{tail}"
    acceptable = _https_acceptable(uri)
    if plainly_valid(uri):
        assert acceptable
    assert (redirect_uri_problem(uri) is None) == acceptable


@pytest.mark.parametrize(
    "uri", ["https://app.example/cb#", "https://app.example#", "https://app.example/cb?x#"]
)
def test_an_empty_fragment_is_a_fragment(uri: str) -> None:
    assert not plainly_valid(uri)
    assert redirect_uri_problem(uri) == "has a fragment (#...), which RFC 6749 §3.1.2 forbids"


@pytest.mark.parametrize(
    "uri", ["https://a", "https://a:", "https://a:443", "https://a/", "https://a?", "https://a/c?d=e"]
)
def test_the_redirect_fast_path_takes_the_plain_boundary_cases(uri: str) -> None:
    assert plainly_valid(uri)
    assert _https_acceptable(uri)


_APP_TAILS = st.text(alphabet="/?=.:@%#,*\\ a1[]", max_size=8)


@hypothesis_settings(max_examples=600, deadline=None)
@given(
    st.sampled_from([
        "http://127.0.0.1", "http://127.0.0.1:", "http://127.0.0.1:8400", "http://127.0.0.2",
        "http://127.0.0.1.evil.example", "http://localhost", "com.example.app:",
        "com.example.app:/", "com.example.app://", "Com.Example:", "app:", "c.a+b-1:",
        "com..x:", "com.x-:/",
    ]),
    _APP_TAILS,
)
def test_native_app_redirects_on_the_fast_path_are_accepted_by_the_rules(
    start: str, tail: str
) -> None:
    from oauth2_sync.redirects import _parsed_uri_problem

    uri = start + tail
    if plainly_valid(uri):
        assert _parsed_uri_problem(uri) is None, uri
    assert redirect_uri_problem(uri) == _parsed_uri_problem(uri)


@pytest.mark.parametrize(
    "uri", ["http://127.0.0.1:8400/cb", "http://127.0.0.1/", "com.example.app:/cb",
            "com.example.app:/"],
)
def test_the_redirect_fast_path_takes_the_mix_s_native_app_uris(uri: str) -> None:
    assert plainly_valid(uri)


# Glob: os.scandir against Path.glob on generated trees.

_NAMES = st.sampled_from(["a", "b", ".h", "x.yaml", "y.yml", ".z.yaml", "[x]", "c.yaml"])
_PATTERNS = [
    "**/*.yaml", "clients/**/*.yaml", "*/*.yml", "clients/a/*", "**", "*", "clients/?/*.yaml",
    "clients/[ab]/*.yaml", "./clients/x.yaml", "clients/**/**/*.y*ml", "clients/*/c.yaml",
    "**/b/*", "clients/[[]x]/*",
]


@hypothesis_settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_NAMES, min_size=1, max_size=4), max_size=12), st.booleans())
def test_glob_finds_what_path_glob_finds(files: list[list[str]], link: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for parts in files:
            path = root.joinpath("clients", *parts)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            except OSError:  # a name already made a file is now wanted as a folder
                continue
        if link and (root / "clients").is_dir():
            (root / "clients" / "linked").symlink_to(root / "clients", target_is_directory=True)
        for pattern in _PATTERNS:
            # As a set: "**/**" may find a file twice, and discovery keeps it once.
            fast = set(glob_files(str(root), pattern.split("/")))
            reference = {str(p) for p in root.glob(pattern) if p.is_file()}
            assert fast == reference, pattern


# Path prefix: comparing text against resolving both paths.

_SEGMENTS = st.text(alphabet="ab-_.", min_size=1, max_size=3).filter(lambda s: s not in (".", ".."))


@hypothesis_settings(max_examples=500)
@given(
    st.sampled_from([".", "cfg", "cfg/sub", "/abs/cfg", "/"]),
    st.lists(_SEGMENTS, min_size=1, max_size=4),
    st.sampled_from(["", "cfg/", "cfg/sub/", "/abs/cfg/", "/abs/", "other/", "/"]),
    st.booleans(),
)
def test_relative_path_fast_path_agrees_with_resolving(
    root: str, segments: list[str], start: str, as_path: bool
) -> None:
    # Discovery writes file names under the root as given: no ".", ".." or empty segment,
    # no final "/" (outside that domain the text and the resolved path may differ).
    name = start + "/".join(segments)
    file: Path | str = Path(name) if as_path else name
    fast = relative_fast(Path(root), file)
    if fast is not None:
        assert fast == relative_reference(Path(root), file)


def test_relative_path_fast_path_leaves_the_rest_to_the_reference() -> None:
    assert relative_fast(Path("cfg"), "cfg/") is None
    assert relative_fast(Path("cfg"), "cfg") is None
    assert relative_fast(Path("cfg"), "other/x.yaml") is None
    assert relative_fast(Path("."), "/abs/x.yaml") is None
    assert relative_fast(Path("."), "x.yaml") == "x.yaml"
    assert relative_fast(Path("/abs"), Path("/abs/a/b.yaml")) == "a/b.yaml"


# The garbage collector pause: no reference to compare with (no pause builds the same
# data); what it must not break.


def test_what_is_built_while_the_collector_pauses_joins_the_oldest_generation() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        built = [[f"acme-{i}"] for i in range(2 * HAND_OVER_ABOVE)]  # lists: always tracked
    assert gc.isenabled()
    assert gc.get_count()[0] < 100  # the young generation does not hold them
    assert gc.get_freeze_count() == 0  # and nothing stays frozen
    assert any(d is built[0] for d in gc.get_objects(generation=2))


def test_after_a_small_pause_the_collector_goes_on_as_usual() -> None:
    callers = [[i] for i in range(100)]  # alive now, garbage soon: the young generation's
    with collector_paused():
        built = [[i] for i in range(100)]
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert id(callers[0]) not in oldest and id(built[0]) not in oldest


def test_the_collector_pause_leaves_a_program_s_frozen_objects_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with collector_paused():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_small_pauses_in_a_loop_leave_young_garbage_to_young_collections() -> None:
    class Marker:
        pass

    markers = []
    for _ in range(200):
        junk: list[object] = [Marker()]
        junk.append(junk)  # a cycle: only the collector frees it
        markers.append(weakref.ref(junk[0]))
        del junk
        with collector_paused():
            pass
    gc.collect(1)
    # Handed to the oldest generation, they would wait for a full collection: in a
    # loop of validations, a gigabyte of them.
    assert [m for m in markers if m() is not None] == []


# The terminal escape's shortcut (text returned as it is) must not skip a quote.


@pytest.mark.parametrize(
    ("text", "escaped"),
    [('say "hi"', 'say \\"hi\\"'), ('"', '\\"'), ("a\\b", "a\\\\b"), ("plain", "plain")],
)
def test_the_escape_shortcut_leaves_no_quote_or_backslash(text: str, escaped: str) -> None:
    assert escape(text) == escaped


# --- fast.resolver: PyYAML's own resolve -------------------------------------------------

_SCALARS = st.one_of(
    st.text(max_size=12),
    st.sampled_from([
        "", "~", "null", "Null", "true", "yes", "No", "on", "OFF", "y", "n", "0", "-1", "+7",
        "0600", "0x1F", "0b101", "0o17", "1_000", "1:30", "190:20:30", "1.5", ".5", "1e3",
        "1.0e+3", ".inf", "-.Inf", ".nan", "2026-11-27", "2026-11-27T12:00:00Z", "<<", "=",
        "12h", "never", "-", "--", "read",
    ]),
)


@given(_SCALARS, st.booleans(), st.booleans())
def test_the_resolver_fast_path_answers_as_pyyaml(
    value: str, plain: bool, quoted_implicit: bool
) -> None:
    import yaml

    from oauth2_sync.fast.resolver import resolve

    reference = yaml.SafeLoader("")
    for kind in (yaml.ScalarNode, yaml.MappingNode, yaml.SequenceNode):
        implicit = (plain, quoted_implicit)
        assert resolve(kind, value, implicit) == reference.resolve(kind, value, implicit)  # type: ignore[no-untyped-call]


@given(_SCALARS, st.booleans(), st.booleans())
def test_the_strict_resolver_is_the_fast_path_then_the_yaml11_check(
    value: str, plain: bool, quoted_implicit: bool
) -> None:
    import yaml

    from oauth2_sync import yaml11
    from oauth2_sync.fast.resolver import STR, resolve, resolve_strict

    for kind in (yaml.ScalarNode, yaml.MappingNode, yaml.SequenceNode):
        implicit = (plain, quoted_implicit)
        tag = resolve(kind, value, implicit)
        expected = yaml11.TAG if tag != STR and yaml11.only_yaml11(tag, value) else tag
        assert resolve_strict(kind, value, implicit) == expected


_TOKENS = st.lists(st.sampled_from(["read", "write", "password", "implicit", "b", "a", ""]),
                   max_size=5)


@given(st.lists(_TOKENS, max_size=8))
def test_shared_sets_are_the_normal_sets(lists: list[list[str]]) -> None:
    from oauth2_sync.model import normal_set, shared_set

    for values in lists + lists:  # the second time from the cache
        assert shared_set(values) == normal_set(values)
        assert shared_set(iter(values)) == normal_set(values)


def test_shared_sets_stop_caching_at_their_bound_and_stay_right() -> None:
    from oauth2_sync import model

    for n in range(model._SHARED_MAX + 10):
        values = [f"scope{n}", "read", f"scope{n}"]
        assert model.shared_set(values) == ("read", f"scope{n}")
    assert len(model._SHARED_SETS) <= model._SHARED_MAX
    assert model.shared_set("read") == model.normal_set("read")  # a string, as a hostile wire


@given(st.lists(st.tuples(
    st.sampled_from(["a.yaml", "b.yaml", "c/d.yaml"]), st.integers(1, 3), st.integers(1, 3),
    st.sampled_from(["error", "warning"]), st.sampled_from(["schema", "client-id"]),
    st.sampled_from(["x", "y", ""]),
), max_size=30))
def test_diagnostics_sorted_by_key_as_by_their_order(rows: list[tuple[Any, ...]]) -> None:
    from oauth2_sync.errors import ORDER, Diagnostic

    found = [Diagnostic(*row) for row in rows]
    assert sorted(found, key=ORDER) == sorted(found)
    assert [id(d) for d in sorted(found, key=ORDER)] == [id(d) for d in sorted(found)]
