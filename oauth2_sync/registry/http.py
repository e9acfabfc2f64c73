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
from oauth2_sync.registry import transport, wire
from oauth2_sync.registry.base import Partner, Registry, RemoteClient, Secret
from oauth2_sync.registry.transport import BudgetRetry, Deadline, WatchedAdapter

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
REQUEST_TIMEOUT: Final = 60.0
"""Seconds one API call may take in all: headers, body, every retry and backoff."""
COMMAND_DEADLINE: Final = 3600.0
"""Seconds a command may spend talking to the registry."""
MAX_CLIENTS: Final = 200_000
"""Paging stops with an error beyond this many clients (``registry.max_clients``)."""
TOTAL_MARGIN: Final = 0.1
"""Paging may read this share more than the first page's ``total`` (clients created
while we read), plus one page, before it stops as a registry that never ends."""
UNREACHABLE_HINT: Final = "check registry.url and that the registry is running"
BASE_PATH_HINT: Final = (
    "the base path looks wrong: registry.url must end in the API's base, e.g. /v1"
)
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
        request_timeout: float = REQUEST_TIMEOUT,
        deadline: float = COMMAND_DEADLINE,
        max_clients: int = MAX_CLIENTS,
        credential_names: tuple[str, ...] = ("OAUTH2_SYNC_CLIENT_ID", "OAUTH2_SYNC_CLIENT_SECRET"),
    ) -> None:
        check_transport(url)
        self.url = url.rstrip("/")
        self.token_url = token_url or default_token_url(self.url)
        check_transport(self.token_url, "registry.auth.token_url")
        self.request_timeout = request_timeout
        self.deadline = Deadline(deadline, "command")
        self.max_clients = max_clients
        self.credential_names = credential_names
        self._circuit: str | None = None
        """Why the registry is unavailable, once it is: the circuit is open."""
        self._scope: str | None = None
        transport.quiet_urllib3()
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
        retry = BudgetRetry(
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
        adapter = WatchedAdapter(max_retries=retry, pool_connections=2, pool_maxsize=pool_size)
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
        auth = reg.auth
        names: tuple[str, ...] = (auth.client_id_env, auth.client_secret_env)
        if auth.grant_type == "password":
            names += (auth.username_env, auth.password_env)
        return cls(
            reg.url,
            credentials_from_settings(settings),
            token_url=auth.token_url,
            connect_timeout=reg.connect_timeout,
            read_timeout=reg.read_timeout,
            retries=reg.retries,
            page_size=reg.page_size,
            ca_bundle=reg.ca_bundle,
            request_timeout=reg.request_timeout,
            deadline=reg.deadline,
            max_clients=reg.max_clients,
            credential_names=names,
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
        """Every client, page by page (``?page=N&pageSize=M``, pages from 0).

        The registry is not trusted to end: paging stops with an error when a full page
        adds no new client, when the count passes the first page's ``total`` (plus a
        margin) or ``max_clients``.
        """
        subdomains = {p.id: p.subdomain for p in self.list_partners()}
        found: dict[str, RemoteClient] = {}
        page = 0
        announced: int | None = None
        while True:
            total, items = self._page(page)
            announced = total if announced is None else announced
            before = len(found)
            for obj in items:
                remote = wire.client_from_wire(obj, subdomains)
                found[remote.client.client_id] = remote
            self._check_paging(page, len(found) - before, len(found), announced)
            page += 1
            # Stop on a short page too: a total that shrinks while we read must not loop.
            if len(items) < self.page_size or page * self.page_size >= total:
                break
        return sorted(found.values(), key=lambda r: r.client.client_id)

    def _check_paging(self, page: int, added: int, count: int, announced: int) -> None:
        """Stop a registry that pages without end (``RegistryError``, one line)."""
        shown = self._shown(self._page_path(page))
        if added == 0 and page > 0:
            raise RegistryError(
                f"GET {shown}: the page adds no new client (the registry repeats itself); "
                f"stopped paging after {count} clients"
            )
        allowed = announced + int(announced * TOTAL_MARGIN) + self.page_size
        if count > allowed:
            raise RegistryError(
                f"GET {shown}: {count} clients so far, more than the {announced} the first "
                "page announced (total); stopped paging"
            )
        if count > self.max_clients:
            raise RegistryError(
                f"GET {shown}: more than registry.max_clients ({self.max_clients}) clients; "
                "stopped paging (raise registry.max_clients if the registry holds more)"
            )

    def _page_path(self, page: int) -> str:
        return f"/oauth2-clients?{urlencode({'page': page, 'pageSize': self.page_size})}"

    def _page(self, page: int) -> tuple[int, list[Any]]:
        """``total`` and ``list`` of one page of clients."""
        path = self._page_path(page)
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
            if not _no_such_client(response):
                raise self._error("GET", path, response)
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
                    # The outcome is unknown: the caller reads the client back (and a
                    # registry that is gone fails that read, opening the circuit).
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
            if _was_retried(response) and _no_such_client(response):
                logger.info("DELETE %s: an earlier attempt landed", self._shown(path))
                return
            raise self._error("DELETE", path, response)

    def rotate_secret(self, client_id: str) -> Secret:
        """``POST .../secret``: the new secret (the old one stops working)."""
        path = f"{_client_path(client_id)}/secret"
        response = self._post_retrying(path)
        return self._secret(response, "POST", path)

    def check_can_write(self) -> None:
        """Refuse, before the first write, a credential whose token may only read
        (its granted ``scope`` lacks ``write``). ``RegistryError`` naming the variables."""
        self._bearer()
        scope = self._scope
        if scope is not None and "write" not in scope.split():
            raise RegistryError(
                f"the API credential ({' and '.join(self.credential_names)}, named in "
                f"registry.auth) may only read: its token's scope is '{scope}'; apply "
                "needs a credential of scope 'write'", status=403,
            )

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
                # from None: the cause holds the request, whose headers carry the token.
                if method != "POST" or _never_sent(exc) or _timed_out(exc):
                    # urllib3 spent the whole retry budget (a POST's only when the
                    # connection never opened): the registry is unreachable.
                    raise self._unavailable(method, path, exc) from None
                raise self._transport_error(method, path, exc) from None
            logger.debug("%s %s -> %d", method, self._shown(path), response.status_code)
            if attempt == 0 and _invalid_token(response):
                logger.info("%s %s: token expired; renewing it", method, self._shown(path))
                self._renew(token)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _request(self, method: str, url: str, shown: str, **options: Any) -> requests.Response:
        """One call within its deadline (``request_timeout``, and what is left of the
        command's), with the timeouts, no redirects, and the body read at once but never
        beyond ``max_response_bytes`` (after decompression).

        ``RegistryUnavailableError`` at once when the circuit is open (an earlier call
        found the registry unreachable) or the command's deadline passed.
        """
        if self._circuit is not None:
            raise RegistryUnavailableError(f"{method} {shown}: not sent: {self._circuit}", status=0)
        if self.deadline.remaining() <= 0:
            reason = f"the command's deadline of {self.deadline.seconds:g} s passed (registry.deadline)"
            raise self._open(f"{method} {shown}: not sent: {reason}", reason)
        left = self.deadline.remaining()
        cause: Literal["request", "command"] = (
            "request" if self.request_timeout <= left else "command"
        )
        with Deadline(min(self.request_timeout, left), cause) as deadline:
            response = self._exchange(method, url, shown, **options)
        if deadline.expired:
            # The watchdog shut the socket: what was read may look complete (headers cut
            # at a line end, a body without a length), but it is not.
            response.close()
            raise requests.exceptions.ConnectionError(f"{method} {shown}: deadline passed")
        return response

    def _exchange(self, method: str, url: str, shown: str, **options: Any) -> requests.Response:
        response = transport.send_as_built(
            self.session, method, url, timeout=self.timeout, allow_redirects=False,
            stream=True, **options,
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
        except RegistryUnavailableError:
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
        if delay >= self.deadline.remaining():
            reason = (
                f"waiting {delay:.0f} s to retry would pass the command's deadline of "
                f"{self.deadline.seconds:g} s (registry.deadline)"
            )
            raise self._open(reason, reason)
        logger.info("waiting %.2f s before retrying", delay)
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
                # from None: the cause holds the request, whose headers carry the credential.
                if last or _never_sent(exc) or _timed_out(exc):
                    raise self._unavailable("POST", shown, exc, full=True) from None
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
        scope = body.get("scope")
        self._scope = scope if isinstance(scope, str) else None
        logger.debug("got a token (scope %s)", self._scope)

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
        message, fields = transport.error_detail(response, _MESSAGE_MAX)
        shown = path if full else self._shown(path)
        line = f"{method} {shown}: {status} {response.reason}: {message}"
        cls: type[RegistryError] = {
            404: NotFoundError, 409: ConflictError, 412: PreconditionFailedError
        }.get(status, RegistryError)
        if status == 404 and not _no_such_client(response):
            # Not the registry's "no such client": an unknown route, so a wrong base path
            # (or a client ID that addressed another route) - never "already deleted".
            cls, line = RegistryError, f"{line}; {BASE_PATH_HINT}"
        elif status == 401:
            line += f"; check {' and '.join(self.credential_names)} (named in registry.auth)"
        return cls(line, status=status, fields=fields)

    def _transport_error(
        self, method: str, path: str, exc: requests.RequestException, *, full: bool = False
    ) -> RegistryError:
        """One line: what was sent, to which host, what happened and what to check."""
        shown = path if full else self._shown(path)
        return RegistryError(f"{method} {shown}: {self._reason(exc)}", status=0)

    def _reason(self, exc: requests.RequestException) -> str:
        return transport.failure_reason(
            exc, urlsplit(self.url).netloc, timeouts=self.timeout, retries=self.retries,
            command_deadline=self.deadline.seconds, hint=UNREACHABLE_HINT,
        )

    def _unavailable(
        self, method: str, path: str, exc: requests.RequestException, *, full: bool = False
    ) -> RegistryUnavailableError:
        """The registry could not be reached for a whole retry budget: the circuit opens,
        and every later call of this run fails at once, saying why."""
        error = self._transport_error(method, path, exc, full=full)
        return self._open(str(error), self._reason(exc))

    def _open(self, line: str, reason: str) -> RegistryUnavailableError:
        """Open the circuit (the first ``reason`` is kept) and return the error for ``line``."""
        if self._circuit is None:
            self._circuit = reason
            logger.info("the registry is unavailable (%s); no more requests this run", reason)
        return RegistryUnavailableError(line, status=0)


def _never_sent(exc: requests.RequestException) -> bool:
    # requests wraps urllib3's MaxRetryError; a connect failure (refused, connect
    # timeout) means the request never left this machine.
    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)):
        return True  # no connection, or no TLS session: no request was sent
    return any(isinstance(getattr(a, "reason", None), ConnectTimeoutError) for a in exc.args)


def _client_path(client_id: str) -> str:
    return f"/oauth2-clients/{transport.segment(client_id)}"


def _timed_out(exc: requests.RequestException) -> bool:
    """Whether the request's deadline cut it short (the budget is spent)."""
    deadline = transport.last_deadline()
    return deadline is not None and deadline.passed()


def _no_such_client(response: requests.Response) -> bool:
    """Whether a 404 is the registry's "no such client" (``error: not_found`` and not an
    unknown route), rather than a route that does not exist."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return False
    if not isinstance(body, dict) or body.get("error") != "not_found":
        return False
    message = body.get("message")
    return isinstance(message, str) and not message.startswith("no such endpoint")


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


def default_token_url(url: str) -> str:
    """The registry URL without its trailing ``/v1``, plus ``/oauth/token``."""
    base = url.rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    return f"{base}/oauth/token"


def check_transport(url: str, what: str = "registry.url") -> None:
    """``UsageError`` unless ``url`` is https, or http to a loopback host, as urllib3
    will connect to it; URLs that parsers may read differently are refused
    (``transport.url_problem``), and so is a registry URL with a query or fragment."""
    if what == "registry.url" and ("?" in url or "#" in url):
        raise UsageError(
            f"refusing {what}: it holds a query or fragment ('?' or '#'); use https://HOST/.../v1"
        )
    problem = transport.url_problem(url)
    if problem is None:
        return
    kind, detail = problem
    if kind == "plain-http":
        raise UsageError(
            f"refusing plain http to {detail}: use https (http is allowed only for "
            "loopback addresses)"
        )
    if kind == "ambiguous":
        raise UsageError(f"refusing {what}: {detail}; use https://HOST/.../v1")
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
