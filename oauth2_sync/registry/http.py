"""``http(s)://.../v1``: the registry API of ``schemas/registry-api.openapi.yaml``.

One ``requests.Session`` for everything (connection reuse, thread-safe for the
bounded parallelism of apply), connect and read timeouts on every request, and TLS
verification always on (plain http only for loopback hosts).

Retries, with exponential backoff and jitter, honouring ``Retry-After``:

- GET, PUT and DELETE are retried by urllib3's ``Retry`` on 429, 500, 502, 503 and 504
  and on connection errors (500 too: these requests are idempotent, and one transient
  server error must not fail a plan that reads a hundred pages). They are idempotent, with one wrinkle each: a PUT whose first
  attempt landed but whose response was lost meets 412 on the retry (its own write
  bumped the version), and a DELETE meets 404. When urllib3 did retry, those answers
  are checked: a PUT counts as done when the client now holds what we sent, a DELETE
  when the client is gone.
- POST is never retried blindly. A connection that could not be opened, or a 429
  (the rate limiter refused before any work), is retried as is. After a timeout, a
  reset connection or a 500/502/503/504 the create may or may not have happened, so the
  client is read first: if it does not exist the POST is sent again; if it exists,
  ``CreatedResponseLostError`` (a ``ConflictError``) says so, because its secret was
  never received (``rotate-secret`` issues a new one). Rotating a secret is retried
  like a GET: a second rotation just makes the first secret obsolete too.

Tokens: client_credentials or password grant at the token endpoint with HTTP Basic
client authentication; on 401 ``invalid_token`` the token is renewed once (with the
refresh token when there is one) and the request repeated.
"""

from __future__ import annotations

import base64
import logging
import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import quote, urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError
from urllib3.util.retry import Retry

from oauth2_sync.errors import (
    ConflictError,
    CreatedResponseLostError,
    NotFoundError,
    PreconditionFailedError,
    RegistryError,
    RegistryUnavailableError,
    UsageError,
)
from oauth2_sync.loader import open_regular
from oauth2_sync.model import Client
from oauth2_sync.registry import wire
from oauth2_sync.registry.base import Partner, Registry, RemoteClient, Secret
from oauth2_sync.urls import is_loopback

if TYPE_CHECKING:
    from oauth2_sync.settings import Settings

logger = logging.getLogger(__name__)

RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
LOST_STATUSES: Final = frozenset({500, 502, 503, 504})
"""Answers after which a POST may or may not have been carried out."""
MAX_RETRY_AFTER: Final = 300.0
MAX_RESPONSE_BYTES: Final = 64 * 1024 * 1024
"""A larger response is refused (a page of 5,000 clients is about 3 MiB): a broken or
hostile registry must not make us read without bound."""
_MESSAGE_MAX: Final = 300


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who the adapter authenticates as. Secrets stay wrapped until sent."""

    client_id: str
    client_secret: Secret
    grant_type: Literal["client_credentials", "password"] = "client_credentials"
    username: str | None = None
    password: Secret | None = None


class _Bearer(requests.auth.AuthBase):
    # An auth object rather than a header: requests then never swaps in ~/.netrc.
    def __init__(self, value: str) -> None:
        self.value = value

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self.value
        return r


class HttpRegistry(Registry):
    """The registry API over HTTP(S)."""

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        *,
        token_url: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retries: int = 5,
        page_size: int = 500,
        ca_bundle: Path | None = None,
        backoff_factor: float = 0.5,
        backoff_max: float = 30.0,
        pool_size: int = 16,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.url = url.rstrip("/")
        self.token_url = token_url or default_token_url(self.url)
        check_transport(self.url)
        check_transport(self.token_url)
        self._base_path = urlsplit(self.url).path
        self.credentials = credentials
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries
        self.page_size = page_size
        self.backoff_factor = backoff_factor
        self.backoff_max = backoff_max
        self.max_response_bytes = max_response_bytes
        self.session = requests.Session()
        self.session.verify = str(ca_bundle) if ca_bundle is not None else True
        self.session.headers["Accept"] = "application/json"
        self.session.headers["User-Agent"] = "oauth2-sync"
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            redirect=0,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "PUT", "DELETE"}),
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
            backoff_jitter=backoff_factor,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_connections=2, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._token_lock = threading.Lock()
        self._access: Secret | None = None
        self._refresh: Secret | None = None
        self._partner_lock = threading.Lock()
        self._partners: dict[str, int] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpRegistry:
        """The adapter for ``registry.url``, credentials read from the environment/files
        that ``registry.auth`` names. ``UsageError`` when one is missing."""
        reg = settings.registry
        check_transport(reg.url)
        return cls(
            reg.url,
            credentials_from_settings(settings),
            token_url=reg.auth.token_url,
            connect_timeout=reg.connect_timeout,
            read_timeout=reg.read_timeout,
            retries=reg.retries,
            page_size=reg.page_size,
            ca_bundle=reg.ca_bundle,
        )

    # --- the interface ---------------------------------------------------------

    def list_partners(self) -> list[Partner]:
        """All partners with their users."""
        body = self._json(self._call("GET", "/partners"), "GET", "/partners")
        if not isinstance(body, list):
            raise RegistryError(f"GET {self._shown('/partners')}: the registry did not send a list")
        partners = [wire.partner_from_wire(obj) for obj in body]
        with self._partner_lock:
            self._partners = {p.subdomain: p.id for p in partners}
        return partners

    def list_clients(self) -> list[RemoteClient]:
        """Every client, page by page (``?page=N&pageSize=M``, pages from 0)."""
        subdomains = {p.id: p.subdomain for p in self.list_partners()}
        found: dict[str, RemoteClient] = {}
        page = 0
        while True:
            total, items = self._page(page)
            for obj in items:
                remote = wire.client_from_wire(obj, subdomains)
                found[remote.client.client_id] = remote
            page += 1
            # Stop on a short page too: a total that shrinks while we read must not loop.
            if len(items) < self.page_size or page * self.page_size >= total:
                break
        return sorted(found.values(), key=lambda r: r.client.client_id)

    def _page(self, page: int) -> tuple[int, list[Any]]:
        """``total`` and ``list`` of one page of clients."""
        path = f"/oauth2-clients?{urlencode({'page': page, 'pageSize': self.page_size})}"
        body = self._json(self._call("GET", path), "GET", path)
        try:
            total, items = int(body["total"]), body["list"]
            if not isinstance(items, list):
                raise TypeError(items)
        except (KeyError, TypeError, ValueError, OverflowError):
            raise RegistryError(f"GET {self._shown(path)}: not a page of clients") from None
        return total, items

    def get_client(self, client_id: str) -> RemoteClient | None:
        """One client, or ``None`` on 404."""
        path = _client_path(client_id)
        response = self._call("GET", path, ok=(200, 404))
        if response.status_code == 404:
            return None
        return self._remote(response, "GET", path)

    def create_client(self, client: Client) -> tuple[RemoteClient, Secret]:
        """``POST``; ``ConflictError`` on 409, ``CreatedResponseLostError`` when a lost
        response left the client created."""
        body = wire.client_to_wire(client, self._partner_id(client.partner))
        path = "/oauth2-clients"
        for attempt in range(self.retries + 1):
            outcome = self._post_once(path, body)
            if isinstance(outcome, requests.Response):
                if outcome.status_code == 201:
                    remote = self._remote(outcome, "POST", path)
                    return remote, self._secret(outcome, "POST", path)
                if outcome.status_code == 429 and attempt < self.retries:
                    self._sleep(attempt, outcome)
                    continue
                if outcome.status_code not in LOST_STATUSES or attempt == self.retries:
                    raise self._error("POST", path, outcome)
                reason = f"{outcome.status_code} {outcome.reason}"
                logger.warning(
                    "POST %s: %s; reading %s before trying again",
                    self._shown(path), reason, client.client_id,
                )
            else:
                if attempt == self.retries:
                    raise outcome
                reason = "no response"
                logger.warning("%s; reading %s before trying again", outcome, client.client_id)
            # The POST may have been carried out: look before sending it again.
            self._sleep(attempt, outcome if isinstance(outcome, requests.Response) else None)
            if self.get_client(client.client_id) is not None:
                raise CreatedResponseLostError(
                    f"POST {self._shown(path)}: the response was lost ({reason}) and "
                    f"client {client.client_id} exists now; its secret was not received: "
                    f"run `oauth2-sync rotate-secret {client.client_id}`",
                    status=409,
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def replace_client(self, client: Client, version: str | None) -> RemoteClient:
        """``PUT`` with ``If-Match``; ``PreconditionFailedError`` on 412, ``NotFoundError``."""
        body = wire.client_to_wire(client, self._partner_id(client.partner))
        path = _client_path(client.client_id)
        headers = {} if version is None else {"If-Match": wire.etag(version)}
        response = self._call("PUT", path, json=body, headers=headers, ok=(200, 412))
        if response.status_code == 412:
            if _was_retried(response):
                current = self.get_client(client.client_id)
                if current is not None and current.client == client:
                    logger.info("PUT %s: an earlier attempt landed", self._shown(path))
                    return current
            raise self._error("PUT", path, response)
        return self._remote(response, "PUT", path)

    def delete_client(self, client_id: str, version: str | None) -> None:
        """``DELETE`` with ``If-Match``; ``PreconditionFailedError``, ``NotFoundError``."""
        path = _client_path(client_id)
        headers = {} if version is None else {"If-Match": wire.etag(version)}
        response = self._call("DELETE", path, headers=headers, ok=(204, 404))
        if response.status_code == 404:
            if _was_retried(response):
                logger.info("DELETE %s: an earlier attempt landed", self._shown(path))
                return
            raise self._error("DELETE", path, response)

    def rotate_secret(self, client_id: str) -> Secret:
        """``POST .../secret``: the new secret (the old one stops working)."""
        path = f"{_client_path(client_id)}/secret"
        response = self._post_retrying(path)
        return self._secret(response, "POST", path)

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()

    # --- requests --------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        ok: Iterable[int] = (200,),
    ) -> requests.Response:
        """One API call with its retries and one token renewal; errors raised."""
        response = self._send(method, path, json=json, headers=headers)
        if response.status_code not in ok:
            raise self._error(method, path, response)
        return response

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send with a bearer token; on 401 invalid_token renew it once and resend."""
        for attempt in (0, 1):
            token = self._bearer()
            try:
                response = self._request(
                    method, self.url + path, self._shown(path), json=json, headers=headers,
                    auth=_Bearer(f"Bearer {token.reveal()}"),
                )
            except requests.RequestException as exc:
                error = self._transport_error(method, path, exc)
                if _never_sent(exc):
                    # urllib3 has retried the connection already; nothing reached the server.
                    raise _Unreachable(str(error), status=0) from None
                raise error from None
            logger.debug("%s %s -> %d", method, self._shown(path), response.status_code)
            if attempt == 0 and _invalid_token(response):
                logger.info("%s %s: token expired; renewing it", method, self._shown(path))
                self._renew(token)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _request(self, method: str, url: str, shown: str, **options: Any) -> requests.Response:
        """``session.request`` with the timeouts, no redirects, and the body read at
        once but never beyond ``max_response_bytes`` (after decompression)."""
        response = self.session.request(
            method, url, timeout=self.timeout, allow_redirects=False, stream=True, **options
        )
        limit = self.max_response_bytes
        chunks: list[bytes] = []
        try:
            declared = response.headers.get("Content-Length", "")
            size = int(declared) if declared.isdigit() else 0
            if size <= limit:
                size = 0
                for chunk in response.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > limit:
                        break
                    chunks.append(chunk)
        except BaseException:
            response.close()
            raise
        if size > limit:
            response.close()
            # Status 0: the response was not usable, whatever the registry did.
            raise RegistryError(
                f"{method} {shown}: {response.status_code} {response.reason}: the response "
                f"is larger than {limit // (1024 * 1024)} MiB; refusing to read it",
                status=0,
            )
        # What requests itself does for a response it does not stream: json() reads this.
        response._content = b"".join(chunks)
        return response

    def _post_once(self, path: str, body: Any) -> requests.Response | RegistryError:
        """One POST (connection failures before sending are retried by urllib3).

        Returns the response, or the error when the outcome is unknown (no response).
        """
        try:
            return self._send("POST", path, json=body)
        except _Unreachable:
            raise
        except RegistryError as exc:
            if exc.status != 0:
                raise
            return exc

    def _post_retrying(self, path: str) -> requests.Response:
        """A POST that is safe to repeat, retried like a GET."""
        for attempt in range(self.retries + 1):
            outcome = self._post_once(path, None)
            last = attempt == self.retries
            if isinstance(outcome, RegistryError):
                if last:
                    raise outcome
                self._sleep(attempt, None)
                continue
            if outcome.status_code in RETRY_STATUSES and not last:
                self._sleep(attempt, outcome)
                continue
            if outcome.status_code != 200:
                raise self._error("POST", path, outcome)
            return outcome
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, attempt: int, response: requests.Response | None) -> None:
        delay = min(self.backoff_max, self.backoff_factor * (2**attempt))
        delay *= random.uniform(0.5, 1.5)  # jitter, not cryptography
        if response is not None:
            after = _retry_after(response)
            if after is not None:
                delay = after
        logger.debug("waiting %.2f s before retrying", delay)
        time.sleep(delay)

    # --- tokens ------------------------------------------------------------------

    def _bearer(self) -> Secret:
        with self._token_lock:
            if self._access is None:
                self._fetch_token(self._grant())
            assert self._access is not None
            return self._access

    def _renew(self, stale: Secret) -> None:
        with self._token_lock:
            if self._access is not None and self._access != stale:
                return  # another thread renewed it meanwhile
            self._access = None
            if self._refresh is not None:
                refresh, self._refresh = self._refresh, None
                try:
                    self._fetch_token(
                        {"grant_type": "refresh_token", "refresh_token": refresh.reveal()}
                    )
                    return
                except RegistryError as exc:
                    logger.info("refreshing the token failed (%s); authenticating again", exc)
            self._fetch_token(self._grant())

    def _grant(self) -> dict[str, str]:
        creds = self.credentials
        if creds.grant_type == "password":
            assert creds.username is not None and creds.password is not None
            return {
                "grant_type": "password",
                "username": creds.username,
                "password": creds.password.reveal(),
            }
        return {"grant_type": "client_credentials"}

    def _fetch_token(self, form: Mapping[str, str]) -> None:
        creds = self.credentials
        # RFC 6749 2.3.1: id and secret are form-encoded before the Basic encoding.
        pair = f"{quote(creds.client_id, safe='')}:{quote(creds.client_secret.reveal(), safe='')}"
        basic = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        shown = urlsplit(self.token_url).path
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._request(
                    "POST", self.token_url, shown, data=dict(form), auth=_Bearer(basic)
                )
            except requests.RequestException as exc:
                if last or _never_sent(exc):
                    raise self._transport_error("POST", shown, exc, full=True) from None
                self._sleep(attempt, None)
                continue
            if response.status_code in RETRY_STATUSES and not last:
                self._sleep(attempt, response)
                continue
            break
        if response.status_code != 200:
            raise self._error("POST", shown, response, full=True)
        body = self._json(response, "POST", shown, full=True)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"POST {shown}: the token endpoint sent no access_token")
        self._access = Secret(token)
        refresh = body.get("refresh_token")
        self._refresh = Secret(refresh) if isinstance(refresh, str) and refresh else None
        logger.debug("got a token (scope %s)", body.get("scope"))

    # --- helpers -----------------------------------------------------------------

    def _partner_id(self, subdomain: str) -> int:
        with self._partner_lock:
            known = self._partners
        if known is None or subdomain not in known:
            self.list_partners()
            with self._partner_lock:
                known = self._partners or {}
        if subdomain not in known:
            message = f"partner {subdomain} does not exist in the registry"
            raise RegistryError(message, status=400, fields={"partnerId": message})
        return known[subdomain]

    def _subdomains(self, partner_id: Any) -> dict[int, str]:
        with self._partner_lock:
            known = self._partners
        if known is None or partner_id not in known.values():
            self.list_partners()
            with self._partner_lock:
                known = self._partners or {}
        return {pid: sub for sub, pid in known.items()}

    def _remote(self, response: requests.Response, method: str, path: str) -> RemoteClient:
        body = self._json(response, method, path)
        partner_id = body.get("partnerId") if isinstance(body, dict) else None
        remote = wire.client_from_wire(body, self._subdomains(partner_id))
        tag = wire.version_from_etag(response.headers.get("ETag"))
        if tag is not None and tag != remote.version:
            raise RegistryError(
                f"{method} {self._shown(path)}: ETag {tag} disagrees with version "
                f"{remote.version}"
            )
        return remote

    def _secret(self, response: requests.Response, method: str, path: str) -> Secret:
        body = self._json(response, method, path)
        value = body.get("clientSecret") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise RegistryError(f"{method} {self._shown(path)}: the response has no clientSecret")
        return Secret(value)

    def _json(
        self, response: requests.Response, method: str, path: str, *, full: bool = False
    ) -> Any:
        try:
            return response.json()
        except (ValueError, RecursionError):  # RecursionError: [[[[...]]]] nested too deep
            shown = path if full else self._shown(path)
            raise RegistryError(
                f"{method} {shown}: {response.status_code} {response.reason}: "
                "the response is not JSON",
                status=response.status_code,
            ) from None

    def _shown(self, path: str) -> str:
        return self._base_path + path

    def _error(
        self, method: str, path: str, response: requests.Response, *, full: bool = False
    ) -> RegistryError:
        """One line: method, path, status and the registry's message (and fields)."""
        status = response.status_code
        message, fields = _error_detail(response)
        shown = path if full else self._shown(path)
        line = f"{method} {shown}: {status} {response.reason}: {message}"
        cls: type[RegistryError] = {
            404: NotFoundError, 409: ConflictError, 412: PreconditionFailedError
        }.get(status, RegistryError)
        return cls(line, status=status, fields=fields)

    def _transport_error(
        self, method: str, path: str, exc: requests.RequestException, *, full: bool = False
    ) -> RegistryError:
        shown = path if full else self._shown(path)
        if isinstance(exc, requests.exceptions.SSLError):
            reason = "TLS verification failed"
        elif isinstance(exc, requests.exceptions.ConnectTimeout):
            reason = f"no connection within {self.timeout[0]:g} s"
        elif isinstance(exc, requests.exceptions.ReadTimeout):
            reason = f"no response within {self.timeout[1]:g} s"
        elif isinstance(exc, requests.exceptions.ConnectionError):
            reason = "connection failed" + _root_cause(exc)
        else:
            reason = type(exc).__name__
        host = urlsplit(self.url).netloc
        return RegistryError(f"{method} {shown}: cannot reach {host}: {reason}", status=0)


