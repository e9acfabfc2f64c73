"""The reference registry's behaviour, independent of the socket plumbing.

It implements ``schemas/registry-api.openapi.yaml``. Order of checks for ``/v1``:
route (404, 405), bearer token (401), rate limit (429), scope (403), then the
operation itself (400, 404, 409, 412).
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, quote, unquote_plus

from oauth2_sync import etags
from oauth2_sync.errors import NotFoundError, RegistryError
from oauth2_sync.model import PLATFORM_REFRESH_TTL
from oauth2_sync.refserver import bodies
from oauth2_sync.refserver.db import Clock
from oauth2_sync.refserver.exchange import HttpError, Request, Response, int_param, registry_error
from oauth2_sync.refserver.records import MAX_INT, TokenInfo
from oauth2_sync.refserver.seed import load_seed
from oauth2_sync.refserver.store import RegistryStore

MAX_PAGE_SIZE: Final = 5000
DEFAULT_PAGE_SIZE: Final = 500
REFRESH_TTL: Final = PLATFORM_REFRESH_TTL
_CLIENTS_PREFIX: Final = ("v1", "oauth2-clients")

Handler = Callable[..., Response]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How to run the server. ``port`` 0 picks a free port; ``rate_limit`` is requests
    per second per API credential (``None``: unlimited); ``latency`` is seconds added
    before every answer, to play a registry across a network (benchmarks); ``clock``
    is what token expiry reads the time from (tests move it on instead of sleeping)."""

    db: Path
    host: str = "127.0.0.1"
    port: int = 8080
    seed: Path | None = None
    token_ttl: int = 3600
    refresh_ttl: int = REFRESH_TTL
    rate_limit: float | None = None
    latency: float = 0.0
    clock: Clock = time.time


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
        self.store = RegistryStore(config.db, config.clock)
        # The first write must not pay for loading the contract: answer times stay even.
        bodies.prepare()
        if seed is not None:
            self.store.apply_seed(seed)
        self.limiter = RateLimiter(config.rate_limit) if config.rate_limit else None

    # --- routing -------------------------------------------------------------

    def route(
        self, method: str, segments: list[str]
    ) -> tuple[Handler, tuple[str, ...], bool] | None:
        """``(handler, path arguments, is_write)`` for a request; ``None`` if no route.

        Raises 405 for a known path and an unknown method.
        """
        table: dict[str, tuple[Handler, bool]]
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
            raise HttpError(
                405, "method_not_allowed", f"{method} is not allowed here (allowed: {allowed})",
                headers={"Allow": allowed},
            )
        handler, is_write = table[method]
        return handler, args, is_write

    def authorize(self, authorization: str | None, is_write: bool) -> TokenInfo:
        """The caller behind a bearer token, after the rate limit and the scope check."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HttpError(
                401, "unauthorized", "a bearer token is required",
                headers={"WWW-Authenticate": 'Bearer realm="oauth"'},
            )
        info = self.store.check_token(token.strip())
        if info is None:
            raise HttpError(
                401, "invalid_token", "the access token is unknown or expired",
                headers={"WWW-Authenticate": 'Bearer realm="oauth", error="invalid_token"'},
            )
        if self.limiter is not None:
            wait = self.limiter.acquire(info.credential)
            if wait > 0:
                retry_after = max(1, math.ceil(wait))
                raise HttpError(
                    429, "rate_limited",
                    f"too many requests; retry after {retry_after} s",
                    headers={"Retry-After": str(retry_after)},
                )
        if is_write and "write" not in info.scope:
            raise HttpError(
                403, "insufficient_scope",
                f"the token's scope '{' '.join(info.scope)}' does not allow writes",
                headers={
                    "WWW-Authenticate":
                        'Bearer realm="oauth", error="insufficient_scope", scope="write"'
                },
            )
        return info

    # --- token endpoint ------------------------------------------------------

    def token(self, request: Request) -> Response:
        """``POST /oauth/token``: client_credentials, password and refresh_token grants."""
        credential, scope = self._client_auth(request.headers.get("authorization"))
        params = self._form(request)
        grant = params.get("grant_type")
        if grant is None:
            raise HttpError(400, "invalid_request", "grant_type is required")
        granted, username, refresh = self._grant(grant, params, credential, scope)
        wanted = params.get("scope")
        if wanted is not None:
            asked = tuple(sorted(set(wanted.split())))
            if not asked or any(s not in granted for s in asked):
                raise HttpError(
                    400, "invalid_scope", f"scope may only name: {' '.join(granted)}"
                )
            granted = asked
        if not granted:
            raise HttpError(400, "invalid_scope", "no scope left to grant")
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
        return Response(200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _grant(
        self, grant: str, params: dict[str, str], credential: str, scope: tuple[str, ...]
    ) -> tuple[tuple[str, ...], str | None, int | None]:
        """What a grant yields: the scope before ``scope=``, the user, the refresh TTL."""
        username: str | None = None
        refresh: int | None = None
        if grant == "client_credentials":
            granted = scope
        elif grant == "password":
            username, password = params.get("username"), params.get("password")
            if not username or password is None:
                raise HttpError(
                    400, "invalid_request", "username and password are required"
                )
            user_scope = self.store.authenticate_user(username, password)
            if user_scope is None:
                raise HttpError(400, "invalid_grant", "wrong user name or password")
            granted = tuple(s for s in scope if s in user_scope)
            refresh = self.config.refresh_ttl
        elif grant == "refresh_token":
            token = params.get("refresh_token")
            if not token:
                raise HttpError(400, "invalid_request", "refresh_token is required")
            info = self.store.redeem_refresh_token(token, credential)
            if info is None:
                raise HttpError(
                    400, "invalid_grant", "the refresh token is unknown, expired or used"
                )
            username = info.username
            granted = tuple(s for s in info.scope if s in scope)
            refresh = self.config.refresh_ttl
        else:
            raise HttpError(
                400, "unsupported_grant_type", f"grant_type {grant!r} is not supported"
                if len(grant) <= 40 else "grant_type is not supported",
            )
        return granted, username, refresh

    def _client_auth(self, header: str | None) -> tuple[str, tuple[str, ...]]:
        challenge = {"WWW-Authenticate": 'Basic realm="oauth"'}
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic":
            raise HttpError(
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
            raise HttpError(
                401, "invalid_client", "client authentication failed", headers=challenge
            )
        return unquote_plus(client_id), scope

    def _form(self, request: Request) -> dict[str, str]:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not request.body:
            return {}
        if ctype != "application/x-www-form-urlencoded":
            raise HttpError(
                400, "invalid_request", "the body must be application/x-www-form-urlencoded"
            )
        try:
            parsed = parse_qs(
                request.body.decode("utf-8"), keep_blank_values=True, errors="strict"
            )
        except (UnicodeDecodeError, ValueError):
            # The decode error holds the whole body, passwords and secrets included.
            raise HttpError(400, "invalid_request", "the body is not valid form data") from None
        repeated = sorted(k for k, v in parsed.items() if len(v) > 1)
        if repeated:
            raise HttpError(
                400, "invalid_request", f"parameter {repeated[0]!r} is given more than once"
            )
        return {k: v[0] for k, v in parsed.items()}

    # --- the API ---------------------------------------------------------------

    def list_partners(self, request: Request) -> Response:
        """``GET /v1/partners``."""
        return Response(200, [p.to_wire() for p in self.store.list_partners()])

    def list_clients(self, request: Request) -> Response:
        """``GET /v1/oauth2-clients``: a page (with ``page``) or a plain array (without)."""
        page = int_param(request.query, "page", 0, MAX_INT)
        size = int_param(request.query, "pageSize", 1, MAX_PAGE_SIZE)
        if page is None:
            return Response(200, self.store.list_clients())
        size = size or DEFAULT_PAGE_SIZE
        total, clients = self.store.page_clients(page, size)
        return Response(200, {"total": total, "page": page, "pageSize": size, "list": clients})

    def get_client(self, request: Request, client_id: str) -> Response:
        """``GET /v1/oauth2-clients/{clientId}``."""
        obj = self.store.get_client(client_id)
        if obj is None:
            raise NotFoundError(f"client {client_id} does not exist", status=404)
        return Response(200, obj, {"ETag": etags.etag(str(obj["version"]))})

    def create_client(self, request: Request, caller: TokenInfo) -> Response:
        """``POST /v1/oauth2-clients``: 201 with the secret (the only time it is shown)."""
        obj, secret = self.store.create_client(request.json(), caller.credential)
        return Response(
            201,
            {**obj, "clientSecret": secret},
            {
                "ETag": etags.etag(str(obj["version"])),
                "Location": f"/v1/oauth2-clients/{quote(obj['clientId'], safe='')}",
                "Cache-Control": "no-store",
            },
        )

    def replace_client(
        self, request: Request, caller: TokenInfo, client_id: str
    ) -> Response:
        """``PUT /v1/oauth2-clients/{clientId}``, honouring ``If-Match``."""
        obj = self.store.replace_client(
            client_id, request.json(), request.if_match(), caller.credential
        )
        return Response(200, obj, {"ETag": etags.etag(str(obj["version"]))})

    def delete_client(
        self, request: Request, caller: TokenInfo, client_id: str
    ) -> Response:
        """``DELETE /v1/oauth2-clients/{clientId}``, honouring ``If-Match``."""
        self.store.delete_client(client_id, request.if_match())
        return Response(204)

    def rotate_secret(
        self, request: Request, caller: TokenInfo, client_id: str
    ) -> Response:
        """``POST /v1/oauth2-clients/{clientId}/secret``: a new secret, the old one revoked."""
        obj, secret = self.store.rotate_secret(client_id, caller.credential)
        return Response(
            200,
            {**obj, "clientSecret": secret},
            {"ETag": etags.etag(str(obj["version"])), "Cache-Control": "no-store"},
        )

    # --- one request -----------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Route, authenticate, run; every failure becomes an error response."""
        try:
            found = self.route(request.method, request.segments)
            if found is None:
                raise HttpError(404, "not_found", f"no such endpoint: {request.path}")
            handler, args, is_write = found
            if request.segments[0] == "oauth":
                return handler(request)
            caller = self.authorize(request.headers.get("authorization"), is_write)
            if is_write:
                return handler(request, caller, *args)
            return handler(request, *args)
        except HttpError as exc:
            request.close = request.close or exc.close
            return exc.response
        except RegistryError as exc:
            return registry_error(exc)


