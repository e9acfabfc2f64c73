"""The reference registry server: the store of ``store.py`` over HTTP.

It implements ``schemas/registry-api.openapi.yaml`` with the standard library only: a
``ThreadingHTTPServer`` (one thread per connection, HTTP/1.1 keep-alive, Nagle off so
keep-alive requests do not stall on delayed ACKs), one SQLite connection per thread,
and a clean stop on SIGINT/SIGTERM (in-flight requests finish, nothing new starts).

Order of checks for ``/v1``: route (404, 405), bearer token (401), rate limit (429),
scope (403), then the operation itself (400, 404, 409, 412).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar, Final
from urllib.parse import parse_qs, quote, unquote, unquote_plus, urlsplit

from oauth2_sync.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    RegistryError,
)
from oauth2_sync.registry import wire
from oauth2_sync.registry.store import MAX_INT, RegistryStore, TokenInfo, load_seed

logger = logging.getLogger(__name__)

MAX_BODY: Final = 1024 * 1024
MAX_PAGE_SIZE: Final = 5000
DEFAULT_PAGE_SIZE: Final = 500
REFRESH_TTL: Final = 30 * 86400
_JSON: Final = "application/json"
_CLIENTS_PREFIX: Final = ("v1", "oauth2-clients")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How to run the server. ``port`` 0 picks a free port; ``rate_limit`` is requests
    per second per API credential (``None``: unlimited); ``latency`` is seconds added
    before every answer, to play a registry across a network (benchmarks)."""

    db: Path
    host: str = "127.0.0.1"
    port: int = 8080
    seed: Path | None = None
    token_ttl: int = 3600
    refresh_ttl: int = REFRESH_TTL
    rate_limit: float | None = None
    latency: float = 0.0


@dataclass(slots=True)
class _Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _HttpError(Exception):
    """Ends a request with an error body ``{error, message, fields?}``."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        body: dict[str, Any] = {"error": error, "message": message}
        if fields:
            body["fields"] = dict(fields)
        self.response = _Response(status, body, dict(headers or {}))
        self.close = close


class RateLimiter:
    """A token bucket per key: ``rate`` requests a second, bursts of ``max(1, rate)``."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, rate)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """0 when the request may go ahead, else the seconds until it could."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


