"""A small RFC 7591/7592 registration server on 127.0.0.1 that can refuse one client.

No real server answers a registration read with 403 or 404 (oidc-provider says 401,
Canaille 400 ``access_denied``), yet RFC 7592 §2 allows a server to (403: the token no
longer grants access; 404: the client is gone), and gateways do. This server holds
registrations in memory, keeps every metadata field it is sent (so the ``oauth2_sync_*``
fields too), publishes an RFC 8414 discovery document, and answers the registration URI
of each client named in ``refusals`` with the response given there, whatever the token:
``refuse(server_client_id, status, body)``. Everything else behaves as RFC 7592 says.
Real HTTP, a real port; nothing is mocked.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

SERVER_OWNED = ("client_id", "client_secret", "registration_access_token",
                "registration_client_uri", "client_id_issued_at", "client_secret_expires_at")


@dataclass
class RefusingServer:
    """The server's state: registrations by client_id, tokens, the refusals."""

    base_url: str = ""
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    refusals: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    secret_for_public: bool = False
    """Issue a client secret to public clients too, as Canaille does."""
    extra_discovery: dict[str, Any] = field(default_factory=dict)
    """Entries that replace or add to the discovery document (a hostile one)."""

    @property
    def registry_url(self) -> str:
        """The oauth2-sync registry URL of this server."""
        return f"rfc7592+{self.base_url}/reg"

    def refuse(self, server_client_id: str, status: int, body: dict[str, Any]) -> None:
        """Answer every request to this client's registration URI with ``status`` and
        ``body`` from now on."""
        with self.lock:
            self.refusals[server_client_id] = (status, body)

    def discovery(self) -> dict[str, Any]:
        """The RFC 8414 document: no scopes_supported (any scope), the usual grants."""
        return {
            "issuer": self.base_url,
            "registration_endpoint": f"{self.base_url}/reg",
            "token_endpoint": f"{self.base_url}/token",
            "grant_types_supported": ["authorization_code", "client_credentials",
                                      "refresh_token"],
            "response_types_supported": ["code"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
            **self.extra_discovery,
        }

    def register(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """RFC 7591 §3.2.1: the registration, with a new client_id, secret and token."""
        with self.lock:
            server_id = f"client-{next(self.ids)}"
            self.clients[server_id] = {k: v for k, v in metadata.items() if k not in SERVER_OWNED}
            self.tokens[server_id] = secrets.token_urlsafe(24)
            return self.answer(server_id)

    def answer(self, server_id: str) -> dict[str, Any]:
        """A registration as the server shows it (the caller holds the lock)."""
        shown = {**self.clients[server_id], "client_id": server_id,
                 "registration_client_uri": f"{self.base_url}/reg/{server_id}",
                 "registration_access_token": self.tokens[server_id]}
        if shown.get("token_endpoint_auth_method") != "none" or self.secret_for_public:
            shown["client_secret"] = f"secret-of-{server_id}"
        return shown


class _Handler(BaseHTTPRequestHandler):
    server_state: ClassVar[RefusingServer]

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the tests read what oauth2-sync says

    def do_GET(self) -> None:
        if self.path.startswith("/.well-known/oauth-authorization-server"):
            self._send(200, self.server_state.discovery())
            return
        self._manage("GET")

    def do_POST(self) -> None:
        if self.path != "/reg":
            self._send(404, {"error": "not_found"})
            return
        self._send(201, self.server_state.register(self._body()))

    def do_PUT(self) -> None:
        self._manage("PUT")

    def do_DELETE(self) -> None:
        self._manage("DELETE")

    def _manage(self, method: str) -> None:
        state = self.server_state
        server_id = self.path.removeprefix("/reg/")
        body = self._body() if method == "PUT" else {}
        with state.lock:
            if server_id in state.refusals:
                self._send(*state.refusals[server_id])
                return
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if server_id not in state.clients or state.tokens.get(server_id) != token:
                self._send(401, {"error": "invalid_token"})
                return
            if method == "DELETE":
                del state.clients[server_id]
                self._send(204, None)
                return
            if method == "PUT":  # RFC 7592 §2.2: a full replacement
                state.clients[server_id] = {
                    k: v for k, v in body.items() if k not in SERVER_OWNED
                }
            self._send(200, state.answer(server_id))

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        data = json.loads(self.rfile.read(length) or b"{}")
        return data if isinstance(data, dict) else {}

    def _send(self, status: int, body: dict[str, Any] | None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@contextmanager
def running_refusing_server() -> Iterator[RefusingServer]:
    """A fresh server on a free port of 127.0.0.1 for the duration of a ``with`` block."""
    state = RefusingServer()
    handler = type("Handler", (_Handler,), {"server_state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
