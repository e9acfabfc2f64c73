"""One contract, two adapters: ``local:`` (in-process store) and ``http(s)://`` against
a real ``oauth2-sync registry serve`` on 127.0.0.1. Every test runs on both."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from support.registry import SEED, RegistryServer

from oauth2_sync.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    RegistryError,
)
from oauth2_sync.model import Client
from oauth2_sync.registry import open_registry
from oauth2_sync.registry.base import Partner, Registry
from oauth2_sync.registry.http import HttpRegistry
from oauth2_sync.registry.local import LocalRegistry
from oauth2_sync.secret import Secret
from oauth2_sync.settings import Settings


@pytest.fixture(params=["local", "http"])
def registry(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    registry_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Registry]:
    """The adapter under test, opened the way the CLI opens it (``open_registry``)."""
    if request.param == "local":
        settings = registry_settings("local:.oauth2-sync/registry.db", registry={"seed": str(SEED)})
    else:
        server: RegistryServer = request.getfixturevalue("registry_server")
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        settings = registry_settings(server.base_url, registry={"page_size": 3})
    with open_registry(settings) as opened:
        yield opened


@pytest.fixture
def ids() -> Callable[[str], str]:
    """Client IDs of this test only (the HTTP server is shared by the session)."""
    run = uuid.uuid4().hex[:8]
    return lambda name: f"acme-{run}-{name}"


def make(client_id: str, **changes: Any) -> Client:
    """A valid client; ``changes`` replace fields."""
    partner = client_id.split("-", 1)[0]
    base = Client(client_id, f"Service {client_id}", f"team@{partner}.example", partner)
    return replace(base, **changes)


def error_text(registry: Registry, method: str, path: str, status: str, message: str) -> str:
    """The message an adapter gives for a registry error."""
    if isinstance(registry, HttpRegistry):
        return f"{method} /v1{path}: {status}: {message}"
    return message


def test_adapters_are_the_expected_classes(registry: Registry) -> None:
    assert isinstance(registry, LocalRegistry | HttpRegistry)
    assert registry.url.startswith(("local:", "http://127.0.0.1:"))


def test_partners_and_their_users(registry: Registry) -> None:
    partners = registry.list_partners()
    assert [p.subdomain for p in partners] == ["acme", "globex", "initech", "umbrella"]
    assert partners[0] == Partner(
        101, "acme", "Acme Corporation",
        ("billing-sync", "mobile-app", "ops-cli", "reporting", "web-portal"),
    )
    assert partners[3] == Partner(104, "umbrella", "Umbrella Corporation", ("legacy",))


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
    assert created.client == replace(
        desired, redirect_uris=("https://a.example/cb", "https://b.example/cb")
    )
    assert created.created_at is not None
    assert created.updated_at == created.created_at
    assert created.updated_by in ("local", "oauth2-sync-ci")
    assert registry.get_client(desired.client_id) == created


def test_a_missing_client_is_none(registry: Registry, ids: Callable[[str], str]) -> None:
    assert registry.get_client(ids("nobody")) is None


def test_create_twice_conflicts(registry: Registry, ids: Callable[[str], str]) -> None:
    client = make(ids("twice"))
    registry.create_client(client)
    with pytest.raises(ConflictError) as info:
        registry.create_client(client)
    assert str(info.value) == error_text(
        registry, "POST", "/oauth2-clients", "409 Conflict",
        f"client {client.client_id} already exists",
    )
    assert info.value.status == 409


def test_replace_with_the_current_version(registry: Registry, ids: Callable[[str], str]) -> None:
    created, _ = registry.create_client(make(ids("r")))
    changed = replace(created.client, name="Renamed", access_token_ttl=900)
    replaced = registry.replace_client(changed, created.version)
    assert replaced.client == changed
    assert replaced.version != created.version
    assert replaced.created_at == created.created_at
    assert registry.get_client(changed.client_id) == replaced


def test_replace_with_a_stale_version_is_refused(
    registry: Registry, ids: Callable[[str], str]
) -> None:
    created, _ = registry.create_client(make(ids("stale")))
    current = registry.replace_client(replace(created.client, name="First"), created.version)
    with pytest.raises(PreconditionFailedError) as info:
        registry.replace_client(replace(created.client, name="Second"), created.version)
    client_id = created.client.client_id
    assert str(info.value) == error_text(
        registry, "PUT", f"/oauth2-clients/{client_id}", "412 Precondition Failed",
        f"client {client_id} is at version {current.version}, not {created.version}",
    )
    assert registry.get_client(client_id) == current


def test_unconditional_replace(registry: Registry, ids: Callable[[str], str]) -> None:
    created, _ = registry.create_client(make(ids("u")))
    replaced = registry.replace_client(replace(created.client, email="x@acme.example"), None)
    assert replaced.client.email == "x@acme.example"


def test_replace_a_missing_client(registry: Registry, ids: Callable[[str], str]) -> None:
    client = make(ids("gone"))
    with pytest.raises(NotFoundError) as info:
        registry.replace_client(client, None)
    assert str(info.value) == error_text(
        registry, "PUT", f"/oauth2-clients/{client.client_id}", "404 Not Found",
        f"client {client.client_id} does not exist",
    )


def test_delete(registry: Registry, ids: Callable[[str], str]) -> None:
    created, _ = registry.create_client(make(ids("d")))
    client_id = created.client.client_id
    with pytest.raises(PreconditionFailedError):
        registry.delete_client(client_id, "0")
    assert registry.get_client(client_id) == created
    registry.delete_client(client_id, created.version)
    assert registry.get_client(client_id) is None
    with pytest.raises(NotFoundError) as info:
        registry.delete_client(client_id, None)
    assert str(info.value) == error_text(
        registry, "DELETE", f"/oauth2-clients/{client_id}", "404 Not Found",
        f"client {client_id} does not exist",
    )


def test_rotate_secret(registry: Registry, ids: Callable[[str], str]) -> None:
    created, first = registry.create_client(make(ids("rot")))
    second = registry.rotate_secret(created.client.client_id)
    assert second != first
    assert repr(second) == "Secret('***')"
    after = registry.get_client(created.client.client_id)
    assert after is not None
    assert after.client == created.client
    assert after.version != created.version
    with pytest.raises(NotFoundError):
        registry.rotate_secret(ids("nobody"))


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        (
            {"redirect_uris": ("https://a.example/cb",)},
            {"redirectUri": "redirect URIs are allowed only with the implicit or "
                            "authorization_code grant"},
        ),
        (
            {"access_token_ttl": 0, "refresh_token_ttl": -1},
            {
                "accessTokenValiditySeconds": "must be null (platform default), -1 (never "
                                              "expires) or a positive number of seconds",
                "refreshTokenValiditySeconds": "must be null (platform default) or a positive "
                                               "number of seconds",
            },
        ),
        ({"email": "a@acme.example, b@acme.example"},
         {"email": "must be exactly one e-mail address"}),
        ({"partner": "globex"}, {"clientId": "must be 'globex-' followed by a user name"}),
        ({"scopes": ()}, {"scope": "must name at least one of read, write"}),
    ],
)
def test_the_registry_rules_are_enforced(
    registry: Registry,
    ids: Callable[[str], str],
    changes: dict[str, Any],
    fields: dict[str, str],
) -> None:
    client = make(ids("bad"), **changes)
    with pytest.raises(RegistryError) as info:
        registry.create_client(client)
    assert info.value.status == 400
    assert info.value.fields == fields
    detail = "; ".join(f"{k}: {v}" for k, v in fields.items())
    assert str(info.value) == error_text(
        registry, "POST", "/oauth2-clients", "400 Bad Request",
        f"invalid client metadata: {detail}",
    )
    assert registry.get_client(client.client_id) is None


def test_an_unknown_partner(registry: Registry) -> None:
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
    assert mine <= set(names)
    for remote in listed:
        if remote.client.client_id in mine:
            assert registry.get_client(remote.client.client_id) == remote


def test_parallel_writes(registry: Registry, ids: Callable[[str], str]) -> None:
    clients = [make(ids(f"par{i}")) for i in range(12)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(registry.create_client, clients))
    assert [r.client for r, _ in results] == clients
    assert len({r.version for r, _ in results}) == 12
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda r: registry.delete_client(r[0].client.client_id, r[0].version),
                      results))
    assert all(registry.get_client(c.client_id) is None for c in clients)


def test_other_partners_clients_are_listed_too(
    registry: Registry, ids: Callable[[str], str]
) -> None:
    umbrella = make(ids("x").replace("acme-", "umbrella-", 1))
    registry.create_client(umbrella)
    listed = {r.client.client_id: r.client for r in registry.list_clients()}
    assert listed[umbrella.client_id] == umbrella