class RegistryApp:
    """The API's behaviour, independent of the socket plumbing."""

    def __init__(self, config: ServerConfig) -> None:
        seed = load_seed(config.seed) if config.seed is not None else None
        self.config = config
        self.store = RegistryStore(config.db)
        if seed is not None:
            self.store.apply_seed(seed)
        self.limiter = RateLimiter(config.rate_limit) if config.rate_limit else None

    # --- routing -------------------------------------------------------------

    def route(
        self, method: str, segments: list[str]
    ) -> tuple[Callable[..., _Response], tuple[str, ...], bool] | None:
        """``(handler, path arguments, is_write)`` for a request; ``None`` if no route.

        Raises 405 for a known path and an unknown method.
        """
        table: dict[str, tuple[Callable[..., _Response], bool]]
        args: tuple[str, ...] = ()
        if segments == ["oauth", "token"]:
            table = {"POST": (self.token, False)}
        elif segments == ["v1", "partners"]:
            table = {"GET": (self.list_partners, False)}
        elif segments == list(_CLIENTS_PREFIX):
            table = {"GET": (self.list_clients, False), "POST": (self.create_client, True)}
        elif len(segments) == 3 and tuple(segments[:2]) == _CLIENTS_PREFIX and segments[2]:
            table = {
                "GET": (self.get_client, False),
                "PUT": (self.replace_client, True),
                "DELETE": (self.delete_client, True),
            }
            args = (segments[2],)
        elif (
            len(segments) == 4
            and tuple(segments[:2]) == _CLIENTS_PREFIX
            and segments[2]
            and segments[3] == "secret"
        ):
            table = {"POST": (self.rotate_secret, True)}
            args = (segments[2],)
        else:
            return None
        if method not in table:
            allowed = ", ".join(sorted(table))
            raise _HttpError(
                405, "method_not_allowed", f"{method} is not allowed here (allowed: {allowed})",
                headers={"Allow": allowed},
            )
        handler, is_write = table[method]
        return handler, args, is_write

    def authorize(self, authorization: str | None, is_write: bool) -> TokenInfo:
        """The caller behind a bearer token, after the rate limit and the scope check."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _HttpError(
                401, "unauthorized", "a bearer token is required",
                headers={"WWW-Authenticate": 'Bearer realm="oauth"'},
            )
        info = self.store.check_token(token.strip())
        if info is None:
            raise _HttpError(
                401, "invalid_token", "the access token is unknown or expired",
                headers={"WWW-Authenticate": 'Bearer realm="oauth", error="invalid_token"'},
            )
        if self.limiter is not None:
            wait = self.limiter.acquire(info.credential)
            if wait > 0:
                retry_after = max(1, math.ceil(wait))
                raise _HttpError(
                    429, "rate_limited",
                    f"too many requests; retry after {retry_after} s",
                    headers={"Retry-After": str(retry_after)},
                )
        if is_write and "write" not in info.scope:
            raise _HttpError(
                403, "insufficient_scope",
                f"the token's scope '{' '.join(info.scope)}' does not allow writes",
                headers={
                    "WWW-Authenticate":
                        'Bearer realm="oauth", error="insufficient_scope", scope="write"'
                },
            )
        return info

    # --- token endpoint ------------------------------------------------------

    def token(self, request: _Request) -> _Response:
        """``POST /oauth/token``: client_credentials, password and refresh_token grants."""
        credential, scope = self._client_auth(request.headers.get("authorization"))
        params = self._form(request)
        grant = params.get("grant_type")
        if grant is None:
            raise _HttpError(400, "invalid_request", "grant_type is required")
        username: str | None = None
        refresh: int | None = None
        if grant == "client_credentials":
            granted = scope
        elif grant == "password":
            username, password = params.get("username"), params.get("password")
            if not username or password is None:
                raise _HttpError(
                    400, "invalid_request", "username and password are required"
                )
            user_scope = self.store.authenticate_user(username, password)
            if user_scope is None:
                raise _HttpError(400, "invalid_grant", "wrong user name or password")
            granted = tuple(s for s in scope if s in user_scope)
            refresh = self.config.refresh_ttl
        elif grant == "refresh_token":
            token = params.get("refresh_token")
            if not token:
                raise _HttpError(400, "invalid_request", "refresh_token is required")
            info = self.store.redeem_refresh_token(token, credential)
            if info is None:
                raise _HttpError(
                    400, "invalid_grant", "the refresh token is unknown, expired or used"
                )
            username = info.username
            granted = tuple(s for s in info.scope if s in scope)
            refresh = self.config.refresh_ttl
        else:
            raise _HttpError(
                400, "unsupported_grant_type", f"grant_type {grant!r} is not supported"
                if len(grant) <= 40 else "grant_type is not supported",
            )
        wanted = params.get("scope")
        if wanted is not None:
            asked = tuple(sorted(set(wanted.split())))
            if not asked or any(s not in granted for s in asked):
                raise _HttpError(
                    400, "invalid_scope", f"scope may only name: {' '.join(granted)}"
                )
            granted = asked
        if not granted:
            raise _HttpError(400, "invalid_scope", "no scope left to grant")
        issued = self.store.issue_token(
            TokenInfo(credential, granted, username), self.config.token_ttl, refresh
        )
        body: dict[str, Any] = {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": " ".join(issued.scope),
        }
        if issued.refresh_token is not None:
            body["refresh_token"] = issued.refresh_token
        return _Response(200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _client_auth(self, header: str | None) -> tuple[str, tuple[str, ...]]:
        challenge = {"WWW-Authenticate": 'Basic realm="oauth"'}
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic":
            raise _HttpError(
                401, "invalid_client", "HTTP Basic client authentication is required",
                headers=challenge,
            )
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        client_id, colon, secret = decoded.partition(":")
        # RFC 6749 2.3.1: both parts are form-encoded before Basic encoding.
        scope = (
            self.store.authenticate_credential(unquote_plus(client_id), unquote_plus(secret))
            if colon
            else None
        )
        if scope is None:
            raise _HttpError(
                401, "invalid_client", "client authentication failed", headers=challenge
            )
        return unquote_plus(client_id), scope

    def _form(self, request: _Request) -> dict[str, str]:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not request.body:
            return {}
        if ctype != "application/x-www-form-urlencoded":
            raise _HttpError(
                400, "invalid_request", "the body must be application/x-www-form-urlencoded"
            )
        try:
            parsed = parse_qs(
                request.body.decode("utf-8"), keep_blank_values=True, errors="strict"
            )
        except (UnicodeDecodeError, ValueError):
            raise _HttpError(400, "invalid_request", "the body is not valid form data") from None
        repeated = sorted(k for k, v in parsed.items() if len(v) > 1)
        if repeated:
            raise _HttpError(
                400, "invalid_request", f"parameter {repeated[0]!r} is given more than once"
            )
        return {k: v[0] for k, v in parsed.items()}

    # --- the API ---------------------------------------------------------------

    def list_partners(self, request: _Request) -> _Response:
        """``GET /v1/partners``."""
        return _Response(200, [p.to_wire() for p in self.store.list_partners()])

    def list_clients(self, request: _Request) -> _Response:
        """``GET /v1/oauth2-clients``: a page (with ``page``) or a plain array (without)."""
        page = _int_param(request.query, "page", 0, MAX_INT)
        size = _int_param(request.query, "pageSize", 1, MAX_PAGE_SIZE)
        if page is None:
            return _Response(200, self.store.list_clients())
        size = size or DEFAULT_PAGE_SIZE
        total, clients = self.store.page_clients(page, size)
        return _Response(200, {"total": total, "page": page, "pageSize": size, "list": clients})

    def get_client(self, request: _Request, client_id: str) -> _Response:
        """``GET /v1/oauth2-clients/{clientId}``."""
        obj = self.store.get_client(client_id)
        if obj is None:
            raise NotFoundError(f"client {client_id} does not exist", status=404)
        return _Response(200, obj, {"ETag": wire.etag(str(obj["version"]))})

    def create_client(self, request: _Request, caller: TokenInfo) -> _Response:
        """``POST /v1/oauth2-clients``: 201 with the secret (the only time it is shown)."""
        obj, secret = self.store.create_client(request.json(), caller.credential)
        return _Response(
            201,
            {**obj, "clientSecret": secret},
            {
                "ETag": wire.etag(str(obj["version"])),
                "Location": f"/v1/oauth2-clients/{quote(obj['clientId'], safe='')}",
                "Cache-Control": "no-store",
            },
        )

    def replace_client(
        self, request: _Request, caller: TokenInfo, client_id: str
    ) -> _Response:
        """``PUT /v1/oauth2-clients/{clientId}``, honouring ``If-Match``."""
        obj = self.store.replace_client(
            client_id, request.json(), request.if_match(), caller.credential
        )
        return _Response(200, obj, {"ETag": wire.etag(str(obj["version"]))})

    def delete_client(
        self, request: _Request, caller: TokenInfo, client_id: str
    ) -> _Response:
        """``DELETE /v1/oauth2-clients/{clientId}``, honouring ``If-Match``."""
        self.store.delete_client(client_id, request.if_match())
        return _Response(204)

    def rotate_secret(
        self, request: _Request, caller: TokenInfo, client_id: str
    ) -> _Response:
        """``POST /v1/oauth2-clients/{clientId}/secret``: a new secret, the old one revoked."""
        obj, secret = self.store.rotate_secret(client_id, caller.credential)
        return _Response(
            200,
            {**obj, "clientSecret": secret},
            {"ETag": wire.etag(str(obj["version"])), "Cache-Control": "no-store"},
        )

    # --- one request -----------------------------------------------------------

    def handle(self, request: _Request) -> _Response:
        """Route, authenticate, run; every failure becomes an error response."""
        try:
            found = self.route(request.method, request.segments)
            if found is None:
                raise _HttpError(404, "not_found", f"no such endpoint: {request.path}")
            handler, args, is_write = found
            if request.segments[0] == "oauth":
                return handler(request)
            caller = self.authorize(request.headers.get("authorization"), is_write)
            if is_write:
                return handler(request, caller, *args)
            return handler(request, *args)
        except _HttpError as exc:
            request.close = request.close or exc.close
            return exc.response
        except RegistryError as exc:
            return _registry_error(exc)


def _registry_error(exc: RegistryError) -> _Response:
    if isinstance(exc, NotFoundError):
        status, error = 404, "not_found"
    elif isinstance(exc, ConflictError):
        status, error = 409, "conflict"
    elif isinstance(exc, PreconditionFailedError):
        status, error = 412, "precondition_failed"
    elif exc.status == 400:
        status, error = 400, "invalid_client_metadata"
    else:
        logger.error("store error: %s", exc)
        status, error = 500, "server_error"
    body: dict[str, Any] = {"error": error, "message": str(exc)}
    if exc.fields:
        body["fields"] = exc.fields
    return _Response(status, body)


def _int_param(query: Mapping[str, list[str]], name: str, low: int, high: int) -> int | None:
    values = query.get(name)
    if not values:
        return None
    raw = values[-1]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or not low <= int(raw) <= high:
        raise _HttpError(
            400, "invalid_request", f"{name} must be an integer from {low} to {high}",
            fields={name: f"must be an integer from {low} to {high}"},
        )
    return int(raw)


class _Request:
    """What a handler needs of one request (header names in lower case)."""

    __slots__ = ("body", "close", "headers", "method", "path", "query", "segments")

    def __init__(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> None:
        parts = urlsplit(target)
        self.method = method
        self.path = parts.path
        self.segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        self.query = parse_qs(parts.query, keep_blank_values=True)
        self.headers = headers
        self.body = body
        self.close = False

    def json(self) -> Any:
        """The body as JSON; 400 when it is not."""
        try:
            return json.loads(self.body.decode("utf-8"), parse_constant=_refuse_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            reason = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else "not valid JSON"
            raise _HttpError(400, "invalid_request", f"the body is {reason}") from None

    def if_match(self) -> frozenset[str] | None:
        """The versions ``If-Match`` accepts; ``None`` when absent or ``*``."""
        return wire.parse_if_match(self.headers.get("if-match"))


def _too_large() -> _HttpError:
    return _HttpError(413, "payload_too_large", f"the body must be at most {MAX_BODY} bytes")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _Handler(BaseHTTPRequestHandler):
    """Socket plumbing around ``RegistryApp.handle``."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "oauth2-sync-registry"
    app: ClassVar[RegistryApp]
    tracker: ClassVar[_InFlight]

    def __getattr__(self, name: str) -> Any:
        # Every method reaches the router (``do_QUERY`` too), which answers 404 or 405
        # instead of the stdlib's 501 page.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        with self.tracker:
            if self.app.config.latency:
                time.sleep(self.app.config.latency)  # this connection's thread only
            self._serve_one()

    def _serve_one(self) -> None:
        started = time.perf_counter()
        try:
            body = self._read_body()
        except _HttpError as exc:
            # The rest of a refused body is still on the wire: this connection is done.
            self.close_connection = True
            self._send(self.command, exc.response)
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = _Request(self.command, self.path, headers, body)
        try:
            response = self.app.handle(request)
        except Exception:
            logger.exception("%s %s failed", self.command, request.path)
            response = _Response(500, {"error": "server_error", "message": "internal error"})
        if request.close:
            self.close_connection = True
        self._send(self.command, response)
        logger.debug(
            "%s %s -> %d (%.1f ms)", self.command, request.path, response.status,
            (time.perf_counter() - started) * 1000,
        )

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _HttpError(400, "invalid_request", "Content-Length is not a number") from None
        if length < 0 or length > MAX_BODY:
            raise _too_large()
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        size_so_far = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _HttpError(400, "invalid_request", "malformed chunked body") from None
            if size == 0:
                break
            size_so_far += size
            if size_so_far > MAX_BODY:
                raise _too_large()
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass  # trailers: none of them matter here
        return b"".join(parts)

    def _send(self, method: str, response: _Response) -> None:
        payload = b""
        if response.body is not None and response.status != 204:
            payload = json.dumps(response.body, separators=(",", ":")).encode()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status != 204:
            self.send_header("Content-Type", _JSON)
            self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if method != "HEAD" and payload:
            self.wfile.write(payload)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


