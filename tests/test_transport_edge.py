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
from support.registry import CI_CREDENTIAL, PLAN_CREDENTIAL, RegistryServer

from oauth2_sync.errors import RegistryError, RegistryUnavailableError, UsageError
from oauth2_sync.model import Client
from oauth2_sync.refserver.store import RegistryStore
from oauth2_sync.registry.http import Credentials, HttpRegistry
from oauth2_sync.registry.rfc7592 import Rfc7592Registry
from oauth2_sync.registry.rfc7592 import check_transport as rfc7592_check
from oauth2_sync.registry.state import StateFile
from oauth2_sync.registry.transport import segment
from oauth2_sync.secret import Secret

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

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    with Listener() as listener:
        with pytest.raises(UsageError) as info:
            adapter(url.format(port=listener.port))
        assert str(info.value) == message
        assert "pw" not in str(info.value)
        assert listener.accepted() == 0


def test_the_token_url_gets_the_same_check() -> None:
    with Listener() as listener:
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


# --- #13.2: the circuit breaker -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_registry_that_dies_opens_the_circuit(
    start_registry_server: Callable[..., RegistryServer],
) -> None:
    server = start_registry_server()
    registry = adapter(server.base_url, retries=5)
    with registry:
        assert len(registry.list_partners()) == 4
        server.stop()
        with pytest.raises(RegistryUnavailableError) as first:
            registry.create_client(Client("acme-after-death", "x", "x@acme.example", "acme"))
        expected = (
            f"POST /v1/oauth2-clients: cannot reach 127.0.0.1:{server.port}: connection "
            "refused (3 attempts); check registry.url and that the registry is running"
        )
        assert str(first.value) == expected
        # Whatever comes next fails at once, saying why: no retry budget is spent and no
        # connection is tried (a listener on the same port now would see it).
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", server.port))
        listener.listen(8)
        listener.settimeout(0.2)
        reason = expected.split(": ", 1)[1]
        for call, line in (
            (registry.list_clients, "GET /v1/oauth2-clients?page=0&pageSize=5000"),
            (lambda: registry.get_client("acme-x"), "GET /v1/oauth2-clients/acme-x"),
            (lambda: registry.delete_client("acme-x", None), "DELETE /v1/oauth2-clients/acme-x"),
        ):
            with pytest.raises(RegistryUnavailableError) as later:
                call()
            assert str(later.value) == f"{line}: not sent: {reason}"
        with pytest.raises(TimeoutError):
            listener.accept()
        listener.close()


def test_read_timeouts_through_the_whole_budget_open_the_circuit(
    hostile: Callable[[Handler], Hostile],
) -> None:
    def silent(h: BaseHTTPRequestHandler) -> None:
        time.sleep(2)  # accepted, read, never answered in time

    server = hostile(silent)
    with adapter(server.base_url, read_timeout=0.3, retries=1) as registry:
        with pytest.raises(RegistryUnavailableError) as info:
            registry.list_partners()
        assert str(info.value) == (
            f"GET /v1/partners: no response from {server.base_url[7:-3]} within 0.3 s"
        )
        with pytest.raises(RegistryUnavailableError):
            registry.list_partners()
    assert server.lines.count("GET /v1/partners HTTP/1.1") == 2



def test_the_rfc7592_adapter_opens_its_circuit_too(tmp_path: Path) -> None:
    port = free_port()
    state = StateFile(tmp_path / "state.json", f"rfc7592+http://127.0.0.1:{port}/reg")
    registry = Rfc7592Registry(
        f"rfc7592+http://127.0.0.1:{port}/reg", state=state, managed_partners=["acme"],
        initial_access_token=None, retries=5,
    )
    expected = (
        f"reading the discovery document: cannot reach 127.0.0.1:{port}: connection refused "
        "(3 attempts); check registry.url and that the server is running "
        f"(http://127.0.0.1:{port}/.well-known/oauth-authorization-server)"
    )
    with registry:
        with pytest.raises(RegistryUnavailableError) as info:
            registry.capabilities()
        assert str(info.value) == expected
        with pytest.raises(RegistryUnavailableError) as info:
            registry.capabilities()
        assert str(info.value) == (
            f"reading the discovery document: not sent: cannot reach 127.0.0.1:{port}: "
            "connection refused (3 attempts); check registry.url and that the server is running"
        )


