"""The rfc7592 adapter against a real oidc-provider 9.13.3 on 127.0.0.1.

Each test gets its own state file (so its own view of the server); the server is shared
by the module where its clients cannot interfere, and started fresh where a test needs a
server of its own (another configuration, or a restart).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.configrepo import client, write_repo
from support.oidc_peer import INITIAL_ACCESS_TOKEN, OidcPeer, running_peer

from oauth2_sync.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    RegistryError,
    UsageError,
)
from oauth2_sync.model import Client
from oauth2_sync.plan import make_plan
from oauth2_sync.registry import open_registry
from oauth2_sync.registry.base import Unreachable
from oauth2_sync.registry.rfc7592 import (
    Rfc7592Registry,
    adopt,
    forget,
    from_metadata,
    retry_policy,
    to_metadata,
    version_of,
)
from oauth2_sync.registry.state import StateFile
from oauth2_sync.secret import Secret
from oauth2_sync.settings import Settings, load_settings

IAT_ENV = "OAUTH2_SYNC_INITIAL_ACCESS_TOKEN"

WEB = client(
    "acme-web", grant_types=("authorization_code", "refresh_token"),
    redirect_uris=("https://web.acme.example/callback",),
    scopes=("read", "write"), access_token_ttl=3600, refresh_token_ttl=7 * 86400,
)
MOBILE = client(
    "acme-mobile", grant_types=("authorization_code",),
    redirect_uris=("example.acme.app:/oauth2/callback", "http://127.0.0.1:8400/callback"),
    restrict_to_partner_users=False, access_token_ttl=-1,
)
SERVICE = client("globex-service", grant_types=("refresh_token",))


@pytest.fixture(scope="module")
def peer() -> Iterator[OidcPeer]:
    with running_peer() as server:
        yield server


def settings_for(root: Path, url: str) -> Settings:
    return load_settings(write_repo(
        root, [], extra={"registry": {"url": url, "state_file": "state/rfc7592.json"}},
    ))


@pytest.fixture
def settings(tmp_path: Path, peer: OidcPeer, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv(IAT_ENV, INITIAL_ACCESS_TOKEN)
    return settings_for(tmp_path, peer.registry_url)


@pytest.fixture
def registry(settings: Settings) -> Iterator[Rfc7592Registry]:
    reg = open_registry(settings)
    assert isinstance(reg, Rfc7592Registry)
    with reg:
        yield reg


def raw(method: str, uri: str, token: str, body: Any = None) -> requests.Response:
    """A request made out of band, as an administrator with the token would."""
    return requests.request(
        method, uri, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def token_of(registry: Rfc7592Registry, client_id: str) -> str:
    registration = registry.state.get(client_id)
    assert registration is not None
    return registration.registration_access_token.reveal()


def uri_of(registry: Rfc7592Registry, client_id: str) -> str:
    registration = registry.state.get(client_id)
    assert registration is not None
    return registration.registration_client_uri


# --- mapping -----------------------------------------------------------------------------


def test_metadata_mapping() -> None:
    assert to_metadata(WEB) == {
        "client_name": "Service acme-web",
        "contacts": ["team@acme.example"],
        "scope": "read write",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "redirect_uris": ["https://web.acme.example/callback"],
        "application_type": "web",
        "token_endpoint_auth_method": "client_secret_basic",
        "oauth2_sync_client_id": "acme-web",
        "oauth2_sync_partner": "acme",
        "oauth2_sync_restrict_to_partner_users": True,
        "oauth2_sync_access_token_ttl": 3600,
        "oauth2_sync_refresh_token_ttl": 604800,
    }
    native = to_metadata(MOBILE)
    assert native["application_type"] == "native"
    assert "oauth2_sync_refresh_token_ttl" not in native
    public = WEB._replace(token_endpoint_auth_method="none")
    assert to_metadata(public)["token_endpoint_auth_method"] == "none"
    # Read back: the server's method, and RFC 7591's default when it omits it.
    assert from_metadata("acme-web", to_metadata(public)) == public
    assert from_metadata("acme-web", {**to_metadata(WEB), "token_endpoint_auth_method": None}) == WEB
    assert to_metadata(client("acme-x", grant_types=("password",)))["response_types"] == []


def test_reading_is_lenient_about_missing_extensions() -> None:
    metadata = {
        "client_name": "Made by hand", "contacts": ["a@acme.example", "b@acme.example"],
        "scope": "write read", "grant_types": ["authorization_code"],
        "redirect_uris": ["https://x.example/cb"], "logo_uri": "https://x.example/logo.png",
    }
    assert from_metadata("acme-pay-x", metadata, ["acme", "acme-pay", "globex"]) == Client(
        client_id="acme-pay-x", name="Made by hand", email="a@acme.example, b@acme.example",
        partner="acme-pay", restrict_to_partner_users=True, scopes=("read", "write"),
        grant_types=("authorization_code",), redirect_uris=("https://x.example/cb",),
    )
    assert from_metadata("initech-x", metadata, ["acme"]).partner == ""


def test_version_ignores_credentials_and_changes_with_any_other_field() -> None:
    base = {"client_id": "s", "client_name": "n"}
    with_secrets = {**base, "client_secret": "x", "registration_access_token": "y",
                    "registration_client_uri": "http://127.0.0.1/reg/s"}
    assert version_of(with_secrets) == version_of(base)
    assert version_of({**base, "logo_uri": "https://x.example/l.png"}) != version_of(base)
    assert version_of(base).startswith("sha256:")


@pytest.mark.parametrize(
    ("method", "status", "retried"),
    [
        ("GET", 429, True), ("GET", 502, True), ("GET", 503, True), ("GET", 504, True),
        ("GET", 500, False), ("PUT", 429, True), ("PUT", 503, True), ("PUT", 502, False),
        ("PUT", 504, False), ("DELETE", 503, True), ("DELETE", 504, False),
        ("POST", 429, False), ("POST", 503, False),
    ],
)
def test_retry_never_repeats_a_write_the_server_may_have_done(
    method: str, status: int, retried: bool
) -> None:
    policy = retry_policy(3)
    assert policy.may_repeat(method, status) is retried
    assert policy.urllib3().is_retry(method, status) is retried


# --- settings and capabilities -----------------------------------------------------------


def test_plain_http_is_refused_off_loopback(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "rfc7592+http://registry.example/reg")
    with pytest.raises(UsageError) as caught:
        open_registry(settings)
    assert str(caught.value) == (
        "the registration endpoint http://registry.example/reg must use https "
        "(plain http only for a loopback host)"
    )
    # The state file's lock was released.
    assert settings.registry.state_file is not None
    StateFile(settings.registry.state_file, settings.registry.url).close()


def test_capabilities_come_from_the_discovery_document(
    registry: Rfc7592Registry, peer: OidcPeer
) -> None:
    caps = registry.capabilities()
    assert caps.source == f"{peer.issuer}/.well-known/oauth-authorization-server"
    assert caps.grant_types == frozenset({"authorization_code", "implicit", "refresh_token"})
    assert caps.scopes == frozenset({"openid", "offline_access", "read", "write"})
    assert caps.response_types is not None and "code" in caps.response_types
    assert "token" not in caps.response_types


def test_unsupported_names_the_client_and_the_value(registry: Rfc7592Registry) -> None:
    assert registry.unsupported(WEB) == []
    assert registry.unsupported(MOBILE) == []
    assert registry.unsupported(client("acme-legacy", grant_types=("password", "refresh_token"))) == [
        "client acme-legacy: the registry does not support grant type 'password' "
        "(it supports authorization_code, implicit, refresh_token)",
    ]
    assert registry.unsupported(
        client("acme-spa", grant_types=("implicit",), redirect_uris=("https://spa.example/",))
    ) == [
        "client acme-spa: grant type 'implicit' needs response type 'token', which the "
        "registry does not support (it supports code, code id_token, id_token, none)",
    ]


def test_unsupported_scope(registry: Rfc7592Registry) -> None:
    # A scope the files cannot hold ("admin"), to show the scope check on its own.
    unusual = client("acme-x", scopes=("admin", "read"), grant_types=("refresh_token",))
    assert registry.unsupported(unusual) == [
        "client acme-x: the registry does not support scope 'admin' "
        "(it supports offline_access, openid, read, write)",
    ]


def test_missing_discovery_document(tmp_path: Path, peer: OidcPeer) -> None:
    settings = settings_for(tmp_path, f"rfc7592+{peer.issuer}/tenant/reg")
    with open_registry(settings) as registry, pytest.raises(RegistryError) as caught:
        registry.unsupported(WEB)
    assert str(caught.value) == (
        f"no discovery document names {peer.issuer}/tenant/reg as its registration_endpoint "
        f"(tried {peer.issuer}/.well-known/oauth-authorization-server/tenant, "
        f"{peer.issuer}/tenant/.well-known/openid-configuration, "
        f"{peer.issuer}/.well-known/oauth-authorization-server, "
        f"{peer.issuer}/.well-known/openid-configuration)"
    )


def test_partners_are_the_managed_partners_with_unknown_users(
    registry: Rfc7592Registry,
) -> None:
    partners = registry.list_partners()
    assert [(p.subdomain, p.users) for p in partners] == [("acme", None), ("globex", None)]
    assert [p.id for p in partners] == [p.id for p in registry.list_partners()]
    assert len({p.id for p in partners}) == 2


# --- create, read, list ------------------------------------------------------------------


def test_create_records_the_servers_registration_and_reads_back(
    registry: Rfc7592Registry, peer: OidcPeer
) -> None:
    remote, secret = registry.create_client(WEB)
    assert remote.client == WEB
    assert isinstance(secret, Secret) and len(secret.reveal()) >= 32
    registration = registry.state.get("acme-web")
    assert registration is not None
    # The server chose its own client_id.
    assert registration.server_client_id != "acme-web"
    assert registration.registration_client_uri == (
        f"{peer.registration_endpoint}/{registration.server_client_id}"
    )
    got = registry.get_client("acme-web")
    assert got is not None and got.client == WEB and got.version == remote.version
    # ... and says so, for the secret sink: the application authenticates with it.
    assert remote.registry_client_id == got.registry_client_id == registration.server_client_id
    assert registry.get_client("acme-unknown") is None


def test_list_returns_the_clients_the_state_knows(registry: Rfc7592Registry) -> None:
    for c in (WEB, MOBILE, SERVICE):
        registry.create_client(c)
    assert [rc.client for rc in registry.list_clients()] == [MOBILE, WEB, SERVICE]


def test_server_ignores_a_requested_client_id_and_secret(peer: OidcPeer) -> None:
    response = requests.post(
        peer.registration_endpoint, timeout=10,
        headers={"Authorization": f"Bearer {INITIAL_ACCESS_TOKEN}"},
        json={**to_metadata(SERVICE), "client_id": "globex-service", "client_secret": "mine"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["client_id"] != "globex-service"
    assert body["client_secret"] != "mine"


def test_create_twice_is_a_conflict(registry: Rfc7592Registry) -> None:
    registry.create_client(SERVICE)
    server_id = registry.state.get("globex-service")
    assert server_id is not None
    with pytest.raises(ConflictError) as caught:
        registry.create_client(SERVICE)
    assert str(caught.value) == (
        f"client globex-service already exists (registry client_id {server_id.server_client_id})"
    )
    assert caught.value.status == 409


def test_create_of_an_unrepresentable_client_writes_nothing(registry: Rfc7592Registry) -> None:
    with pytest.raises(RegistryError) as caught:
        registry.create_client(client("acme-legacy"))
    assert str(caught.value) == (
        "client acme-legacy: the registry does not support grant type 'password' "
        "(it supports authorization_code, implicit, refresh_token)"
    )
    assert registry.state.entries() == []


def test_create_without_the_initial_access_token(
    registry: Rfc7592Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, peer: OidcPeer
) -> None:
    monkeypatch.delenv(IAT_ENV)
    with open_registry(settings_for(tmp_path / "other", peer.registry_url)) as bare:
        with pytest.raises(RegistryError) as caught:
            bare.create_client(SERVICE)
        assert str(caught.value) == (
            "creating client globex-service: the registry refused the initial access token "
            f"({IAT_ENV} is not set)"
        )
        assert caught.value.status == 401


# --- replace -----------------------------------------------------------------------------


def test_replace_updates_in_place_and_keeps_the_secret(registry: Rfc7592Registry) -> None:
    created, secret = registry.create_client(WEB)
    before = registry.state.get("acme-web")
    edited = WEB._replace(redirect_uris=("https://web.acme.example/callback2",), access_token_ttl=None,
        name="Renamed", scopes=("read",),
    )
    replaced = registry.replace_client(edited, created.version)
    assert replaced.client == edited
    assert replaced.version != created.version
    after = registry.state.get("acme-web")
    assert after is not None and before is not None
    assert after.server_client_id == before.server_client_id
    body = raw("GET", after.registration_client_uri, token_of(registry, "acme-web")).json()
    assert secret is not None and body["client_secret"] == secret.reveal()
    assert "oauth2_sync_access_token_ttl" not in body
    got = registry.get_client("acme-web")
    assert got is not None and got.client == edited


def test_replace_keeps_metadata_it_does_not_manage(registry: Rfc7592Registry) -> None:
    registry.create_client(SERVICE)
    uri, token = uri_of(registry, "globex-service"), token_of(registry, "globex-service")
    current = raw("GET", uri, token).json()
    for field in ("registration_access_token", "registration_client_uri",
                  "client_secret_expires_at", "client_id_issued_at"):
        del current[field]
    out_of_band = raw("PUT", uri, token, {**current, "logo_uri": "https://globex.example/l.png"})
    assert out_of_band.status_code == 200
    got = registry.get_client("globex-service")
    assert got is not None
    registry.replace_client(SERVICE._replace(name="Renamed"), got.version)
    assert raw("GET", uri, token).json()["logo_uri"] == "https://globex.example/l.png"


def test_replace_with_a_stale_version_changes_nothing(registry: Rfc7592Registry) -> None:
    created, _ = registry.create_client(SERVICE)
    registry.replace_client(SERVICE._replace(name="First"), created.version)
    with pytest.raises(PreconditionFailedError) as caught:
        registry.replace_client(SERVICE._replace(name="Second"), created.version)
    assert str(caught.value) == (
        "client globex-service changed in the registry since it was read "
        "(version mismatch); plan again"
    )
    assert caught.value.status == 412
    got = registry.get_client("globex-service")
    assert got is not None and got.client.name == "First"


def test_replace_without_version_is_unconditional(registry: Rfc7592Registry) -> None:
    registry.create_client(SERVICE)
    registry.replace_client(SERVICE._replace(name="First"), None)
    registry.replace_client(SERVICE._replace(name="Second"), None)
    got = registry.get_client("globex-service")
    assert got is not None and got.client.name == "Second"


def test_replace_of_an_unknown_client(registry: Rfc7592Registry, settings: Settings) -> None:
    with pytest.raises(NotFoundError) as caught:
        registry.replace_client(SERVICE, None)
    assert str(caught.value) == (
        f"client globex-service is not in the state file {settings.registry.state_file}"
    )


def test_rotated_registration_access_tokens_are_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IAT_ENV, INITIAL_ACCESS_TOKEN)
    with running_peer(rotate_registration_access_token=True) as server:
        settings = settings_for(tmp_path, server.registry_url)
        with open_registry(settings) as registry:
            assert isinstance(registry, Rfc7592Registry)
            created, _ = registry.create_client(SERVICE)
            first = token_of(registry, "globex-service")
            one = registry.replace_client(SERVICE._replace(name="One"), created.version)
            second = token_of(registry, "globex-service")
            registry.replace_client(SERVICE._replace(name="Two"), one.version)
            assert len({first, second, token_of(registry, "globex-service")}) == 3
            # The old token is dead; the recorded one works, also after a reopen.
            assert raw("GET", uri_of(registry, "globex-service"), first).status_code == 401
        with open_registry(settings) as registry:
            got = registry.get_client("globex-service")
            assert got is not None and got.client.name == "Two"


# --- delete ------------------------------------------------------------------------------


def test_delete_removes_the_client_and_its_registration(registry: Rfc7592Registry) -> None:
    created, _ = registry.create_client(SERVICE)
    uri, token = uri_of(registry, "globex-service"), token_of(registry, "globex-service")
    registry.delete_client("globex-service", created.version)
    assert registry.state.get("globex-service") is None
    assert registry.get_client("globex-service") is None
    # Gone on the server: RFC 7592 answers 401 for a client that does not exist.
    assert raw("GET", uri, token).status_code == 401


def test_delete_with_a_stale_version_changes_nothing(registry: Rfc7592Registry) -> None:
    created, _ = registry.create_client(SERVICE)
    registry.replace_client(SERVICE._replace(name="Changed"), None)
    with pytest.raises(PreconditionFailedError):
        registry.delete_client("globex-service", created.version)
    assert registry.get_client("globex-service") is not None


def test_client_deleted_out_of_band_is_left_out_with_recovery(
    registry: Rfc7592Registry,
) -> None:
    registry.create_client(SERVICE)
    registry.create_client(WEB)
    registration = registry.state.get("globex-service")
    assert registration is not None
    token = registration.registration_access_token.reveal()
    assert raw("DELETE", registration.registration_client_uri, token).status_code == 204
    # The other client is still read; the refused one is listed with its recovery.
    assert [rc.client for rc in registry.list_clients()] == [WEB]
    assert registry.unreachable() == [Unreachable("globex-service", (
        "reading client globex-service: the registry refused the registration access token "
        f"of globex-service (registry client_id {registration.server_client_id}): the client "
        "was deleted on the server, or its token was revoked or rotated elsewhere. If it "
        "still exists, run `oauth2-sync adopt globex-service --registration-client-uri "
        f"{registration.registration_client_uri}` with its current token in "
        "OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN; if it is gone, run "
        "`oauth2-sync forget globex-service`"
    ))]
    assert token not in registry.unreachable()[0].reason
    # A write to it is still an error of its own, with the same recovery.
    with pytest.raises(RegistryError) as caught:
        registry.replace_client(SERVICE, None)
    assert caught.value.status == 401
    assert str(caught.value).endswith("run `oauth2-sync forget globex-service`")


def test_a_token_rotated_by_a_change_made_elsewhere_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IAT_ENV, INITIAL_ACCESS_TOKEN)
    with running_peer(rotate_registration_access_token=True) as server:
        settings = settings_for(tmp_path, server.registry_url)
        with open_registry(settings) as registry:
            assert isinstance(registry, Rfc7592Registry)
            registry.create_client(SERVICE)
            registry.create_client(WEB)
            uri, token = uri_of(registry, "acme-web"), token_of(registry, "acme-web")
        # Someone with a copy of the token changes the client: the server rotates it.
        current = raw("GET", uri, token).json()
        for field in ("registration_access_token", "registration_client_uri",
                      "client_secret_expires_at", "client_id_issued_at"):
            del current[field]
        current["client_name"] = "Renamed elsewhere"
        assert raw("PUT", uri, token, current).status_code == 200
        with open_registry(settings) as registry:
            assert [rc.client for rc in registry.list_clients()] == [SERVICE]
            [gone] = registry.unreachable()
            assert gone.client_id == "acme-web"
            assert "its token was revoked or rotated elsewhere" in gone.reason


def test_a_token_presented_for_another_client_is_destroyed(registry: Rfc7592Registry) -> None:
    registry.create_client(SERVICE)
    registry.create_client(WEB)
    service_token = token_of(registry, "globex-service")
    assert raw("GET", uri_of(registry, "acme-web"), service_token).status_code == 401
    # The server destroyed the token that was misused: its own client is out of reach now.
    assert raw("GET", uri_of(registry, "globex-service"), service_token).status_code == 401


def test_rotate_secret_is_not_possible(registry: Rfc7592Registry) -> None:
    with pytest.raises(RegistryError) as caught:
        registry.rotate_secret("acme-web")
    assert str(caught.value) == (
        "cannot rotate the secret of acme-web: a standard (RFC 7592) registry has no secret "
        "rotation; rotate it on the server, or delete the client and let apply create it "
        "again (it gets a new registry client_id)"
    )


# --- metadata the server does not keep ---------------------------------------------------


def test_extension_metadata_dropped_by_the_server_is_detected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IAT_ENV, INITIAL_ACCESS_TOKEN)
    with (
        running_peer(declare_extra_metadata=False) as server,
        open_registry(settings_for(tmp_path, server.registry_url)) as registry,
    ):
        assert isinstance(registry, Rfc7592Registry)
        with pytest.raises(RegistryError) as caught:
            registry.create_client(WEB)
        assert str(caught.value) == (
            "creating client acme-web: the registry did not keep oauth2_sync_client_id "
            "(dropped), oauth2_sync_partner (dropped), "
            "oauth2_sync_restrict_to_partner_users (dropped), "
            "oauth2_sync_access_token_ttl (dropped), oauth2_sync_refresh_token_ttl "
            "(dropped); the client was deleted again. A server drops metadata it does "
            "not know: declare the oauth2_sync_* fields on it (oidc-provider: "
            "extraClientMetadata.properties)"
        )
        # Undone: nothing recorded, nothing left to manage.
        assert registry.state.entries() == []


# --- adopt, forget, restarts -------------------------------------------------------------


def test_lost_state_is_rebuilt_with_adopt(
    settings: Settings, registry: Rfc7592Registry
) -> None:
    registry.create_client(MOBILE)
    registration = registry.state.get("acme-mobile")
    assert registration is not None
    registry.close()
    assert settings.registry.state_file is not None
    settings.registry.state_file.unlink()

    remote = adopt(settings, "acme-mobile", registration.registration_client_uri,
                   registration.registration_access_token)
    assert remote.client == MOBILE
    with open_registry(settings) as reopened:
        assert [rc.client for rc in reopened.list_clients()] == [MOBILE]
        assert isinstance(reopened, Rfc7592Registry)
        assert reopened.state.get("acme-mobile") == registration


def test_adopt_refuses_a_registration_of_another_client(
    settings: Settings, registry: Rfc7592Registry
) -> None:
    registry.create_client(MOBILE)
    registration = registry.state.get("acme-mobile")
    assert registration is not None
    registry.close()
    with pytest.raises(UsageError) as caught:
        adopt(settings, "acme-web", registration.registration_client_uri,
              registration.registration_access_token)
    assert str(caught.value) == (
        f"the registration at {registration.registration_client_uri} belongs to "
        "'acme-mobile' (oauth2_sync_client_id), not 'acme-web'"
    )


def test_adopt_with_a_wrong_token(settings: Settings, registry: Rfc7592Registry) -> None:
    registry.create_client(MOBILE)
    uri = uri_of(registry, "acme-mobile")
    registry.close()
    with pytest.raises(RegistryError) as caught:
        adopt(settings, "acme-mobile", uri, Secret("not-the-token"))
    assert str(caught.value) == (
        f"adopting acme-mobile: the registry refused the registration access token for "
        f"{uri} (401)"
    )


def test_adopt_a_registration_made_by_hand(
    settings: Settings, registry: Rfc7592Registry, peer: OidcPeer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    by_hand = {k: v for k, v in to_metadata(SERVICE).items() if not k.startswith("oauth2_sync")}
    made = requests.post(
        peer.registration_endpoint, json=by_hand, timeout=10,
        headers={"Authorization": f"Bearer {INITIAL_ACCESS_TOKEN}"},
    ).json()
    token = Secret(made["registration_access_token"])
    with caplog.at_level(logging.WARNING):
        remote = registry.adopt("globex-service", made["registration_client_uri"], token)
    assert "globex-service: the registration has no oauth2_sync_client_id" in caplog.text
    # Absent extensions read as the defaults, the partner from the client ID's prefix.
    assert remote.client == SERVICE
    updated = registry.replace_client(SERVICE, remote.version)
    body = raw("GET", made["registration_client_uri"], token.reveal()).json()
    assert body["oauth2_sync_client_id"] == "globex-service"
    assert updated.client == SERVICE


def test_restart_loses_every_client_and_forget_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IAT_ENV, INITIAL_ACCESS_TOKEN)
    server = OidcPeer.start()
    try:
        settings = settings_for(tmp_path, server.registry_url)
        with open_registry(settings) as registry:
            registry.create_client(SERVICE)
            registry.create_client(WEB)
        server.stop()
        server = OidcPeer.start(port=server.port)
        with open_registry(settings) as registry, pytest.raises(RegistryError) as caught:
            registry.list_clients()
        # Said once, for all of them, with the recovery.
        assert str(caught.value) == (
            "the registry refused all 2 registrations of the state file "
            f"{settings.registry.state_file}: it has most likely lost its clients (a restart "
            "of a server that keeps them in memory, or a new database). If so, remove the "
            "state file and apply creates them again; if they still exist, run "
            "`oauth2-sync adopt CLIENT_ID --registration-client-uri URI` for each with its "
            "current token in OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN"
        )
        assert caught.value.status == 401
        assert forget(settings, "globex-service") is True
        assert forget(settings, "globex-service") is False
        with open_registry(settings) as registry:
            # One registration left: refused on its own, not as "all".
            assert registry.list_clients() == []
            assert [u.client_id for u in registry.unreachable()] == ["acme-web"]
        assert forget(settings, "acme-web") is True
        with open_registry(settings) as registry:
            assert registry.list_clients() == []
            assert registry.unreachable() == []
            registry.create_client(SERVICE)
            assert [rc.client for rc in registry.list_clients()] == [SERVICE]
    finally:
        server.stop()


def test_two_runs_cannot_hold_the_state_at_once(
    settings: Settings, registry: Rfc7592Registry
) -> None:
    with pytest.raises(RegistryError, match="locked by another oauth2-sync run"):
        open_registry(settings)


# --- secrets never show ------------------------------------------------------------------


def test_tokens_and_secrets_never_reach_logs_or_messages(
    registry: Rfc7592Registry, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    created, secret = registry.create_client(WEB)
    token = token_of(registry, "acme-web")
    replaced = registry.replace_client(WEB._replace(name="X"), created.version)
    registry.list_clients()
    messages = []
    for attempt in (
        lambda: registry.replace_client(WEB, created.version),
        lambda: registry.create_client(WEB),
        lambda: registry.delete_client("acme-web", created.version),
    ):
        with pytest.raises(RegistryError) as caught:
            attempt()
        messages.append(str(caught.value))
    registry.delete_client("acme-web", replaced.version)
    with pytest.raises(NotFoundError) as gone:
        registry.replace_client(WEB, None)
    messages.append(str(gone.value))
    out, err = capsys.readouterr()
    seen = "\n".join([caplog.text, out, err, *messages, repr(created), repr(replaced)])
    assert secret is not None
    for credential in (token, secret.reveal(), INITIAL_ACCESS_TOKEN):
        assert credential not in seen
    assert "created acme-web as registry client_id" in caplog.text


# Extension fields under the server's own names, or not kept at all (#18).

RENAMED = {
    "oauth2_sync_client_id": "sync_id", "oauth2_sync_partner": "partner",
    "oauth2_sync_access_token_ttl": "at_lifetime",
    "oauth2_sync_restrict_to_partner_users": "", "oauth2_sync_refresh_token_ttl": "",
}
"""How the peer's administrator declared them: two not at all."""
FIELDS = {
    "client_id": "sync_id", "partner": "partner", "access_token_ttl": "at_lifetime",
    "restrict_to_partner_users": None, "refresh_token_ttl": None,
}
"""The same, as the settings name them (``registry.capabilities.fields``)."""


