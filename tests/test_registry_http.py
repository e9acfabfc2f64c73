"""The HTTP adapter against the real server, through a fault-injecting proxy.

The proxy (``tests/faultproxy.py``) is a real HTTP server on 127.0.0.1 between the
adapter and ``registry serve``: it passes requests through, logs them, and on request
answers 5xx/429 itself, drops the connection before forwarding (the request never
arrived) or after forwarding (the request was carried out, its response lost), or
stalls. Nothing in ``requests`` is mocked.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from support.clock import clocked_server
from support.faultproxy import FaultProxy, start_proxy
from support.faultproxy import origin as proxy_origin
from support.registry import RegistryServer

from oauth2_sync.errors import (
    ConflictError,
    CreatedResponseLostError,
    NotFoundError,
    PreconditionFailedError,
    RegistryError,
    UsageError,
)
from oauth2_sync.model import Client
from oauth2_sync.registry import open_registry
from oauth2_sync.registry.http import (
    Credentials,
    HttpRegistry,
    check_transport,
    credentials_from_settings,
    default_token_url,
)
from oauth2_sync.secret import Secret
from oauth2_sync.settings import Settings


def origin(server: RegistryServer) -> str:
    """``http://127.0.0.1:PORT`` of a server."""
    return proxy_origin(server.base_url)


@pytest.fixture
def proxy(registry_server: RegistryServer) -> Iterator[FaultProxy]:
    """A fault proxy in front of the session's registry server."""
    running = start_proxy(origin(registry_server))
    yield running
    running.stop()


def adapter(
    url: str,
    credential: tuple[str, str] = ("oauth2-sync-ci", "ci-secret-for-local-tests"),
    **options: Any,
) -> HttpRegistry:
    """An adapter with short backoffs (tests wait for nothing longer than Retry-After)."""
    settings: dict[str, Any] = {"backoff_factor": 0.01, "retries": 3}
    settings.update(options)
    return HttpRegistry(url, Credentials(credential[0], Secret(credential[1])), **settings)


def new_client(name: str = "svc") -> Client:
    """An acme client with an ID no other test uses."""
    client_id = f"acme-{uuid.uuid4().hex[:8]}-{name}"
    return Client(client_id, "Service", "team@acme.example", "acme")


# --- retries -------------------------------------------------------------------


def test_gets_are_retried_on_5xx(proxy: FaultProxy) -> None:
    proxy.inject("GET", "/v1/partners", "503")
    proxy.inject("GET", "/v1/partners", "502")
    proxy.inject("GET", "/v1/partners", "504")
    with adapter(proxy.base_url) as registry:
        assert len(registry.list_partners()) == 4
    assert proxy.calls(path="/v1/partners") == [
        ("GET", 503), ("GET", 502), ("GET", 504), ("GET", 200),
    ]


def test_a_500_is_retried_too_and_a_create_meeting_it_reads_first(proxy: FaultProxy) -> None:
    client = new_client()
    proxy.inject("GET", "/v1/partners", "500")
    proxy.inject("POST", "/v1/oauth2-clients", "500")
    with adapter(proxy.base_url) as registry:
        registry.list_partners()
        created, _ = registry.create_client(client)
    assert created.client == client
    assert proxy.calls(path="/v1/partners")[:2] == [("GET", 500), ("GET", 200)]
    assert proxy.calls(path="/v1/oauth2-clients") == [
        ("POST", 500), ("GET", 404), ("POST", 201),
    ]


def test_gets_give_up_after_the_retries(proxy: FaultProxy) -> None:
    proxy.inject("GET", "/v1/partners", "503", times=3)
    with adapter(proxy.base_url, retries=2) as registry, pytest.raises(RegistryError) as info:
        registry.list_partners()
    assert str(info.value) == "GET /v1/partners: 503 Service Unavailable: injected 503"
    assert info.value.status == 503
    assert len(proxy.calls(path="/v1/partners")) == 3


def test_429_retry_after_is_honoured(proxy: FaultProxy) -> None:
    proxy.inject("GET", "/v1/partners", "429")
    with adapter(proxy.base_url) as registry:
        registry.list_partners()
    assert proxy.calls(path="/v1/partners") == [("GET", 429), ("GET", 200)]


def test_the_servers_rate_limit_is_honoured(
    start_registry_server: Callable[..., RegistryServer],
) -> None:
    server = start_registry_server(rate_limit=2)
    limited = start_proxy(origin(server))
    with adapter(limited.base_url) as registry:
        for _ in range(6):
            assert len(registry.list_partners()) == 4
    statuses = [status for _, status in limited.calls(path="/v1/partners")]
    assert 429 in statuses
    assert statuses.count(200) == 6