# --- #13.3: deadlines ------------------------------------------------------------------------


def trickle(headers_too: bool) -> Handler:
    def answer(h: BaseHTTPRequestHandler) -> None:
        try:
            if headers_too:
                for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"X" * 60:
                    h.wfile.write(bytes([byte]))
                    h.wfile.flush()
                    time.sleep(0.1)
                return
            h.send_response(200)
            h.send_header("Content-Length", "1000")
            h.end_headers()
            for _ in range(1000):
                h.wfile.write(b" ")
                h.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass  # the adapter hung up, as it should

    return answer


@pytest.mark.parametrize("headers_too", [True, False], ids=["headers", "body"])
def test_a_trickling_response_ends_at_the_request_timeout(
    hostile: Callable[[Handler], Hostile], headers_too: bool
) -> None:
    server = hostile(trickle(headers_too))
    started = time.monotonic()
    registry = adapter(server.base_url, read_timeout=1, request_timeout=1.5)
    with registry, pytest.raises(RegistryUnavailableError) as info:
        registry.list_partners()
    elapsed = time.monotonic() - started
    assert str(info.value) == (
        f"GET /v1/partners: no response from {server.base_url[7:-3]} within 1.5 s "
        "(registry.request_timeout)"
    )
    # Each byte comes well within the read timeout: only the total deadline ends it.
    assert elapsed < 1.5 * 4


def test_the_command_deadline_stops_the_run(hostile: Callable[[Handler], Hostile]) -> None:
    server = hostile(trickle(headers_too=False))
    with adapter(server.base_url, read_timeout=1, request_timeout=30, deadline=1.0) as registry:
        with pytest.raises(RegistryUnavailableError) as info:
            registry.list_partners()
        assert str(info.value) == (
            "GET /v1/partners: the command's deadline of 1 s passed (registry.deadline)"
        )
        with pytest.raises(RegistryUnavailableError):
            registry.get_client("acme-x")


# --- #13.4: paging does not trust the registry ----------------------------------------------