@pytest.fixture(scope="module")
def renamed_peer() -> Iterator[OidcPeer]:
    with running_peer(
        rotate_registration_access_token=True, extra_names=RENAMED, client_credentials=True,
    ) as server:
        yield server


def test_extension_fields_travel_under_the_names_the_settings_give(
    tmp_path: Path, renamed_peer: OidcPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IAT_ENV, INITIAL_ACCESS_TOKEN)
    wanted = client("acme-svc", grant_types=("client_credentials",), scopes=("read",),
                    access_token_ttl=600)
    settings = load_settings(write_repo(tmp_path, [wanted], extra={"registry": {
        "url": renamed_peer.registry_url, "state_file": "state/rfc7592.json",
        "capabilities": {"fields": FIELDS, "grant_types": ["client_credentials"]},
    }}))
    with open_registry(settings) as registry:
        assert isinstance(registry, Rfc7592Registry)
        created, _ = registry.create_client(wanted)
        assert created.client == wanted
        held = raw("GET", uri_of(registry, "acme-svc"), token_of(registry, "acme-svc")).json()
        assert {k: held.get(k) for k in ("sync_id", "partner", "at_lifetime")} == {
            "sync_id": "acme-svc", "partner": "acme", "at_lifetime": 600,
        }
        assert [k for k in held if k.startswith("oauth2_sync")] == []
        # An update in place, with the token rotated by the server on the way.
        before = token_of(registry, "acme-svc")
        changed = wanted._replace(access_token_ttl=900)
        assert registry.replace_client(changed, created.version).client == changed
        assert token_of(registry, "acme-svc") != before
        assert registry.get_client("acme-svc") is not None