def test_a_read_timeout_is_retried(proxy: FaultProxy) -> None:
    proxy.slow_seconds = 1.0
    proxy.inject("GET", "/v1/partners", "slow")
    with adapter(proxy.base_url, read_timeout=0.3) as registry:
        registry.list_partners()
    # The slow one has status 200 in the log: the proxy answered, the adapter had left.
    assert [m for m, _ in proxy.calls(path="/v1/partners")] == ["GET", "GET"]


# --- creates are never retried blindly -------------------------------------------


def test_a_create_refused_before_arrival_is_sent_again(proxy: FaultProxy) -> None:
    client = new_client()
    proxy.inject("POST", "/v1/oauth2-clients", "reset")
    with adapter(proxy.base_url) as registry:
        created, secret = registry.create_client(client)
    assert created.client == client
    assert secret is not None and secret.reveal()
    assert proxy.calls(path="/v1/oauth2-clients") == [
        ("POST", 0), ("GET", 404), ("POST", 201),
    ]


def test_a_create_whose_response_was_lost(proxy: FaultProxy) -> None:
    client = new_client()
    proxy.inject("POST", "/v1/oauth2-clients", "lost")
    with adapter(proxy.base_url) as registry:
        with pytest.raises(CreatedResponseLostError) as info:
            registry.create_client(client)
        assert registry.get_client(client.client_id) is not None
    assert isinstance(info.value, ConflictError)
    assert str(info.value) == (
        f"POST /v1/oauth2-clients: the response was lost (no response) and client "
        f"{client.client_id} exists now; its secret was not received: run "
        f"`oauth2-sync rotate-secret {client.client_id}`"
    )
    assert proxy.calls(path="/v1/oauth2-clients")[:2] == [("POST", 0), ("GET", 200)]
    assert [m for m, _ in proxy.calls(path="/v1/oauth2-clients")].count("POST") == 1


def test_a_create_after_a_gateway_error_reads_first(proxy: FaultProxy) -> None:
    client = new_client()
    proxy.inject("POST", "/v1/oauth2-clients", "503")
    with adapter(proxy.base_url) as registry:
        created, _ = registry.create_client(client)
    assert created.client == client
    assert proxy.calls(path="/v1/oauth2-clients") == [
        ("POST", 503), ("GET", 404), ("POST", 201),
    ]


def test_a_rate_limited_create_is_sent_again_without_reading(proxy: FaultProxy) -> None:
    proxy.inject("POST", "/v1/oauth2-clients", "429")
    with adapter(proxy.base_url) as registry:
        registry.create_client(new_client())
    assert proxy.calls(path="/v1/oauth2-clients") == [("POST", 429), ("POST", 201)]


def test_a_create_gives_up_after_the_retries(proxy: FaultProxy) -> None:
    client = new_client()
    proxy.inject("POST", "/v1/oauth2-clients", "502", times=2)
    with adapter(proxy.base_url, retries=1) as registry, pytest.raises(RegistryError) as info:
        registry.create_client(client)
    assert str(info.value) == "POST /v1/oauth2-clients: 502 Bad Gateway: injected 502"
    assert proxy.calls(path="/v1/oauth2-clients") == [("POST", 502), ("GET", 404), ("POST", 502)]


# --- idempotent writes whose response was lost -------------------------------------


def test_a_replace_whose_response_was_lost(proxy: FaultProxy) -> None:
    with adapter(proxy.base_url) as registry:
        created, _ = registry.create_client(new_client())
        wanted = created.client._replace(name="Renamed")
        proxy.inject("PUT", "/v1/oauth2-clients/", "lost")
        replaced = registry.replace_client(wanted, created.version)
    assert replaced.client == wanted
    assert proxy.calls(path=f"/v1/oauth2-clients/{wanted.client_id}") == [
        ("PUT", 0), ("PUT", 412), ("GET", 200),
    ]


def test_a_replace_meeting_someone_elses_change_is_refused(proxy: FaultProxy) -> None:
    with adapter(proxy.base_url) as registry:
        created, _ = registry.create_client(new_client())
        registry.replace_client(created.client._replace(name="Theirs"), created.version)
        proxy.inject("PUT", "/v1/oauth2-clients/", "lost")
        with pytest.raises(PreconditionFailedError):
            registry.replace_client(created.client._replace(name="Ours"), created.version)


def test_a_delete_whose_response_was_lost(proxy: FaultProxy) -> None:
    with adapter(proxy.base_url) as registry:
        created, _ = registry.create_client(new_client())
        proxy.inject("DELETE", "/v1/oauth2-clients/", "lost")
        registry.delete_client(created.client.client_id, created.version)
        assert registry.get_client(created.client.client_id) is None
    assert proxy.calls(path=f"/v1/oauth2-clients/{created.client.client_id}")[-3:-1] == [
        ("DELETE", 0), ("DELETE", 404),
    ]