def pages(make: Callable[[int], tuple[int, list[str]]]) -> Handler:
    def answer(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v1/partners":
            send_json(h, 200, PARTNERS)
            return
        page = int(h.path.split("page=")[1].split("&")[0])
        total, ids = make(page)
        send_json(h, 200, {"total": total, "page": page, "pageSize": 2,
                           "list": [wire_client(i) for i in ids]})

    return answer


@pytest.mark.parametrize(
    ("make", "options", "message"),
    [
        (lambda page: (10, ["acme-a", "acme-b"]), {},
         "GET /v1/oauth2-clients?page=1&pageSize=2: the page adds no new client (the registry "
         "repeats itself); stopped paging after 2 clients"),
        (lambda page: (4 + 2 * page, [f"acme-{page}-a", f"acme-{page}-b"]), {},
         "GET /v1/oauth2-clients?page=3&pageSize=2: 8 clients so far, more than the 4 the "
         "first page announced (total); stopped paging"),
        (lambda page: (10**12, [f"acme-{page}-a", f"acme-{page}-b"]), {"max_clients": 6},
         "GET /v1/oauth2-clients?page=3&pageSize=2: more than registry.max_clients (6) "
         "clients; stopped paging (raise registry.max_clients if the registry holds more)"),
    ],
    ids=["same-page", "past-total", "ceiling"],
)
def test_paging_stops_a_registry_without_end(
    hostile: Callable[[Handler], Hostile],
    make: Callable[[int], tuple[int, list[str]]],
    options: dict[str, Any],
    message: str,
) -> None:
    server = hostile(pages(make))
    registry = adapter(server.base_url, page_size=2, **options)
    with registry, pytest.raises(RegistryError) as info:
        registry.list_clients()
    assert str(info.value) == message
    assert len([line for line in server.lines if "page=" in line]) <= 4


# --- #13.5 and #13.8: what the user reads -----------------------------------------------------


def write_repo(root: Path, url: str, **registry: Any) -> Path:
    """One client file declaring acme-edge; settings for ``url``."""
    (root / "clients").mkdir(parents=True)
    (root / "clients" / "acme.yaml").write_text(
        "clients:\n  - client_id: acme-edge\n    name: Edge\n"
        "    email: edge@acme.example\n    partner: acme\n    restrict_to_partner_users: false\n"
    )
    (root / "oauth2-sync.yaml").write_text(yaml.safe_dump({
        "registry": {"url": url, **registry},
        "clients": {"paths": ["clients/**/*.yaml"]},
        "teams": {"payments": {"paths": ["clients/**"], "partners": ["acme"]}},
        "secrets": {"directory": ".secrets"},
    }))
    return root


def run(
    root: Path, *args: str, credential: tuple[str, str] = CI_CREDENTIAL
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    env.update(NO_COLOR="1", OAUTH2_SYNC_CLIENT_ID=credential[0],
               OAUTH2_SYNC_CLIENT_SECRET=credential[1])
    return subprocess.run(
        [sys.executable, "-m", "oauth2_sync", *args], cwd=root, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.mark.parametrize("verbosity", [(), ("-q",)], ids=["default", "quiet"])
def test_nothing_listening_is_one_line(tmp_path: Path, verbosity: tuple[str, ...]) -> None:
    port = free_port()
    root = write_repo(tmp_path, f"http://127.0.0.1:{port}/v1")
    done = run(root, *verbosity, "plan")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"Error: POST /oauth/token: cannot reach 127.0.0.1:{port}: connection refused "
        "(3 attempts); check registry.url and that the registry is running\n"
    )


def test_retries_are_told_at_verbose_through_our_logger(tmp_path: Path) -> None:
    port = free_port()
    root = write_repo(tmp_path, f"http://127.0.0.1:{port}/v1")
    done = run(root, "-v", "plan")
    lines = done.stderr.splitlines()
    assert lines[-1].startswith("Error: POST /oauth/token: cannot reach")
    assert not any("Retrying (Retry(" in line for line in lines)
    assert "INFO oauth2_sync.registry.transport: POST /oauth/token: connection refused; " \
        "retrying (attempt 2)" in lines


def test_a_read_only_credential_is_refused_before_the_first_write(
    tmp_path: Path, start_registry_server: Callable[..., RegistryServer]
) -> None:
    server = start_registry_server()
    root = write_repo(tmp_path, server.base_url)
    done = run(root, "apply", "--auto-approve", credential=PLAN_CREDENTIAL)
    assert done.returncode == 1
    assert done.stderr == (
        "Error: the API credential (OAUTH2_SYNC_CLIENT_ID and OAUTH2_SYNC_CLIENT_SECRET, "
        "named in registry.auth) may only read: its token's scope is 'read'; apply needs a "
        "credential of scope 'write'\n"
    )
    assert "acme-edge: " not in done.stdout  # no result line: nothing was attempted
    with adapter(server.base_url) as registry:
        assert registry.get_client("acme-edge") is None


def test_a_wrong_base_path(tmp_path: Path, registry_server: RegistryServer) -> None:
    root = write_repo(tmp_path, registry_server.base_url[: -len("/v1")])
    done = run(root, "plan")
    assert done.returncode == 1
    assert done.stderr == (
        "Error: GET /partners: 404 Not Found: no such endpoint: /partners; the base path "
        "looks wrong: registry.url must end in the API's base, e.g. /v1\n"
    )


def test_https_to_a_plain_http_server(tmp_path: Path, registry_server: RegistryServer) -> None:
    url = registry_server.base_url.replace("http://", "https://")
    root = write_repo(tmp_path, url)
    done = run(root, "plan")
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: POST /oauth/token: cannot reach 127.0.0.1:{registry_server.port} over TLS: "
        "the server speaks plain http at this address; use http:// for loopback or check "
        "the port\n"
    )


def test_a_401_names_the_variables_of_registry_auth(
    tmp_path: Path, registry_server: RegistryServer
) -> None:
    root = write_repo(
        tmp_path, registry_server.base_url,
        auth={"client_id_env": "MY_API_ID", "client_secret_env": "MY_API_SECRET"},
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    env.update(NO_COLOR="1", MY_API_ID="oauth2-sync-ci", MY_API_SECRET="wrong-secret-value")
    done = subprocess.run(
        [sys.executable, "-m", "oauth2_sync", "plan"], cwd=root, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1
    assert done.stderr == (
        "Error: POST /oauth/token: 401 Unauthorized: client authentication failed; check "
        "MY_API_ID and MY_API_SECRET (named in registry.auth)\n"
    )
    assert "wrong-secret-value" not in done.stdout + done.stderr