class _Unreachable(RegistryUnavailableError):
    """No connection could be made (after urllib3's retries): the request was never sent.

    A ``RegistryUnavailableError``: apply stops scheduling writes when one is raised."""


def _never_sent(exc: requests.RequestException) -> bool:
    # requests wraps urllib3's MaxRetryError; a connect failure (refused, connect
    # timeout) means the request never left this machine.
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    return any(isinstance(getattr(a, "reason", None), ConnectTimeoutError) for a in exc.args)


def _client_path(client_id: str) -> str:
    return f"/oauth2-clients/{quote(client_id, safe='')}"


def _invalid_token(response: requests.Response) -> bool:
    if response.status_code != 401:
        return False
    challenge = response.headers.get("WWW-Authenticate", "")
    return "invalid_token" in challenge or not challenge


def _was_retried(response: requests.Response) -> bool:
    retries = getattr(response.raw, "retries", None)
    return bool(retries is not None and retries.history)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = Retry().parse_retry_after(value)
    except Exception:  # urllib3 raises InvalidHeader on junk; then back off normally
        return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def _error_detail(response: requests.Response) -> tuple[str, dict[str, str]]:
    fields: dict[str, str] = {}
    try:
        body = response.json()
    except (ValueError, RecursionError):
        body = None
    if isinstance(body, dict):
        message = body.get("message") or body.get("error_description") or body.get("error")
        raw_fields = body.get("fields")
        if isinstance(raw_fields, dict):
            fields = {str(k): str(v) for k, v in raw_fields.items()}
    else:
        message = None
    text = " ".join(str(message or response.reason or "no message").split())
    if fields and not all(k in text for k in fields):
        text += " (" + "; ".join(f"{k}: {v}" for k, v in sorted(fields.items())) + ")"
    if len(text) > _MESSAGE_MAX:
        text = text[: _MESSAGE_MAX - 3] + "..."
    return text, fields