class _InFlight:
    """Counts requests being served, so a shutdown can let them finish."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = threading.Condition()

    def __enter__(self) -> None:
        with self._idle:
            self._count += 1

    def __exit__(self, *exc: object) -> None:
        with self._idle:
            self._count -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being served; ``False`` on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not block the exit
    allow_reuse_address = True


class RegistryServer:
    """The HTTP server around a ``RegistryApp``; ``serve_forever`` until ``shutdown``."""

    def __init__(self, config: ServerConfig) -> None:
        self.app = RegistryApp(config)
        self.tracker = _InFlight()
        handler = type(
            "RegistryHandler", (_Handler,), {"app": self.app, "tracker": self.tracker}
        )
        try:
            self.httpd = _Server((config.host, config.port), handler)
        except OSError as exc:
            self.app.store.close()
            raise RegistryError(
                f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
            ) from None
        address = self.httpd.server_address
        host, port = str(address[0]), int(address[1])
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}/v1"
        """The API base URL, e.g. ``http://127.0.0.1:8080/v1``."""

    def serve_forever(self) -> None:
        """Serve until ``shutdown`` is called from another thread."""
        self.httpd.serve_forever(poll_interval=0.2)

    def shutdown(self, grace: float = 10.0) -> None:
        """Stop accepting, let in-flight requests finish (up to ``grace`` s), close."""
        self.httpd.shutdown()
        if not self.tracker.wait_idle(grace):
            logger.warning("stopping with requests still in flight")
        self.httpd.server_close()
        self.app.store.close()


def run(config: ServerConfig, ready: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly. ``ready`` gets the base URL."""
    server = RegistryServer(config)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {
        sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    thread = threading.Thread(target=server.serve_forever, name="registry-server")
    thread.start()
    try:
        ready(server.url)
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        thread.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logger.info("registry stopped")