def test_a_rotation_is_retried(proxy: FaultProxy) -> None:
    with adapter(proxy.base_url) as registry:
        created, first = registry.create_client(new_client())
        proxy.inject("POST", "/v1/oauth2-clients/", "503")
        second = registry.rotate_secret(created.client.client_id)
    assert second != first
    assert proxy.calls(path=f"/v1/oauth2-clients/{created.client.client_id}/secret") == [
        ("POST", 503), ("POST", 200),
    ]


# --- tokens ---------------------------------------------------------------------------


def assert_expired_by_the_server(front: FaultProxy) -> None:
    """The one 401 the proxy saw was the server's own, relayed: an expired token."""
    (expired,) = [e for e in front.exchanges(path="/") if e.status == 401]
    assert (expired.upstream, expired.fault) == (401, None)
    assert json.loads(expired.response)["error"] == "invalid_token"


def test_an_expired_token_is_renewed_once(tmp_path: Path) -> None:
    with clocked_server(tmp_path) as (server, clock):
        front = start_proxy(proxy_origin(server.url))
        try:
            with adapter(front.base_url) as registry:
                registry.list_partners()
                clock.advance(1.001)  # past the 1 s token: the server answers 401 to it
                registry.list_partners()
        finally:
            front.stop()
    assert front.calls(path="/") == [
        ("POST", 200), ("GET", 200), ("GET", 401), ("POST", 200), ("GET", 200),
    ]
    assert_expired_by_the_server(front)


def test_the_password_grant_refreshes_with_its_refresh_token(tmp_path: Path) -> None:
    credentials = Credentials(
        "oauth2-sync-ci", Secret("ci-secret-for-local-tests"), "password",
        "ops", Secret("ops-password-for-local-tests"),
    )
    with clocked_server(tmp_path) as (server, clock):
        front = start_proxy(proxy_origin(server.url))
        try:
            with HttpRegistry(front.base_url, credentials, backoff_factor=0.01) as registry:
                registry.list_partners()
                clock.advance(1.001)  # the access token expired, the refresh token did not
                registry.list_partners()
        finally:
            front.stop()
    assert front.calls(path="/v1/partners") == [("GET", 200), ("GET", 401), ("GET", 200)]
    assert_expired_by_the_server(front)
    grants = [
        parse_qs(e.body.decode())["grant_type"][0] for e in front.log if e.path == "/oauth/token"
    ]
    assert grants == ["password", "refresh_token"]


def test_wrong_credentials(registry_server: RegistryServer) -> None:
    registry = adapter(registry_server.base_url, ("oauth2-sync-ci", "wrong"))
    with registry, pytest.raises(RegistryError) as info:
        registry.list_partners()
    assert str(info.value) == (
        "POST /oauth/token: 401 Unauthorized: client authentication failed; check "
        "OAUTH2_SYNC_CLIENT_ID and OAUTH2_SYNC_CLIENT_SECRET (named in registry.auth)"
    )
    assert "wrong" not in str(info.value)


def test_a_read_only_credential_cannot_write(registry_server: RegistryServer) -> None:
    registry = adapter(registry_server.base_url, registry_server.plan)
    with registry, pytest.raises(RegistryError) as info:
        registry.create_client(new_client())
    assert str(info.value) == (
        "POST /v1/oauth2-clients: 403 Forbidden: the token's scope 'read' does not allow writes"
    )
    assert info.value.status == 403


# --- errors ---------------------------------------------------------------------------


def test_errors_are_one_line_with_fields(registry_server: RegistryServer) -> None:
    bad = new_client()._replace(email="a@acme.example\nb@acme.example", access_token_ttl=0)
    with adapter(registry_server.base_url) as registry, pytest.raises(RegistryError) as info:
        registry.create_client(bad)
    assert "\n" not in str(info.value)
    assert info.value.fields == {
        "accessTokenValiditySeconds": "must be null (platform default), -1 (never expires) or "
                                      "a positive number of seconds",
        "email": "must be exactly one e-mail address",
    }
    assert str(info.value) == (
        "POST /v1/oauth2-clients: 400 Bad Request: invalid client metadata: "
        "accessTokenValiditySeconds: must be null (platform default), -1 (never expires) or "
        "a positive number of seconds; email: must be exactly one e-mail address"
    )


def test_not_found_errors(registry_server: RegistryServer) -> None:
    client = new_client()
    with adapter(registry_server.base_url) as registry:
        assert registry.get_client(client.client_id) is None
        with pytest.raises(NotFoundError) as info:
            registry.rotate_secret(client.client_id)
    assert str(info.value) == (
        f"POST /v1/oauth2-clients/{client.client_id}/secret: 404 Not Found: "
        f"client {client.client_id} does not exist"
    )


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_registry() -> None:
    port = free_port()
    registry = adapter(f"http://127.0.0.1:{port}/v1", retries=1)
    with registry, pytest.raises(RegistryError) as info:
        registry.list_partners()
    assert str(info.value) == (
        f"POST /oauth/token: cannot reach 127.0.0.1:{port}: connection refused (2 attempts); "
        "check registry.url and that the registry is running"
    )
    assert info.value.status == 0