def _root_cause(exc: BaseException) -> str:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return " (connection refused)"
        if isinstance(seen, ConnectionResetError):
            return " (connection reset)"
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    for marker in ("Connection refused", "Connection reset", "Name or service not known",
                   "Remote end closed connection", "Connection aborted"):
        if marker in text:
            return f" ({marker.lower()})"
    return ""


def default_token_url(url: str) -> str:
    """The registry URL without its trailing ``/v1``, plus ``/oauth/token``."""
    base = url.rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    return f"{base}/oauth/token"


def check_transport(url: str) -> None:
    """``UsageError`` unless ``url`` is https, or http to a loopback host."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    host = parts.hostname or ""
    if parts.scheme == "http" and is_loopback(host):
        return
    if parts.scheme == "http":
        raise UsageError(
            f"refusing plain http to {host}: use https (http is allowed only for "
            "loopback addresses)"
        )
    raise UsageError(f"unsupported registry URL {url!r}: use https://HOST/.../v1")


def credentials_from_settings(settings: Settings) -> Credentials:
    """Read the API credentials from the variables and files ``registry.auth`` names."""
    import os

    auth = settings.registry.auth

    def need(variable: str, what: str) -> str:
        value = os.environ.get(variable)
        if not value:
            raise UsageError(
                f"registry credentials: set {variable} to the {what} (named in registry.auth)"
            )
        return value

    client_id = need(auth.client_id_env, "API client ID")
    secret = os.environ.get(auth.client_secret_env)
    if not secret and auth.client_secret_file is not None:
        try:
            with open_regular(auth.client_secret_file) as stream:  # a FIFO must not hang
                secret = stream.read().decode("utf-8", "replace").strip()
        except OSError as exc:
            raise UsageError(
                f"registry credentials: cannot read {auth.client_secret_file}: "
                f"{exc.strerror or exc}"
            ) from None
    if not secret:
        where = f"{auth.client_secret_env}"
        if auth.client_secret_file is not None:
            where += f" or put it in {auth.client_secret_file}"
        raise UsageError(
            f"registry credentials: set {where} to the API client secret "
            "(named in registry.auth)"
        )
    if auth.grant_type == "password":
        return Credentials(
            client_id, Secret(secret), "password",
            need(auth.username_env, "user name"),
            Secret(need(auth.password_env, "password")),
        )
    return Credentials(client_id, Secret(secret))