def test_a_field_the_server_cannot_keep_is_left_out_of_the_plan_at_that_field(
    tmp_path: Path, renamed_peer: OidcPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IAT_ENV, INITIAL_ACCESS_TOKEN)
    keeps = client("acme-ok", grant_types=("client_credentials",))
    cannot = client("acme-long", grant_types=("client_credentials",), refresh_token_ttl=3600)
    settings = load_settings(write_repo(tmp_path, [keeps, cannot], extra={"registry": {
        "url": renamed_peer.registry_url, "state_file": "state/rfc7592.json",
        "capabilities": {"fields": FIELDS},
    }}))
    with open_registry(settings) as registry:
        made = make_plan(settings, registry)
    assert [(c.action, c.client_id) for c in made.changes] == [("create", "acme-ok")]
    (file,) = (settings.root / "clients").rglob("*.yaml")
    line, column = next((n, text.index("1h") + 1) for n, text in
                        enumerate(file.read_text().splitlines(), 1) if "refresh_token_ttl" in text)
    assert [str(d).split(": error: ")[0] for d in made.errors] == [
        f"{made.errors[0].file}:{line}:{column}"
    ]
    assert [d.message for d in made.errors] == [
        "client acme-long: the registry cannot hold refresh_token_ttl (no metadata name for it "
        "in registry.capabilities.fields); leave it out of the file, or declare the field on "
        "the server and name it in the settings"
    ]