# --- transport rules and settings -------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://registry.example/v1",
         "refusing plain http to registry.example: use https (http is allowed only for "
         "loopback addresses)"),
        ("http://10.1.2.3:8080/v1",
         "refusing plain http to 10.1.2.3: use https (http is allowed only for loopback "
         "addresses)"),
        ("ftp://registry.example/v1",
         "unsupported registry URL 'ftp://registry.example/v1': use https://HOST/.../v1"),
    ],
)
def test_plain_http_is_refused_beyond_loopback(url: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        adapter(url)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "url",
    ["https://registry.example/v1", "http://127.0.0.1:9/v1", "http://127.8.0.1:9/v1",
     "http://localhost:9/v1", "http://[::1]:9/v1"],
)
def test_allowed_transports(url: str) -> None:
    check_transport(url)
    registry = adapter(url)
    assert registry.session.verify is True
    registry.close()


def test_a_plain_http_token_url_is_refused() -> None:
    with pytest.raises(UsageError) as info:
        adapter("https://registry.example/v1", token_url="http://auth.example/token")
    assert str(info.value).startswith("refusing plain http to auth.example")


def test_default_token_url() -> None:
    assert default_token_url("https://r.example/api/v1/") == "https://r.example/api/oauth/token"
    assert default_token_url("https://r.example/api") == "https://r.example/api/oauth/token"


def test_from_settings(
    registry_server: RegistryServer,
    registry_env: dict[str, str],
    registry_settings: Callable[..., Settings],
) -> None:
    settings = registry_settings(
        registry_server.base_url,
        registry={"connect_timeout": 2, "read_timeout": 7, "retries": 4, "page_size": 50},
    )
    with open_registry(settings) as registry:
        assert isinstance(registry, HttpRegistry)
        assert registry.timeout == (2.0, 7.0)
        assert (registry.retries, registry.page_size) == (4, 50)
        assert registry.token_url == registry_server.token_url
        assert registry.url == registry_server.base_url
        assert len(registry.list_partners()) == 4
    assert "ci-secret" not in repr(registry.credentials)


def test_settings_refuse_plain_http(
    registry_env: dict[str, str], registry_settings: Callable[..., Settings]
) -> None:
    with pytest.raises(UsageError) as info:
        open_registry(registry_settings("http://registry.example/v1"))
    assert str(info.value) == (
        "refusing plain http to registry.example: use https (http is allowed only for "
        "loopback addresses)"
    )


def test_missing_credentials(
    registry_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OAUTH2_SYNC_CLIENT_ID", raising=False)
    monkeypatch.delenv("OAUTH2_SYNC_CLIENT_SECRET", raising=False)
    settings = registry_settings("https://registry.example/v1")
    with pytest.raises(UsageError) as info:
        credentials_from_settings(settings)
    assert str(info.value) == (
        "registry credentials: set OAUTH2_SYNC_CLIENT_ID to the API client ID "
        "(named in registry.auth)"
    )
    monkeypatch.setenv("OAUTH2_SYNC_CLIENT_ID", "oauth2-sync-ci")
    with pytest.raises(UsageError) as info:
        credentials_from_settings(settings)
    assert str(info.value) == (
        "registry credentials: set OAUTH2_SYNC_CLIENT_SECRET to the API client secret "
        "(named in registry.auth)"
    )


def test_secret_file_and_password_grant(
    registry_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name in ("OAUTH2_SYNC_CLIENT_SECRET", "MY_USER", "MY_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MY_ID", "oauth2-sync-ci")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "api-secret").write_text("from-a-file\n")
    settings = registry_settings(
        "https://registry.example/v1",
        registry={"auth": {
            "grant_type": "password", "client_id_env": "MY_ID",
            "client_secret_file": "api-secret", "username_env": "MY_USER",
            "password_env": "MY_PASSWORD",
        }},
    )
    with pytest.raises(UsageError) as info:
        credentials_from_settings(settings)
    assert str(info.value) == (
        "registry credentials: set MY_USER to the user name (named in registry.auth)"
    )
    monkeypatch.setenv("MY_USER", "ops")
    monkeypatch.setenv("MY_PASSWORD", "pw")
    creds = credentials_from_settings(settings)
    assert creds == Credentials(
        "oauth2-sync-ci", Secret("from-a-file"), "password", "ops", Secret("pw")
    )
    assert "from-a-file" not in repr(creds)
