"""The transport edge of the HTTP adapters: URL checks, path segments, the circuit
breaker, deadlines, paging limits and setup diagnostics.

Everything runs over real sockets on 127.0.0.1: the reference server, and hostile
servers (``http.server`` threads, or raw sockets) for what a real registry will not
do: trickle a response, repeat a page, list clients ``.`` and ``..``.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CI_CREDENTIAL, PLAN_CREDENTIAL, RegistryServer

from oauth2_sync.errors import RegistryError, RegistryUnavailableError, UsageError
from oauth2_sync.model import Client
from oauth2_sync.registry.base import Secret
from oauth2_sync.registry.http import Credentials, HttpRegistry
from oauth2_sync.registry.rfc7592 import check_transport as rfc7592_check
from oauth2_sync.registry.store import RegistryStore
from oauth2_sync.registry.transport import segment

Handler = Callable[[BaseHTTPRequestHandler], None]


def adapter(url: str, credential: tuple[str, str] = CI_CREDENTIAL, **options: Any) -> HttpRegistry:
    """An adapter with short backoffs."""
    settings: dict[str, Any] = {"backoff_factor": 0.01, "retries": 2}
    settings.update(options)
    return HttpRegistry(url, Credentials(credential[0], Secret(credential[1])), **settings)


class Hostile:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 whose GETs ``answer`` decides; it hands out
    tokens at ``/oauth/token`` and logs every request line."""

    def __init__(self, answer: Handler) -> None:
        self.lines: list[str] = []
        outer = self

        class Handle(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                outer.lines.append(self.requestline)
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if self.path == "/oauth/token":
                    send_json(self, 200, {"access_token": "t", "scope": "read write"})
                    return
                answer(self)

            do_GET = do_POST = do_PUT = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def send_json(handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@pytest.fixture
def hostile() -> Iterator[Callable[[Handler], Hostile]]:
    started: list[Hostile] = []

    def start(answer: Handler) -> Hostile:
        server = Hostile(answer)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


PARTNERS = [{"id": 101, "subdomain": "acme", "name": "Acme", "users": []}]


def wire_client(client_id: str) -> dict[str, Any]:
    return {
        "clientId": client_id, "name": "x", "email": "x@acme.example", "partnerId": 101,
        "restrictToPartnerUsers": True, "scope": ["read"], "grantTypes": ["password"],
        "redirectUri": "", "accessTokenValiditySeconds": None,
        "refreshTokenValiditySeconds": None, "version": 1,
    }


class Listener:
    """A raw listening socket on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])

    def accepted(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                return count
            conn.close()
            count += 1


# --- #12.3: one URL check, on the host urllib3 connects to ---------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://evil.example\\@127.0.0.1:{port}/v1",
         "refusing registry.url: it holds a backslash; use https://HOST/.../v1"),
        ("http://127.0.0.2:{port}\\@127.0.0.1:{port}/v1",
         "refusing registry.url: it holds a backslash; use https://HOST/.../v1"),
        ("http://user:pw@127.0.0.1:{port}/v1",
         "refusing registry.url: it holds user info (credentials belong in registry.auth); "
         "use https://HOST/.../v1"),
        ("http://127.0.0.1:{port}/v1 ",
         "refusing registry.url: it holds whitespace or control characters; "
         "use https://HOST/.../v1"),
        ("http://127.0.0.1:{port}\t/v1",
         "refusing registry.url: it holds whitespace or control characters; "
         "use https://HOST/.../v1"),
        ("https:///v1", "refusing registry.url: it has no host; use https://HOST/.../v1"),
    ],
    ids=["backslash", "backslash-loopback", "userinfo", "trailing-space", "tab", "no-host"],
)
def test_ambiguous_urls_are_refused_before_any_connection(url: str, message: str) -> None:
    listener = Listener()
    with pytest.raises(UsageError) as info:
        adapter(url.format(port=listener.port))
    assert str(info.value) == message
    assert "pw" not in str(info.value)
    assert listener.accepted() == 0


def test_the_token_url_gets_the_same_check() -> None:
    listener = Listener()
    with pytest.raises(UsageError) as info:
        adapter(
            f"http://127.0.0.1:{listener.port}/v1",
            token_url=f"http://evil.example\\@127.0.0.1:{listener.port}/oauth/token",
        )
    assert str(info.value) == (
        "refusing registry.auth.token_url: it holds a backslash; use https://HOST/.../v1"
    )
    assert listener.accepted() == 0


def test_the_rfc7592_adapter_uses_the_same_check() -> None:
    with pytest.raises(UsageError) as info:
        rfc7592_check("http://evil.example\\@127.0.0.1/reg/x", "the registration client URI")
    assert str(info.value) == "refusing the registration client URI: it holds a backslash"
    with pytest.raises(UsageError) as info:
        rfc7592_check("http://a:secret@127.0.0.1/reg/x", "the registration client URI")
    assert str(info.value) == (
        "refusing the registration client URI: it holds user info (credentials belong in "
        "registry.auth)"
    )


# --- #12.7: client IDs "." and ".." ------------------------------------------------------


def test_dot_segments_are_encoded() -> None:
    assert [segment(v) for v in (".", "..", "...", "a/b", "%2E")] == [
        "%2E", "%2E%2E", "...", "a%2Fb", "%252E",
    ]


def add_dot_clients(server: RegistryServer) -> None:
    """Clients "." and ".." in the server's store (its API refuses such IDs)."""
    store = RegistryStore(server.db)
    bodies = [{"clientId": f"acme-dot{i}", "name": "x", "email": "x@acme.example", "partnerId": 101}
              for i in (1, 2)]
    store.bulk_create(bodies, "seed")
    store.close()
    with sqlite3.connect(server.db) as db:
        db.execute("UPDATE clients SET client_id='.' WHERE client_id='acme-dot1'")
        db.execute("UPDATE clients SET client_id='..' WHERE client_id='acme-dot2'")


def test_dot_client_ids_address_themselves_on_the_reference_server(
    start_registry_server: Callable[..., RegistryServer],
) -> None:
    server = start_registry_server()
    add_dot_clients(server)
    with adapter(server.base_url) as registry:
        listed = {r.client.client_id: r for r in registry.list_clients()}
        assert {".", ".."} <= set(listed)
        for client_id in (".", ".."):
            found = registry.get_client(client_id)
            assert found is not None and found.client.client_id == client_id
            registry.delete_client(client_id, listed[client_id].version)
            assert registry.get_client(client_id) is None
        assert not {".", ".."} & {r.client.client_id for r in registry.list_clients()}


def test_an_unknown_route_is_never_already_deleted(
    hostile: Callable[[Handler], Hostile],
) -> None:
    def answer(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v1/partners":
            send_json(h, 200, PARTNERS)
        elif h.path.startswith("/v1/oauth2-clients?"):
            send_json(h, 200, {"total": 2, "page": 0, "pageSize": 500,
                               "list": [wire_client("."), wire_client("..")]})
        else:
            h.send_error(404)  # http.server's own HTML page, as for any unknown route

    server = hostile(answer)
    with adapter(server.base_url) as registry:
        assert [r.client.client_id for r in registry.list_clients()] == [".", ".."]
        with pytest.raises(RegistryError) as info:
            registry.delete_client("..", None)
        assert type(info.value) is RegistryError
        assert str(info.value) == (
            "DELETE /v1/oauth2-clients/%2E%2E: 404 Not Found: Not Found; the base path looks "
            "wrong: registry.url must end in the API's base, e.g. /v1"
        )
        with pytest.raises(RegistryError) as info:
            registry.get_client(".")
        assert type(info.value) is RegistryError
    assert "DELETE /v1/oauth2-clients/%2E%2E HTTP/1.1" in server.lines
    assert "GET /v1/oauth2-clients/%2E HTTP/1.1" in server.lines
    assert not any(line.startswith("DELETE /v1/ ") for line in server.lines)
