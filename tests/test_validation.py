"""Validation rules: one fixture per broken input, each with its exact message.

Every file under tests/fixtures/invalid/ starts with ``# expect: LINE:COL: ...``: the
one diagnostic it must produce (``{file}`` stands for the file's own name).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from oauth2_sync.errors import InputError
from oauth2_sync.redirects import _parsed_uri_problem, redirect_uri_problem
from oauth2_sync.settings import Policy, Settings, load_settings
from oauth2_sync.validation import ValidationResult, load_desired, validate

FIXTURES = Path(__file__).parent / "fixtures"
INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(FIXTURES / "oauth2-sync.yaml")


def expectation(path: Path) -> str:
    first = path.read_bytes().split(b"\n", 1)[0].decode()
    assert first.startswith("# expect: "), path
    return first.removeprefix("# expect: ")


def test_there_are_at_least_thirty_invalid_fixtures() -> None:
    assert len(INVALID) >= 30


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_fixture(settings: Settings, path: Path) -> None:
    result = validate(settings, [path])
    shown = result.files[0]
    expected = expectation(path).replace("{file}", shown)
    assert [str(d) for d in result.diagnostics] == [f"{shown}:{expected}"]
    # The broken entry never reaches the plan (a duplicate's first declaration may).
    assert len(result.clients) <= (1 if "duplicate-client-id" in expected else 0)


def test_duplicate_client_id_across_files_names_both(settings: Settings) -> None:
    result = validate(settings, [FIXTURES / "duplicates"])
    second = result.files[1]
    assert [str(d) for d in result.diagnostics] == [
        f"{second}:6:16: error: [duplicate-client-id] client_id 'acme-shared' is also declared "
        f"at {result.files[0]}:2:16"
    ]
    assert [c.client.client_id for c in result.clients] == ["acme-shared", "acme-other"]


def test_warnings_do_not_fail(settings: Settings) -> None:
    result = validate(settings, [FIXTURES / "warnings"])
    shown = [str(d).split(": ", 1)[1] for d in result.diagnostics]
    assert shown == [
        "warning: [unrestricted-users] restrict_to_partner_users is false: users of any partner "
        "may obtain tokens",
        "warning: [implicit-grant] the implicit grant is deprecated by the OAuth 2.0 Security BCP "
        "(RFC 9700); use authorization_code with PKCE",
        "warning: [non-expiring-access-token] access_token_ttl never: a leaked token stays valid "
        "forever",
        "warning: [refresh-ttl-without-grant] refresh_token_ttl is set but the refresh_token grant "
        "is not granted",
    ]
    assert [d.line for d in result.diagnostics] == [6, 7, 9, 10]
    assert not result.errors
    assert len(result.clients) == 1


def test_policy_turns_warnings_into_errors(settings: Settings) -> None:
    strict = settings._replace(policy=Policy(errors=frozenset({"implicit-grant", "unrestricted-users"}))
    )
    result = validate(strict, [FIXTURES / "warnings"])
    assert [(d.rule, d.severity) for d in result.diagnostics] == [
        ("unrestricted-users", "error"),
        ("implicit-grant", "error"),
        ("non-expiring-access-token", "warning"),
        ("refresh-ttl-without-grant", "warning"),
    ]
    assert result.clients == ()


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            Policy(max_access_token_ttl=3600),
            [
                "9:23: error: [policy-max-ttl] access_token_ttl never exceeds the policy maximum of "
                "1h (3600 s) (policy.max_access_token_ttl)"
            ],
        ),
        (
            Policy(max_refresh_token_ttl=86400),
            [
                "10:24: error: [policy-max-ttl] refresh_token_ttl 30d (2592000 s) exceeds the policy "
                "maximum of 1d (86400 s) (policy.max_refresh_token_ttl)"
            ],
        ),
        (
            Policy(allowed_grant_types=frozenset({"authorization_code", "refresh_token"})),
            [
                "7:19: error: [policy-grant-type] grant type 'implicit' is not allowed by "
                "policy.allowed_grant_types (authorization_code, refresh_token)"
            ],
        ),
    ],
    ids=["max-access", "max-refresh", "allowed-grants"],
)
def test_policy_limits(settings: Settings, policy: Policy, expected: list[str]) -> None:
    result = validate(settings._replace(policy=policy), [FIXTURES / "warnings"])
    assert [str(d).split(":", 1)[1] for d in result.errors] == expected


def test_refresh_never_under_a_refresh_limit_is_one_error(settings: Settings) -> None:
    strict = settings._replace(policy=Policy(max_refresh_token_ttl=86400))
    result = validate(strict, [FIXTURES / "invalid" / "refresh-ttl-never.yaml"])
    assert [d.rule for d in result.errors] == ["refresh-token-never"]


def test_file_outside_every_team(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "stray.yaml"
    path.write_text(
        "clients:\n  - client_id: acme-x\n    name: X\n    email: x@acme.example\n"
        "    partner: acme\n"
    )
    result = validate(settings, [path])
    assert [str(d).split(":", 1)[1] for d in result.diagnostics] == [
        "1:1: error: [team-ownership] no team in the settings owns this file (teams.*.paths)"
    ]


def test_all_errors_of_all_files_are_reported_sorted(settings: Settings) -> None:
    picked = [INVALID[5], INVALID[0], INVALID[9]]
    result = validate(settings, picked)
    assert len(result.errors) == 3
    assert list(result.diagnostics) == sorted(result.diagnostics)


def test_examples_are_clean_and_complete() -> None:
    settings = load_settings(Path(__file__).parent.parent / "examples" / "oauth2-sync.yaml")
    result = validate(settings)
    assert result.errors == ()
    desired = load_desired(settings)
    grants = {g for d in desired for g in d.client.grant_types}
    assert grants == {"authorization_code", "implicit", "password", "refresh_token"}
    ttls = {d.client.access_token_ttl for d in desired}
    assert None in ttls and -1 in ttls
    assert [d.client.client_id for d in desired] == sorted(d.client.client_id for d in desired)


def test_load_desired_raises_every_error(settings: Settings, tmp_path: Path) -> None:
    bad = settings._replace(root=FIXTURES, client_paths=("invalid/scope-*.yaml",))
    with pytest.raises(InputError) as info:
        load_desired(bad)
    assert [d.rule for d in info.value.diagnostics] == ["schema", "schema"]


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("https://app.example/cb", None),
        ("http://127.0.0.1:8080/cb", None),
        ("http://[::1]/cb", None),
        ("http://localhost/cb", None),
        ("com.example.app:/oauth2redirect", None),
        (
            "http://10.0.0.1/cb",
            "uses plain http for a host that is not a loopback address (use https)",
        ),
        ("https:///cb", "has no host"),
        ("https://app.example/cb#", "has a fragment (#...), which RFC 6749 §3.1.2 forbids"),
        ("https://app.example/c b", "contains whitespace or a control character"),
        ("https://[::1/cb", "is not a valid URI"),
        (
            "ftp://files.example/cb",
            "uses the scheme 'ftp'; use https, http on loopback or a reverse-domain app scheme",
        ),
    ],
)
def test_redirect_uri_rules(uri: str, problem: str | None) -> None:
    assert redirect_uri_problem(uri) == problem


@hypothesis_settings(max_examples=1000)
@given(
    st.text(alphabet="aZ09.-", min_size=1, max_size=12) | st.text(max_size=12),
    st.sampled_from(["", ":", ":8443", ":x", "@x", "]"]),
    st.sampled_from(["", "/", "?", "#", "x"]),
    st.text(st.characters(exclude_characters="#*,[]@\\"), max_size=20),
)
def test_redirect_uri_fast_path_accepts_only_what_parsing_accepts(
    host: str, port: str, start: str, rest: str
) -> None:
    uri = "https://" + host + port + start + rest
    assert redirect_uri_problem(uri) == _parsed_uri_problem(uri)


@hypothesis_settings(max_examples=500)
@given(
    st.text(alphabet="aZ09.-:", max_size=8),
    st.text(alphabet="aZ09.-", min_size=1, max_size=8),
    st.sampled_from(["", "/", "/cb", "?x=1"]),
    st.sampled_from(["@", "\\", "\\@", "@\\"]),
    st.sampled_from(["https", "http", "com.example.app"]),
)
def test_userinfo_or_backslash_is_refused_on_both_paths(
    user: str, host: str, path: str, sign: str, scheme: str
) -> None:
    # The host a browser goes to is after the '@' (and a backslash is a '/' to it):
    # a URI that hides it is refused whichever path checks it.
    uri = f"{scheme}://{user}{sign}{host}{path}"
    assert redirect_uri_problem(uri) is not None
    assert redirect_uri_problem(uri) == _parsed_uri_problem(uri)


# Vocabularies: the reference registry's closed ones, a standard server's open or declared ones.


def _vocabulary_repo(tmp_path: Path, registry: str, scopes: str, grants: str) -> Settings:
    (tmp_path / "oauth2-sync.yaml").write_text(
        f"registry:\n{registry}clients:\n  paths: [c/*.yaml]\n"
        "teams:\n  t:\n    paths: [c/**]\n    partners: [acme]\n"
    )
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.yaml").write_text(
        "clients:\n  - client_id: acme-x\n    name: X\n    email: x@acme.example\n"
        f"    partner: acme\n    scopes: {scopes}\n    grant_types: {grants}\n"
    )
    return load_settings(tmp_path / "oauth2-sync.yaml")


def _messages(settings: Settings) -> list[str]:
    result = validate(settings, [settings.root / "c" / "a.yaml"])
    return [str(d).split(": ", 1)[1] for d in result.diagnostics]


def test_reference_registry_names_its_choices_for_any_bad_scope_as_before(tmp_path: Path) -> None:
    settings = _vocabulary_repo(
        tmp_path, "  url: local:r.db\n", '[reed, "a b", openid, 7]', "[client_credentials]"
    )
    assert _messages(settings) == [
        "error: [schema] clients[0].scopes[0]: 'reed' is not one of read, write; did you mean 'read'?",
        "error: [schema] clients[0].scopes[1]: 'a b' is not one of read, write",
        "error: [schema] clients[0].scopes[2]: 'openid' is not one of read, write",
        "error: [schema] clients[0].scopes[3]: 7 is not one of read, write",
        "error: [schema] clients[0].grant_types[0]: 'client_credentials' is not one of "
        "authorization_code, implicit, password, refresh_token",
    ]


def test_standard_registry_without_declared_capabilities_takes_any_scope_token(
    tmp_path: Path,
) -> None:
    registry = "  url: rfc7592+https://auth.example.com/reg\n"
    ok = _vocabulary_repo(tmp_path, registry, "[openid, 'api:read']", "[client_credentials]")
    assert _messages(ok) == []
    (tmp_path / "c" / "a.yaml").write_text(
        (tmp_path / "c" / "a.yaml").read_text().replace("[client_credentials]",
                                                         "[client_credential, 'urn:x:y']")
    )
    assert _messages(ok) == [
        "error: [schema] clients[0].grant_types[0]: 'client_credential' is not one of "
        "authorization_code, client_credentials, implicit, password, refresh_token, "
        "urn:ietf:params:oauth:grant-type:device_code, urn:ietf:params:oauth:grant-type:jwt-bearer, "
        "urn:ietf:params:oauth:grant-type:saml2-bearer, "
        "urn:ietf:params:oauth:grant-type:token-exchange, urn:openid:params:grant-type:ciba; "
        "did you mean 'client_credentials'?",
    ]


def test_declared_capabilities_catch_a_misspelt_scope_offline_at_its_position(
    tmp_path: Path,
) -> None:
    registry = (
        "  url: rfc7592+https://auth.example.com/reg\n  capabilities:\n"
        "    scopes: [openid, profile]\n    grant_types: [client_credentials]\n"
    )
    settings = _vocabulary_repo(tmp_path, registry, "[openid, profle]", "[client_credentials]")
    result = validate(settings, [tmp_path / "c" / "a.yaml"])
    assert [str(d) for d in result.diagnostics] == [
        f"{result.files[0]}:6:22: error: [schema] clients[0].scopes[1]: 'profle' is not one of "
        "openid, profile; did you mean 'profile'?"
    ]
    assert result.clients == ()


def test_capabilities_are_refused_for_the_reference_registry(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        _vocabulary_repo(tmp_path, "  url: local:r.db\n  capabilities: {scopes: [x]}\n", "[read]",
                         "[password]")
    assert [d.message for d in caught.value.diagnostics] == [
        "registry.capabilities is for rfc7592+ registries only: the reference registry's "
        "capabilities are fixed"
    ]


# Boundaries the mutation run found untested (scripts/mutation; docs/development/testing.md).


def _owned_file(tmp_path: Path, clients: str, teams: str = "") -> tuple[Settings, Path]:
    """A configuration whose team 'core' (partner acme) owns c/, and one client file."""
    (tmp_path / "oauth2-sync.yaml").write_text(
        "registry:\n  url: local:r.db\nclients:\n  paths: [c/*.yaml]\n"
        "teams:\n  core:\n    paths: [c/**]\n    partners: [acme]\n" + teams
    )
    (tmp_path / "c").mkdir()
    path = tmp_path / "c" / "a.yaml"
    path.write_text("clients:\n" + clients)
    return load_settings(tmp_path / "oauth2-sync.yaml"), path


ENTRY = "  - client_id: acme-{0}\n    name: X\n    email: x@acme.example\n    partner: acme\n"


def _found(settings: Settings, path: Path) -> tuple[list[str], ValidationResult]:
    result = validate(settings, [path])
    return [str(d).removeprefix(result.files[0] + ":") for d in result.diagnostics], result


def test_an_empty_redirect_list_is_pointed_at_and_every_grant_needing_it_named(
    tmp_path: Path,
) -> None:
    settings, path = _owned_file(
        tmp_path, ENTRY.format("x") + "    grant_types: [implicit, authorization_code]\n"
        "    redirect_uris: []\n"
    )
    found, result = _found(settings, path)
    assert found == [
        "6:19: warning: [implicit-grant] the implicit grant is deprecated by the OAuth 2.0 "
        "Security BCP (RFC 9700); use authorization_code with PKCE",
        "7:20: error: [redirect-uris-required] redirect_uris must not be empty with the "
        "authorization_code and implicit grant",
    ]
    assert result.clients == ()


def test_a_repeated_redirect_uri_names_the_line_of_its_first_listing(tmp_path: Path) -> None:
    settings, path = _owned_file(
        tmp_path, ENTRY.format("x") + "    grant_types: [authorization_code]\n"
        "    redirect_uris:\n    - https://a.acme.example/cb\n"
        "    - https://b.acme.example/cb\n    - https://b.acme.example/cb\n"
    )
    found, result = _found(settings, path)
    # Line 9, column 7, the list at line 8: neither the column nor the list's line will do.
    assert found == [
        "10:7: error: [redirect-uri-duplicate] redirect URI 'https://b.acme.example/cb' is "
        "listed twice (first at line 9)",
    ]
    assert result.clients == ()


@pytest.mark.parametrize(
    ("ttls", "expected"),
    [
        ("    access_token_ttl: 1h\n    refresh_token_ttl: 1d\n", []),
        (
            "    access_token_ttl: 3601s\n    refresh_token_ttl: 86401s\n",
            [
                "6:23: error: [policy-max-ttl] access_token_ttl 3601 s exceeds the policy "
                "maximum of 1h (3600 s) (policy.max_access_token_ttl)",
                "7:24: error: [policy-max-ttl] refresh_token_ttl 86401 s exceeds the policy "
                "maximum of 1d (86400 s) (policy.max_refresh_token_ttl)",
            ],
        ),
    ],
    ids=["exactly-at-the-maximum", "one-second-above"],
)
def test_a_lifetime_exactly_at_the_policy_maximum_is_allowed(
    tmp_path: Path, ttls: str, expected: list[str]
) -> None:
    settings, path = _owned_file(tmp_path, ENTRY.format("x") + ttls)
    limited = settings._replace(policy=Policy(max_access_token_ttl=3600, max_refresh_token_ttl=86400)
    )
    found, _ = _found(limited, path)
    assert found == expected


def test_a_default_grant_the_policy_forbids_asks_for_grant_types(tmp_path: Path) -> None:
    # No grant_types: the defaults are password and refresh_token; only password is refused.
    settings, path = _owned_file(tmp_path, ENTRY.format("x"))
    policy = Policy(allowed_grant_types=frozenset({"authorization_code", "refresh_token"}))
    found, result = _found(settings._replace(policy=policy), path)
    assert found == [
        "2:5: error: [policy-grant-type] default grant type 'password' is not allowed by "
        "policy.allowed_grant_types; list grant_types explicitly",
    ]
    assert result.clients == ()


def test_a_warning_made_an_error_rejects_its_client_whatever_came_before(tmp_path: Path) -> None:
    # The first client has an error and a promoted warning, the second only the warning:
    # neither may reach the plan.
    unrestricted = "    restrict_to_partner_users: false\n"
    settings, path = _owned_file(
        tmp_path,
        ENTRY.format("x") + "    redirect_uris: [https://x.acme.example/cb]\n" + unrestricted
        + ENTRY.format("y") + unrestricted,
    )
    strict = settings._replace(policy=Policy(errors=frozenset({"unrestricted-users"})))
    found, result = _found(strict, path)
    assert found == [
        "6:20: error: [redirect-uris-forbidden] redirect_uris are only allowed with the implicit "
        "or authorization_code grant",
        "7:32: error: [unrestricted-users] restrict_to_partner_users is false: users of any "
        "partner may obtain tokens",
        "12:32: error: [unrestricted-users] restrict_to_partner_users is false: users of any "
        "partner may obtain tokens",
    ]
    assert result.clients == ()


def test_a_file_of_two_teams_names_both_and_all_their_partners(tmp_path: Path) -> None:
    settings, path = _owned_file(
        tmp_path, "  - client_id: umbrella-x\n    name: X\n    email: x@acme.example\n"
        "    partner: umbrella\n",
        teams="  web:\n    paths: [c/*.yaml]\n    partners: [initech, globex]\n",
    )
    found, result = _found(settings, path)
    assert found == [
        "5:14: error: [team-ownership] partner 'umbrella' is not one of the partners of team "
        "'core', 'web' that owns this file (acme, globex, initech)",
    ]
    assert result.clients == ()


def test_every_client_with_an_error_is_kept_out_not_only_the_first(tmp_path: Path) -> None:
    forbidden = "    redirect_uris: [https://x.acme.example/cb]\n"
    settings, path = _owned_file(
        tmp_path, ENTRY.format("x") + forbidden + ENTRY.format("y") + forbidden + ENTRY.format("z")
    )
    found, result = _found(settings, path)
    assert [line.split(" error: ")[0] for line in found] == ["6:20:", "11:20:"]
    assert [d.client.client_id for d in result.clients] == ["acme-z"]


def test_a_grant_that_is_not_a_token_is_worded_as_the_closed_vocabulary_once(
    tmp_path: Path,
) -> None:
    settings, path = _owned_file(tmp_path, ENTRY.format("x") + '    grant_types: ["pass word"]\n')
    found, result = _found(settings, path)
    assert found == [
        "6:19: error: [schema] clients[0].grant_types[0]: 'pass word' is not one of "
        "authorization_code, implicit, password, refresh_token; did you mean 'password'?",
    ]
    assert result.clients == ()


def test_validate_reports_outside_links_and_unmatched_files_of_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    settings, _ = _owned_file(repo, ENTRY.format("x"))
    (repo / "c" / "sub").mkdir()
    (repo / "c" / "sub" / "b.yaml").write_text("clients: []\n")
    (tmp_path / "elsewhere.yaml").write_text("clients: []\n")
    (repo / "c" / "link.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    monkeypatch.chdir(repo)
    expected = [
        "c/sub/b.yaml:1:1: warning: [unmatched-file] this YAML file under a team's folder is "
        "not matched by clients.paths (c/*.yaml): it is not read",
        f"oauth2-sync.yaml:4:11: error: [outside-root] 'c/link.yaml' is a link to "
        f"'{tmp_path / 'elsewhere.yaml'}', outside this file's folder: not followed",
    ]
    assert [str(d) for d in validate(settings).diagnostics] == expected
    assert [str(d) for d in validate(settings, unmatched=False).diagnostics] == expected[1:]


def test_a_file_that_does_not_load_does_not_stop_the_files_after_it(tmp_path: Path) -> None:
    settings, broken = _owned_file(tmp_path, "  - [unclosed\n")
    later = tmp_path / "c" / "b.yaml"
    later.write_text(
        "clients:\n" + ENTRY.format("x") + "    redirect_uris: [https://x.acme.example/cb]\n"
    )
    result = validate(settings, [broken, later])
    assert [str(d) for d in result.diagnostics] == [
        f"{result.files[0]}:3:1: error: [yaml-syntax] while parsing a flow sequence (line 2), "
        "did not find expected ',' or ']'",
        f"{result.files[1]}:6:20: error: [redirect-uris-forbidden] redirect_uris are only "
        "allowed with the implicit or authorization_code grant",
    ]


def test_settings_whose_paths_match_no_file_warn_at_the_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, path = _owned_file(tmp_path, ENTRY.format("x"))
    path.rename(tmp_path / "c" / "a.yml")  # clients.paths names *.yaml only
    monkeypatch.chdir(tmp_path)
    result = validate(settings, unmatched=False)
    assert [str(d) for d in result.diagnostics] == [
        "oauth2-sync.yaml:1:1: warning: [no-files] no client files match clients.paths",
    ]
    assert (result.files, result.clients) == ((), ())
