"""The registry's SQLite store: rules on write, versions, secrets, tokens, seeds."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from oauth2_sync.errors import (
    ConflictError,
    InputError,
    NotFoundError,
    PreconditionFailedError,
    RegistryError,
    UsageError,
)
from oauth2_sync.model import (
    CLIENT_ID_PATTERN,
    DEFAULT_GRANTS,
    DEFAULT_SCOPES,
    GRANT_TYPES,
    SCOPES,
    SUBDOMAIN_PATTERN,
)
from oauth2_sync.refserver import bodies as bodies_module
from oauth2_sync.refserver import schemafast
from oauth2_sync.refserver.bodies import check_body, component
from oauth2_sync.refserver.db import hash_secret, verify_secret
from oauth2_sync.refserver.records import MAX_INT, TokenInfo
from oauth2_sync.refserver.seed import load_seed
from oauth2_sync.refserver.store import RegistryStore

SEED = Path(__file__).parent.parent / "examples" / "registry-seed.yaml"


@pytest.fixture
def store(tmp_path: Path) -> RegistryStore:
    """A new store seeded with the example seed."""
    st = RegistryStore(tmp_path / "r.db")
    st.apply_seed(load_seed(SEED))
    return st


def body(**changes: Any) -> dict[str, Any]:
    """A valid create body for acme-reporting, with ``changes`` applied."""
    base: dict[str, Any] = {
        "clientId": "acme-reporting",
        "name": "Reporting",
        "email": "data@acme.example",
        "partnerId": 101,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def test_new_store_is_created_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "r.db"
    assert RegistryStore(path).is_new
    assert not RegistryStore(path).is_new
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_partners_come_from_the_seed(store: RegistryStore) -> None:
    partners = store.list_partners()
    assert [(p.id, p.subdomain) for p in partners] == [
        (101, "acme"), (102, "globex"), (103, "initech"), (104, "umbrella"),
    ]
    assert partners[3].to_wire() == {
        "id": 104, "subdomain": "umbrella", "name": "Umbrella Corporation", "users": ["legacy"],
    }
    assert partners[0].users == ("billing-sync", "mobile-app", "ops-cli", "reporting", "web-portal")


def test_seeding_twice_changes_nothing(store: RegistryStore) -> None:
    before = store.list_partners()
    store.apply_seed(load_seed(SEED))
    assert store.list_partners() == before


def test_create_fills_defaults_and_audit_fields(store: RegistryStore) -> None:
    created, secret = store.create_client(body(), "tester")
    assert len(secret) >= 40
    assert created == store.get_client("acme-reporting")
    assert {k: v for k, v in created.items() if k not in ("createdAt", "updatedAt")} == {
        "clientId": "acme-reporting",
        "name": "Reporting",
        "email": "data@acme.example",
        "partnerId": 101,
        "restrictToPartnerUsers": True,
        "scope": ["read"],
        "grantTypes": ["password", "refresh_token"],
        "redirectUri": "",
        "accessTokenValiditySeconds": None,
        "refreshTokenValiditySeconds": None,
        "version": 1,
        "updatedBy": "tester",
    }
    assert created["createdAt"] == created["updatedAt"]
    assert created["createdAt"].endswith("Z")


def test_every_write_bumps_the_version(store: RegistryStore) -> None:
    created, _ = store.create_client(body(), "a")
    replaced = store.replace_client("acme-reporting", body(name="New"), {"1"}, "b")
    assert (replaced["version"], replaced["name"], replaced["updatedBy"]) == (2, "New", "b")
    assert replaced["createdAt"] == created["createdAt"]
    rotated, _ = store.rotate_secret("acme-reporting", "c")
    assert (rotated["version"], rotated["updatedBy"]) == (3, "c")


def test_versions_are_never_reused(store: RegistryStore) -> None:
    store.create_client(body(), "a")
    store.delete_client("acme-reporting", {"1"})
    again, _ = store.create_client(body(), "a")
    assert again["version"] == 2
    with pytest.raises(PreconditionFailedError) as info:
        store.delete_client("acme-reporting", {"1"})
    assert str(info.value) == "client acme-reporting is at version 2, not 1"
    assert info.value.status == 412


def test_unconditional_writes(store: RegistryStore) -> None:
    store.create_client(body(), "a")
    assert store.replace_client("acme-reporting", body(), None, "a")["version"] == 2
    store.delete_client("acme-reporting", None)
    assert store.get_client("acme-reporting") is None


def test_conflict_and_not_found(store: RegistryStore) -> None:
    store.create_client(body(), "a")
    with pytest.raises(ConflictError, match=r"^client acme-reporting already exists$") as c:
        store.create_client(body(), "a")
    assert c.value.status == 409
    for call in (
        lambda: store.replace_client("acme-nobody", body(clientId="acme-nobody"), None, "a"),
        lambda: store.delete_client("acme-nobody", None),
        lambda: store.rotate_secret("acme-nobody", "a"),
    ):
        with pytest.raises(NotFoundError, match=r"^client acme-nobody does not exist$") as n:
            call()
        assert n.value.status == 404


def test_not_found_wins_over_a_stale_version(store: RegistryStore) -> None:
    with pytest.raises(NotFoundError):
        store.delete_client("acme-nobody", {"7"})


def test_rotation_replaces_the_secret(store: RegistryStore) -> None:
    _, first = store.create_client(body(), "a")
    assert store.check_client_secret("acme-reporting", first)
    _, second = store.rotate_secret("acme-reporting", "a")
    assert second != first
    assert store.check_client_secret("acme-reporting", second)
    assert not store.check_client_secret("acme-reporting", first)


def test_secrets_are_stored_hashed(store: RegistryStore, tmp_path: Path) -> None:
    _, secret = store.create_client(body(), "a")
    raw = (tmp_path / "r.db").read_bytes() + (tmp_path / "r.db-wal").read_bytes()
    assert secret.encode() not in raw
    stored = hash_secret("s3cret")
    assert stored.startswith("sha256$")
    assert verify_secret("s3cret", stored)
    assert not verify_secret("s3cret!", stored)
    assert hash_secret("s3cret") != stored


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"clientId": "globex-reporting"}, {"clientId": "must be 'acme-' followed by a user name"}),
        ({"clientId": "acme-"}, {"clientId": "must be 'acme-' followed by a user name"}),
        ({"clientId": "Acme-X"}, {"clientId": "must be lower-case letters, digits, '.', '_' "
                                  "and '-', starting with a letter or digit"}),
        ({"clientId": ...}, {"clientId": "is required"}),
        ({"partnerId": 999}, {"partnerId": "partner 999 does not exist"}),
        ({"partnerId": "101"}, {"partnerId": "must be a partner's numeric id"}),
        ({"partnerId": True}, {"partnerId": "must be a partner's numeric id"}),
        ({"name": " "}, {"name": "must not be blank"}),
        ({"name": 5}, {"name": "must be a string"}),
        ({"email": "a@x.example,b@x.example"}, {"email": "must be exactly one e-mail address"}),
        ({"email": "a@x.example b@x.example"}, {"email": "must be exactly one e-mail address"}),
        ({"email": ""}, {"email": "must not be empty"}),
        ({"email": "\ud800@x.example"}, {"email": "must be valid Unicode text"}),
        ({"redirectUri": "https://a.example/cb"},
         {"redirectUri": "redirect URIs are allowed only with the implicit or "
                         "authorization_code grant"}),
        ({"grantTypes": ["authorization_code"], "redirectUri": "https://a.example/cb,"},
         {"redirectUri": "must not contain an empty entry"}),
        ({"accessTokenValiditySeconds": 0},
         {"accessTokenValiditySeconds": "must be null (platform default), -1 (never expires) "
                                        "or a positive number of seconds"}),
        ({"accessTokenValiditySeconds": -2},
         {"accessTokenValiditySeconds": "must be null (platform default), -1 (never expires) "
                                        "or a positive number of seconds"}),
        ({"accessTokenValiditySeconds": 2**40},
         {"accessTokenValiditySeconds": "must be null (platform default), -1 (never expires) "
                                        "or a positive number of seconds"}),
        ({"refreshTokenValiditySeconds": -1},
         {"refreshTokenValiditySeconds": "must be null (platform default) or a positive "
                                         "number of seconds"}),
        ({"refreshTokenValiditySeconds": 1.5},
         {"refreshTokenValiditySeconds": "must be null (platform default) or a positive "
                                         "number of seconds"}),
        ({"scope": []}, {"scope": "must name at least one of read, write"}),
        ({"scope": ["admin"]}, {"scope": "unknown value 'admin' (allowed: read, write)"}),
        ({"grantTypes": ["password", "password"]}, {"grantTypes": "must not repeat a value"}),
        ({"grantTypes": "password"}, {"grantTypes": "must be an array of strings"}),
        ({"restrictToPartnerUsers": "yes"}, {"restrictToPartnerUsers": "must be true or false"}),
        ({"colour": "red"}, {"colour": "unknown field"}),
        ({"email": ..., "name": ...}, {"email": "is required", "name": "is required"}),
        ({"clientId": "globex-x", "name": ""},
         {"clientId": "must be 'acme-' followed by a user name", "name": "must not be empty"}),
    ],
)
def test_invalid_clients_are_refused_field_by_field(
    store: RegistryStore, changes: dict[str, Any], fields: dict[str, str]
) -> None:
    with pytest.raises(RegistryError) as info:
        store.create_client(body(**changes), "a")
    assert info.value.status == 400
    assert info.value.fields == fields
    detail = "; ".join(f"{k}: {v}" for k, v in fields.items())
    assert str(info.value) == f"invalid client metadata: {detail}"
    assert store.count_clients() == 0


def test_valid_edge_values_are_accepted(store: RegistryStore) -> None:
    created, _ = store.create_client(
        body(
            grantTypes=["implicit", "authorization_code"],
            redirectUri=" https://b.example/cb , https://a.example/cb",
            accessTokenValiditySeconds=-1,
            refreshTokenValiditySeconds=1,
            scope=["write", "read"],
            version=99,
            createdAt="ignored",
        ),
        "a",
    )
    assert created["grantTypes"] == ["authorization_code", "implicit"]
    assert created["scope"] == ["read", "write"]
    assert created["redirectUri"] == " https://b.example/cb , https://a.example/cb"
    assert created["version"] == 1


def test_replace_keeps_the_client_id_of_the_path(store: RegistryStore) -> None:
    store.create_client(body(), "a")
    with pytest.raises(RegistryError) as info:
        store.replace_client("acme-reporting", body(clientId="acme-other"), None, "a")
    assert info.value.fields == {"clientId": "must equal the client ID in the path"}
    replaced = store.replace_client("acme-reporting", body(clientId=...), None, "a")
    assert replaced["clientId"] == "acme-reporting"


def test_a_body_that_is_not_an_object(store: RegistryStore) -> None:
    with pytest.raises(RegistryError, match=r"^invalid client metadata: the body must be a JSON "
                                            r"object$"):
        store.create_client([], "a")  # type: ignore[arg-type]


NUMERIC_ID = "must be a partner's numeric id"
PATTERN_ID = "must be lower-case letters, digits, '.', '_' and '-', starting with a letter or digit"


@pytest.mark.parametrize(
    ("changes", "path", "fields"),
    [
        # What the OpenAPI component lets through and the registry's rules do not.
        ({"clientId": "acme-x\n"}, None, {"clientId": PATTERN_ID}),
        ({"email": "a@x.example\n"}, None, {"email": "must be exactly one e-mail address"}),
        ({"partnerId": 101.0}, None, {"partnerId": NUMERIC_ID}),
        ({"accessTokenValiditySeconds": 60.0}, None,
         {"accessTokenValiditySeconds": "must be null (platform default), -1 (never "
                                        "expires) or a positive number of seconds"}),
        ({"name": "a\x00b"}, None, {"name": "must be valid Unicode text"}),
        ({"grantTypes": ["implicit"], "redirectUri": "https://a.example/" + "x" * 2000}, None,
         {"redirectUri": "each URI must be at most 2000 characters"}),
        # When a field breaks several rules, the first of the hand-written order wins.
        ({"partnerId": None}, None, {"partnerId": "is required"}),
        ({"clientId": ""}, None, {"clientId": "must not be empty"}),
        ({"clientId": "ab"}, None, {"clientId": "must be at least 3 characters"}),
        ({"clientId": "A"}, None, {"clientId": PATTERN_ID}),
        ({"clientId": "x" * 101}, None, {"clientId": "must be at most 100 characters"}),
        ({"scope": ["x", "x"]}, None, {"scope": "unknown value 'x' (allowed: read, write)"}),
        ({"scope": ["read", 1]}, None, {"scope": "must be an array of strings"}),
        ({"redirectUri": None}, None, {"redirectUri": "must be a string"}),
        ({"clientId": None}, "acme-reporting",
         {"clientId": "must equal the client ID in the path"}),
        ({"clientId": ...}, "Acme", {"clientId": PATTERN_ID}),
    ],
)
def test_rules_beyond_the_contract(
    changes: dict[str, Any], path: str | None, fields: dict[str, str]
) -> None:
    _, problems = check_body(body(**changes), path)
    assert problems == fields


def test_bodies_may_hold_tuples_as_the_local_adapter_sends() -> None:
    values, problems = check_body(body(scope=("write", "read")), None)
    assert problems == {}
    assert values["scope"] == ("read", "write")


def test_the_contract_and_the_model_agree() -> None:
    schemas = {name: component(name) for name in ("Scope", "GrantTypes", "ClientCreate")}
    assert tuple(schemas["Scope"]["items"]["enum"]) == SCOPES
    assert tuple(schemas["GrantTypes"]["items"]["enum"]) == GRANT_TYPES
    properties = schemas["ClientCreate"]["properties"]
    assert tuple(properties["scope"]["default"]) == DEFAULT_SCOPES
    assert tuple(properties["grantTypes"]["default"]) == DEFAULT_GRANTS
    assert component("PartnerId")["maximum"] == MAX_INT
    assert component("ClientIdValue")["pattern"] == f"^{CLIENT_ID_PATTERN}$"
    seed_schema = json.loads(SEED_SCHEMA.read_text())
    subdomain = seed_schema["properties"]["partners"]["items"]["properties"]["subdomain"]
    assert subdomain["pattern"] == f"^{SUBDOMAIN_PATTERN}$"


def test_paging(store: RegistryStore) -> None:
    store.bulk_create(
        [body(clientId=f"acme-user{i:02d}") for i in range(25)], "bench"
    )
    total, first = store.page_clients(0, 10)
    assert total == 25
    assert [c["clientId"] for c in first] == [f"acme-user{i:02d}" for i in range(10)]
    assert [c["version"] for c in first] == list(range(1, 11))
    total, last = store.page_clients(2, 10)
    assert (total, len(last)) == (25, 5)
    assert store.page_clients(3, 10) == (25, [])
    assert [c["clientId"] for c in store.list_clients()][-1] == "acme-user24"


def _ids(page: list[dict[str, Any]]) -> list[str]:
    return [c["clientId"] for c in page]


def _offset_page(store: RegistryStore, page: int, size: int) -> list[str]:
    """What OFFSET paging answers, straight from the list."""
    return _ids(store.list_clients())[page * size : (page + 1) * size]


def test_pages_read_in_turn_are_the_offset_pages_while_clients_come_and_go(
    store: RegistryStore,
) -> None:
    store.bulk_create([body(clientId=f"acme-user{i:02d}") for i in range(30)], "bench")
    assert _ids(store.page_clients(0, 7)[1]) == _offset_page(store, 0, 7)
    assert _ids(store.page_clients(1, 7)[1]) == _offset_page(store, 1, 7)
    # A client created before the page being read, and one deleted: the next pages
    # shift as OFFSET paging shifts them (no page starts from a stale boundary).
    store.create_client(body(clientId="acme-user00a"), "a")
    assert store.page_clients(2, 7) == (31, store.page_clients(2, 7)[1])
    assert _ids(store.page_clients(2, 7)[1]) == _offset_page(store, 2, 7)
    store.delete_client("acme-user03", None)
    for page in (3, 4, 0, 1, 2, 3, 4, 5):
        total, items = store.page_clients(page, 7)
        assert (total, _ids(items)) == (30, _offset_page(store, page, 7))
    # An update keeps the IDs: pages stay where they were.
    store.replace_client("acme-user10", body(clientId="acme-user10", name="x"), None, "a")
    for page in range(5):
        assert _ids(store.page_clients(page, 7)[1]) == _offset_page(store, page, 7)


def test_the_count_is_kept_by_the_store_itself(store: RegistryStore, tmp_path: Path) -> None:
    store.bulk_create([body(clientId=f"acme-user{i:02d}") for i in range(5)], "bench")
    store.delete_client("acme-user01", None)
    assert store.count_clients() == 4
    # Written behind the store's back (another process, sqlite3 by hand): still counted.
    with sqlite3.connect(tmp_path / "r.db") as conn:
        conn.execute("DELETE FROM clients WHERE client_id='acme-user02'")
    assert store.count_clients() == 3
    assert store.page_clients(0, 10)[0] == 3
    store.close()
    assert RegistryStore(tmp_path / "r.db").count_clients() == 3


def test_concurrent_writers_get_distinct_versions(store: RegistryStore) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(20):
                store.create_client(body(clientId=f"acme-t{n}-{i}"), f"w{n}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    versions = [c["version"] for c in store.list_clients()]
    assert sorted(versions) == list(range(1, 81))


def test_api_credentials_and_users(store: RegistryStore) -> None:
    assert store.authenticate_credential("oauth2-sync-ci", "ci-secret-for-local-tests") == (
        "read", "write",
    )
    assert store.authenticate_credential("oauth2-sync-plan", "plan-secret-for-local-tests") == (
        "read",
    )
    assert store.authenticate_credential("oauth2-sync-ci", "wrong") is None
    assert store.authenticate_credential("nobody", "x") is None
    assert store.authenticate_user("ops", "ops-password-for-local-tests") == ("read", "write")
    assert store.authenticate_user("ops", "nope") is None


def test_tokens_expire_and_refresh_tokens_are_single_use(store: RegistryStore) -> None:
    info = TokenInfo("oauth2-sync-ci", ("read", "write"), "ops")
    issued = store.issue_token(info, 3600, refresh_ttl=7200)
    assert issued.refresh_token is not None
    assert store.check_token(issued.access_token) == info
    assert store.check_token(issued.refresh_token) is None
    assert store.redeem_refresh_token(issued.refresh_token, "oauth2-sync-plan") is None
    assert store.redeem_refresh_token(issued.refresh_token, "oauth2-sync-ci") == info
    assert store.redeem_refresh_token(issued.refresh_token, "oauth2-sync-ci") is None
    expired = store.issue_token(info, -1)
    assert expired.refresh_token is None
    assert store.check_token(expired.access_token) is None
    assert store.check_token("made-up") is None


def test_seed_environment_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTH2_SYNC_CI_SECRET", "from-env")
    seed = load_seed(SEED)
    assert seed.credentials[0].secret.reveal() == "from-env"
    assert repr(seed.credentials[0].secret) == "Secret('***')"
    assert "from-env" not in repr(seed)
    assert seed.credentials[1].secret.reveal() == "plan-secret-for-local-tests"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("partners: {}\n", "partners: must be a list"),
        ("partners: []\nextra: 1\n",
         "top level: unknown key 'extra' (allowed: api_credentials, api_users, partners)"),
        ("partners:\n  - subdomain: acme\n", "partners[0]: 'id' is required"),
        ("partners:\n  - {id: 0, subdomain: acme}\n", "partners[0].id: must be a positive integer"),
        ("partners:\n  - {id: 1, subdomain: Acme}\n",
         "partners[0].subdomain: must be lower-case letters, digits and '-'"),
        ("partners:\n  - {id: 1, subdomain: a}\n  - {id: 1, subdomain: b}\n",
         "partners: ids and subdomains must be unique"),
        ("partners: []\napi_credentials:\n  - {client_id: x, secret: '${NO_SUCH_VAR_X}'}\n",
         "api_credentials[0].secret: environment variable NO_SUCH_VAR_X is not set"),
        ("partners: []\napi_credentials:\n  - {client_id: x, secret: s, scope: admin}\n",
         "api_credentials[0].scope: must be 'read' or 'read write'"),
    ],
)
def test_bad_seed_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "seed.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        load_seed(path)
    assert str(info.value) == f"{path}: {message}"


def test_seed_file_must_be_strict_yaml(tmp_path: Path) -> None:
    path = tmp_path / "seed.yaml"
    path.write_text("partners: []\npartners: []\n")
    with pytest.raises(InputError):
        load_seed(path)


def test_expiry_and_audit_times_follow_the_injected_clock(tmp_path: Path) -> None:
    now = [1_700_000_000.0]
    st = RegistryStore(tmp_path / "r.db", clock=lambda: now[0])
    st.apply_seed(load_seed(SEED))
    issued = st.issue_token(TokenInfo("oauth2-sync-ci", ("read",)), 60, refresh_ttl=120)
    assert issued.refresh_token is not None
    created, _ = st.create_client(body(), "a")
    assert created["createdAt"] == "2023-11-14T22:13:20.000Z"
    now[0] += 60.5
    assert st.check_token(issued.access_token) is None
    assert st.redeem_refresh_token(issued.refresh_token, "oauth2-sync-ci") is not None


SEED_SCHEMA = Path(__file__).parent.parent / "oauth2_sync" / "schemas" / "registry-seed.schema.json"


def seed_schema_errors(text: str) -> list[str]:
    """What the published seed schema says about a seed document."""
    validator = Draft202012Validator(json.loads(SEED_SCHEMA.read_text()))
    return [error.message for error in validator.iter_errors(yaml.safe_load(text))]


def test_the_example_seed_satisfies_its_schema() -> None:
    text = SEED.read_text()
    assert text.startswith("# yaml-language-server: $schema=schemas/registry-seed.schema.json\n")
    assert seed_schema_errors(text) == []
    copy = SEED.parent / "schemas" / "registry-seed.schema.json"
    assert copy.read_text() == SEED_SCHEMA.read_text()


@pytest.mark.parametrize(
    "text",
    [
        "partners: {}\n",
        "partners: []\nextra: 1\n",
        "partners:\n  - subdomain: acme\n",
        "partners:\n  - {id: 0, subdomain: acme}\n",
        "partners:\n  - {id: 1, subdomain: Acme}\n",
        "partners:\n  - {id: 1, subdomain: acme, name: ''}\n",
        "partners:\n  - {id: 1, subdomain: acme, users: x}\n",
        "partners: []\napi_credentials:\n  - {client_id: x, secret: s, scope: admin}\n",
        "partners: []\napi_users:\n  - {username: u, password: ''}\n",
        "partners: []\napi_users:\n  - {username: u}\n",
    ],
)
def test_the_seed_schema_refuses_what_the_reader_refuses(tmp_path: Path, text: str) -> None:
    # Uniqueness and unset variables are beyond JSON Schema: only the reader sees them.
    path = tmp_path / "seed.yaml"
    path.write_text(text)
    with pytest.raises(UsageError):
        load_seed(path)
    assert seed_schema_errors(text)


_FIELD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, 1.0, 1.5, -1.0, 2**31]),
    st.text(max_size=6), st.sampled_from(["acme-x", "a@b.example", "a@b.example\n", " "]),
    st.lists(st.one_of(st.sampled_from(["read", "write", "implicit", "password", "x"]),
                       st.integers(0, 1), st.booleans()), max_size=3),
)
_FIELD_NAMES = st.sampled_from(
    ["clientId", "name", "email", "partnerId", "restrictToPartnerUsers", "scope", "grantTypes",
     "redirectUri", "accessTokenValiditySeconds", "refreshTokenValiditySeconds", "version", "x"]
)


@settings(max_examples=400, deadline=None)
@given(changes=st.dictionaries(_FIELD_NAMES, _FIELD_VALUES, max_size=4), drop=st.booleans())
def test_the_fast_path_agrees_with_jsonschema(changes: dict[str, Any], drop: bool) -> None:
    instance = {**body(), **changes}
    if drop:
        instance.pop("email", None)
    schemas = component("ClientCreate"), bodies_module._contract()["components"]["schemas"]
    fast = schemafast.compile_schema(*schemas)(instance)
    assert fast == bodies_module._validator().is_valid(instance)
