"""One contract, three adapters: ``local:`` (in-process store), ``http(s)://`` against a
real ``oauth2-sync registry serve`` and ``rfc7592+http://`` against a real oidc-provider
(``tests/peers/oidc-provider``), each on 127.0.0.1. Every test runs on all three.

Where a standard server legitimately differs from the registry API, the adapter's
``Contract`` (the table ``CONTRACTS``) says so, and the tests assert that documented
behaviour rather than leave the adapter out (docs/how-to/standard-servers.md):
partners come from the settings, the server picks its own client_id, grants it cannot
hold are refused by ``unsupported``, versions are hashes, there is no secret rotation and
the registry API's own rules are not the server's. The rfc7592 cases are marked ``peer``.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from support.oidc_peer import INITIAL_ACCESS_TOKEN, OidcPeer, running_peer
from support.registry import SEED, RegistryServer

from oauth2_sync.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    RegistryError,
)
from oauth2_sync.model import GRANT_TYPES, REDIRECT_GRANTS, Client
from oauth2_sync.registry import open_registry
from oauth2_sync.registry.base import Partner, Registry
from oauth2_sync.registry.http import HttpRegistry
from oauth2_sync.registry.local import LocalRegistry
from oauth2_sync.registry.rfc7592 import Rfc7592Registry
from oauth2_sync.secret import Secret
from oauth2_sync.settings import Settings


@dataclass(frozen=True, slots=True)
class Contract:
    """What one adapter promises where the adapters legitimately differ."""

    url_prefix: str
    partners_from_registry: bool
    """True: the registry's partners with their users; False: the settings' managed
    partners, users unknown (``None``), and a client of any partner is accepted."""
    issues_own_client_id: bool
    """The server picks its own client_id (``RemoteClient.registry_client_id``)."""
    audit_fields: bool
    """``created_at``/``updated_at``/``updated_by`` are known."""
    version: re.Pattern[str]
    """What a version looks like (an ETag's counter, or a hash of the metadata)."""
    unsupported_grants: dict[str, str]
    """Grants of the files the server cannot hold, with why: ``unsupported`` names them
    (``client ID: why``) and ``create_client`` refuses them, writing nothing."""
    rotates_secrets: bool
    enforces_registry_rules: bool
    """The registry API's rules (``test_the_registry_rules_are_enforced``); a standard
    server applies only its own RFC 7591 validation (the files' validation applies ours)."""
    lists_state_only: bool
    """``list_clients`` reads the clients this state file knows (each test has its own),
    not every client of the server (which RFC 7591 cannot list)."""


REGISTRY_API = Contract(
    url_prefix="", partners_from_registry=True, issues_own_client_id=False,
    audit_fields=True, version=re.compile(r"[1-9][0-9]*"), unsupported_grants={},
    rotates_secrets=True, enforces_registry_rules=True, lists_state_only=False,
)
CONTRACTS: dict[type[Registry], Contract] = {
    LocalRegistry: replace(REGISTRY_API, url_prefix="local:"),
    HttpRegistry: replace(REGISTRY_API, url_prefix="http://127.0.0.1:"),
    Rfc7592Registry: Contract(
        url_prefix="rfc7592+http://127.0.0.1:", partners_from_registry=False,
        issues_own_client_id=True, audit_fields=False,
        version=re.compile(r"sha256:[0-9a-f]{32}"),
        unsupported_grants={
            "password": "the registry does not support grant type 'password' (it supports "
                        "authorization_code, implicit, refresh_token)",
            "implicit": "grant type 'implicit' needs response type 'token', which the "
                        "registry does not support (it supports code, code id_token, "
                        "id_token, none)",
        },
        rotates_secrets=False, enforces_registry_rules=False, lists_state_only=True,
    ),
}


def contract(registry: Registry) -> Contract:
    """The capability table of ``registry``'s adapter."""
    return CONTRACTS[type(registry)]


@pytest.fixture(scope="module")
def oidc_peer() -> Iterator[OidcPeer]:
    """One oidc-provider for the module; each test has its own state file, so its own view."""
    with running_peer() as server:
        yield server


@pytest.fixture(params=["local", "http", pytest.param("rfc7592", marks=pytest.mark.peer)])
def registry(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    registry_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Registry]:
    """The adapter under test, opened the way the CLI opens it (``open_registry``)."""
    if request.param == "local":
        settings = registry_settings("local:.oauth2-sync/registry.db", registry={"seed": str(SEED)})
    elif request.param == "http":
        server: RegistryServer = request.getfixturevalue("registry_server")
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        settings = registry_settings(server.base_url, registry={"page_size": 3})
    else:
        peer: OidcPeer = request.getfixturevalue("oidc_peer")
        monkeypatch.setenv("OAUTH2_SYNC_INITIAL_ACCESS_TOKEN", INITIAL_ACCESS_TOKEN)
        settings = registry_settings(peer.registry_url)
    with open_registry(settings) as opened:
        yield opened


@pytest.fixture
def ids() -> Callable[[str], str]:
    """Client IDs of this test only (the HTTP server and oidc-provider are shared)."""
    run = uuid.uuid4().hex[:8]
    return lambda name: f"acme-{run}-{name}"


def make(client_id: str, **changes: Any) -> Client:
    """A valid client every adapter can hold (no password grant); ``changes`` replace fields."""
    partner = client_id.split("-", 1)[0]
    base = Client(
        client_id, f"Service {client_id}", f"team@{partner}.example", partner,
        grant_types=("refresh_token",),
    )
    return base._replace(**changes)


def error_text(registry: Registry, method: str, path: str, status: str, message: str) -> str:
    """The message the registry API adapters give for a registry error."""
    if isinstance(registry, HttpRegistry):
        return f"{method} /v1{path}: {status}: {message}"
    return message


def not_in_state(registry: Registry, client_id: str) -> str:
    """The rfc7592 adapter's message for a client its state file does not know."""
    assert isinstance(registry, Rfc7592Registry)
    return f"client {client_id} is not in the state file {registry.state.path}"


def stale(client_id: str) -> str:
    """The rfc7592 adapter's message for a stale version (it compares hashes)."""
    return (
        f"client {client_id} changed in the registry since it was read (version mismatch); "
        "plan again"
    )


def test_adapters_are_the_expected_classes(registry: Registry) -> None:
    assert isinstance(registry, LocalRegistry | HttpRegistry | Rfc7592Registry)
    assert registry.url.startswith(contract(registry).url_prefix)


def test_partners_and_their_users(registry: Registry) -> None:
    partners = registry.list_partners()
    if contract(registry).partners_from_registry:
        assert [p.subdomain for p in partners] == ["acme", "globex", "initech", "umbrella"]
        assert partners[0] == Partner(
            101, "acme", "Acme Corporation",
            ("billing-sync", "mobile-app", "ops-cli", "reporting", "web-portal"),
        )
        assert partners[3] == Partner(104, "umbrella", "Umbrella Corporation", ("legacy",))
    else:
        # The settings' managed partners (the teams' acme, globex, initech), users unknown,
        # ids derived from the subdomain so that they never move.
        assert partners == [
            Partner(int.from_bytes(hashlib.sha256(s.encode()).digest()[:4], "big"), s, s, None)
            for s in ("acme", "globex", "initech")
        ]
    assert registry.list_partners() == partners


def test_create_then_read(registry: Registry, ids: Callable[[str], str]) -> None:
    desired = make(
        ids("portal"),
        scopes=("read", "write"),
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=("https://b.example/cb", "https://a.example/cb"),
        access_token_ttl=-1,
        refresh_token_ttl=86400,
        restrict_to_partner_users=False,
    )
    created, secret = registry.create_client(desired)
    assert isinstance(secret, Secret)
    assert len(secret.reveal()) >= 32
    assert created.client == desired._replace(redirect_uris=("https://a.example/cb", "https://b.example/cb")
    )
    assert contract(registry).version.fullmatch(created.version)
    if contract(registry).audit_fields:
        assert created.created_at is not None
        assert created.updated_at == created.created_at
        assert created.updated_by in ("local", "oauth2-sync-ci")
    else:
        assert (created.created_at, created.updated_at, created.updated_by) == (None, None, None)
    if contract(registry).issues_own_client_id:
        # The server chose its own client_id; the state file maps ours to it.
        assert isinstance(registry, Rfc7592Registry)
        registration = registry.state.get(desired.client_id)
        assert registration is not None
        assert created.registry_client_id == registration.server_client_id
        assert created.registry_client_id not in (None, desired.client_id)
    else:
        assert created.registry_client_id is None
    assert registry.get_client(desired.client_id) == created


def test_a_missing_client_is_none(registry: Registry, ids: Callable[[str], str]) -> None:
    assert registry.get_client(ids("nobody")) is None


def test_create_twice_conflicts(registry: Registry, ids: Callable[[str], str]) -> None:
    client = make(ids("twice"))
    created, _ = registry.create_client(client)
    with pytest.raises(ConflictError) as info:
        registry.create_client(client)
    if contract(registry).issues_own_client_id:
        assert str(info.value) == (
            f"client {client.client_id} already exists "
            f"(registry client_id {created.registry_client_id})"
        )
    else:
        assert str(info.value) == error_text(
            registry, "POST", "/oauth2-clients", "409 Conflict",
            f"client {client.client_id} already exists",
        )
    assert info.value.status == 409
    assert registry.get_client(client.client_id) == created


def test_replace_with_the_current_version(registry: Registry, ids: Callable[[str], str]) -> None:
    created, _ = registry.create_client(make(ids("r")))
    changed = created.client._replace(name="Renamed", access_token_ttl=900)
    replaced = registry.replace_client(changed, created.version)
    assert replaced.client == changed
    assert replaced.version != created.version
    assert contract(registry).version.fullmatch(replaced.version)
    assert replaced.created_at == created.created_at
    assert replaced.registry_client_id == created.registry_client_id
    assert registry.get_client(changed.client_id) == replaced


def test_replace_with_a_stale_version_is_refused(
    registry: Registry, ids: Callable[[str], str]
) -> None:
    created, _ = registry.create_client(make(ids("stale")))
    current = registry.replace_client(created.client._replace(name="First"), created.version)
    with pytest.raises(PreconditionFailedError) as info:
        registry.replace_client(created.client._replace(name="Second"), created.version)
    client_id = created.client.client_id
    if isinstance(registry, Rfc7592Registry):
        assert str(info.value) == stale(client_id)
    else:
        assert str(info.value) == error_text(
            registry, "PUT", f"/oauth2-clients/{client_id}", "412 Precondition Failed",
            f"client {client_id} is at version {current.version}, not {created.version}",
        )
    assert info.value.status == 412
    assert registry.get_client(client_id) == current


def test_unconditional_replace(registry: Registry, ids: Callable[[str], str]) -> None:
    created, _ = registry.create_client(make(ids("u")))
    replaced = registry.replace_client(created.client._replace(email="x@acme.example"), None)
    assert replaced.client == created.client._replace(email="x@acme.example")
    assert registry.get_client(created.client.client_id) == replaced


def test_replace_a_missing_client(registry: Registry, ids: Callable[[str], str]) -> None:
    client = make(ids("gone"))
    with pytest.raises(NotFoundError) as info:
        registry.replace_client(client, None)
    if isinstance(registry, Rfc7592Registry):
        assert str(info.value) == not_in_state(registry, client.client_id)
    else:
        assert str(info.value) == error_text(
            registry, "PUT", f"/oauth2-clients/{client.client_id}", "404 Not Found",
            f"client {client.client_id} does not exist",
        )
    assert info.value.status == 404
    assert registry.get_client(client.client_id) is None


def test_delete(registry: Registry, ids: Callable[[str], str]) -> None:
    created, _ = registry.create_client(make(ids("d")))
    client_id = created.client.client_id
    with pytest.raises(PreconditionFailedError) as stale_info:
        registry.delete_client(client_id, "0")
    if isinstance(registry, Rfc7592Registry):
        assert str(stale_info.value) == stale(client_id)
    else:
        assert str(stale_info.value) == error_text(
            registry, "DELETE", f"/oauth2-clients/{client_id}", "412 Precondition Failed",
            f"client {client_id} is at version {created.version}, not 0",
        )
    assert registry.get_client(client_id) == created
    registry.delete_client(client_id, created.version)
    assert registry.get_client(client_id) is None
    with pytest.raises(NotFoundError) as info:
        registry.delete_client(client_id, None)
    if isinstance(registry, Rfc7592Registry):
        assert str(info.value) == not_in_state(registry, client_id)
    else:
        assert str(info.value) == error_text(
            registry, "DELETE", f"/oauth2-clients/{client_id}", "404 Not Found",
            f"client {client_id} does not exist",
        )
    assert info.value.status == 404


def test_rotate_secret(registry: Registry, ids: Callable[[str], str]) -> None:
    created, first = registry.create_client(make(ids("rot")))
    client_id = created.client.client_id
    if not contract(registry).rotates_secrets:
        # RFC 7592 has no secret rotation: a definite refusal, and nothing changes.
        with pytest.raises(RegistryError) as refused:
            registry.rotate_secret(client_id)
        assert str(refused.value) == (
            f"cannot rotate the secret of {client_id}: a standard (RFC 7592) registry has "
            "no secret rotation; rotate it on the server, or delete the client and let "
            "apply create it again (it gets a new registry client_id)"
        )
        assert refused.value.status == 405
        assert registry.get_client(client_id) == created
        with pytest.raises(RegistryError) as unknown:
            registry.rotate_secret(ids("nobody"))
        assert unknown.value.status == 405
        return
    second = registry.rotate_secret(client_id)
    assert second != first
    assert repr(second) == "Secret('***')"
    after = registry.get_client(client_id)
    assert after is not None
    assert after.client == created.client
    assert after.version != created.version
    with pytest.raises(NotFoundError):
        registry.rotate_secret(ids("nobody"))


@pytest.mark.parametrize("grant", GRANT_TYPES)
def test_each_grant_is_held_or_refused_by_unsupported(
    registry: Registry, ids: Callable[[str], str], grant: str
) -> None:
    redirects = ("https://a.example/cb",) if grant in REDIRECT_GRANTS else ()
    client = make(ids(grant.replace("_", "")), grant_types=(grant,), redirect_uris=redirects)
    why = contract(registry).unsupported_grants.get(grant)
    if why is None:
        assert registry.unsupported(client) == []
        created, _ = registry.create_client(client)
        assert created.client == client
        assert registry.get_client(client.client_id) == created
        return
    message = f"client {client.client_id}: {why}"
    assert registry.unsupported(client) == [message]
    with pytest.raises(RegistryError) as info:
        registry.create_client(client)
    assert str(info.value) == message
    assert registry.get_client(client.client_id) is None
    assert client.client_id not in {r.client.client_id for r in registry.list_clients()}


RULES = [
    # changes, the registry API's field errors, what oidc-provider says (None: it accepts)
    pytest.param(
        {"redirect_uris": ("https://a.example/cb",)},
        {"redirectUri": "redirect URIs are allowed only with the implicit or "
                        "authorization_code grant"},
        None,
        id="redirect-without-redirect-grant",
    ),
    pytest.param(
        {"access_token_ttl": 0, "refresh_token_ttl": -1},
        {
            "accessTokenValiditySeconds": "must be null (platform default), -1 (never "
                                          "expires) or a positive number of seconds",
            "refreshTokenValiditySeconds": "must be null (platform default) or a positive "
                                           "number of seconds",
        },
        "oauth2_sync_access_token_ttl has an invalid value",
        id="ttl",
    ),
    pytest.param(
        {"email": "a@acme.example, b@acme.example"},
        {"email": "must be exactly one e-mail address"},
        "contacts can only contain email addresses",
        id="email",
    ),
    pytest.param(
        {"partner": "globex"}, {"clientId": "must be 'globex-' followed by a user name"}, None,
        id="partner-prefix",
    ),
    pytest.param(
        {"scopes": ()}, {"scope": "must name at least one of read, write"},
        "scope must be a non-empty string if provided",
        id="no-scope",
    ),
]


@pytest.mark.parametrize(("changes", "fields", "server_says"), RULES)
def test_the_registry_rules_are_enforced(
    registry: Registry,
    ids: Callable[[str], str],
    changes: dict[str, Any],
    fields: dict[str, str],
    server_says: str | None,
) -> None:
    client = make(ids("bad"), **changes)
    if not contract(registry).enforces_registry_rules and server_says is None:
        # Not a rule of a standard server: it holds the client as sent (the files'
        # validation is what refuses it before any plan).
        created, _ = registry.create_client(client)
        assert created.client == client
        assert registry.get_client(client.client_id) == created
        return
    with pytest.raises(RegistryError) as info:
        registry.create_client(client)
    assert info.value.status == 400
    if contract(registry).enforces_registry_rules:
        assert info.value.fields == fields
        detail = "; ".join(f"{k}: {v}" for k, v in fields.items())
        assert str(info.value) == error_text(
            registry, "POST", "/oauth2-clients", "400 Bad Request",
            f"invalid client metadata: {detail}",
        )
    else:
        # The server's own RFC 7591 validation, in its words.
        assert info.value.fields == {}
        assert str(info.value) == (
            f"creating client {client.client_id}: the registry answered 400: "
            f"invalid_client_metadata: {server_says}"
        )
    assert registry.get_client(client.client_id) is None


def test_an_unknown_partner(registry: Registry) -> None:
    if not contract(registry).partners_from_registry:
        # The server knows no partners: the adapter holds the client, and plan refuses
        # a partner that is not among list_partners() (the managed ones).
        client = make("hooli-x")
        created, _ = registry.create_client(client)
        assert created.client == client
        assert "hooli" not in {p.subdomain for p in registry.list_partners()}
        registry.delete_client(client.client_id, created.version)
        assert registry.get_client(client.client_id) is None
        return
    with pytest.raises(RegistryError) as info:
        registry.create_client(make("hooli-x"))
    assert str(info.value) == "partner hooli does not exist in the registry"
    assert info.value.fields == {"partnerId": "partner hooli does not exist in the registry"}


def test_list_reads_every_page(registry: Registry, ids: Callable[[str], str]) -> None:
    # The HTTP adapter reads pages of 3 here: seven clients span three pages.
    mine = {ids(f"p{i}") for i in range(7)}
    for client_id in sorted(mine):
        registry.create_client(make(client_id))
    listed = registry.list_clients()
    names = [r.client.client_id for r in listed]
    assert names == sorted(names)
    assert len(names) == len(set(names))
    if contract(registry).lists_state_only:
        assert set(names) == mine
    else:
        assert mine <= set(names)
    for remote in listed:
        if remote.client.client_id in mine:
            assert remote.client == make(remote.client.client_id)
            assert registry.get_client(remote.client.client_id) == remote


def test_parallel_writes(registry: Registry, ids: Callable[[str], str]) -> None:
    clients = [make(ids(f"par{i}")) for i in range(12)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(registry.create_client, clients))
    assert [r.client for r, _ in results] == clients
    assert len({r.version for r, _ in results}) == 12
    if contract(registry).issues_own_client_id:
        assert len({r.registry_client_id for r, _ in results}) == 12
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda r: registry.delete_client(r[0].client.client_id, r[0].version),
                      results))
    assert all(registry.get_client(c.client_id) is None for c in clients)


def test_other_partners_clients_are_listed_too(
    registry: Registry, ids: Callable[[str], str]
) -> None:
    # umbrella: a partner of the registry that no team manages (a standard server
    # knows no partners at all, and keeps the partner as extension metadata).
    umbrella = make(ids("x").replace("acme-", "umbrella-", 1))
    registry.create_client(umbrella)
    listed = {r.client.client_id: r.client for r in registry.list_clients()}
    assert listed[umbrella.client_id] == umbrella
