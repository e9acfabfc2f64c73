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

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode, urlsplit

from oauth2_sync import etags
from oauth2_sync.errors import (
    CreatedResponseLostError,
    RegistryError,
    UsageError,
)
from oauth2_sync.files import open_regular
from oauth2_sync.model import Client
from oauth2_sync.registry import wire
from oauth2_sync.registry.api import (
    LOST_STATUSES,
    ApiConnection,
    check_transport,
    client_path,
    default_token_url,
    no_such_client,
    outcome_unknown,
)
from oauth2_sync.registry.base import Partner, Registry, RemoteClient
from oauth2_sync.registry.retry import RetryPolicy
from oauth2_sync.registry.session import Answer, new_session
from oauth2_sync.registry.tokens import Credentials, TokenSource
from oauth2_sync.registry.transport import Deadline
from oauth2_sync.secret import Secret

if TYPE_CHECKING:
    from oauth2_sync.settings import Settings

__all__ = [
    "Credentials", "HttpRegistry", "check_transport", "credentials_from_settings",
    "default_token_url",
]

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES: Final = 64 * 1024 * 1024
"""A larger response is refused (a page of 5,000 clients is about 3 MiB): a broken or
hostile registry must not make us read without bound."""
REQUEST_TIMEOUT: Final = 60.0
"""Seconds one API call may take in all: headers, body, every retry and backoff."""
COMMAND_DEADLINE: Final = 3600.0
"""Seconds a command may spend talking to the registry."""
MAX_CLIENTS: Final = 200_000
"""Paging stops with an error beyond this many clients (``registry.max_clients``)."""
MAX_PAGE_SIZE: Final = 5000
"""The largest ``pageSize`` the /v1 contract allows (``schemas/registry-api.openapi.yaml``),
and the default: the fewer the pages, the less time in requests (20 pages of 500 cost
about 20 ms more than 2 of 5,000 at 10,000 clients). ``registry.page_size`` lowers it."""
TOTAL_MARGIN: Final = 0.1
"""Paging may read this share more than the first page's ``total`` (clients created
while we read), plus one page, before it stops as a registry that never ends."""


class HttpRegistry(ApiConnection, Registry):
    """The registry API over HTTP(S)."""

    reads_in_background = True

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        *,
        token_url: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retries: int = 5,
        page_size: int = MAX_PAGE_SIZE,
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
        self._base_path = urlsplit(self.url).path
        self.credentials = credentials
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries
        self.page_size = page_size
        self.backoff_factor = backoff_factor
        self.backoff_max = backoff_max
        self.max_response_bytes = max_response_bytes
        self.policy = RetryPolicy(
            retries, unprocessed=frozenset({429}), maybe_executed=LOST_STATUSES,
            repeatable=frozenset({"GET", "PUT", "DELETE"}),
            # urllib3's default: these too, when the answer says when to come back.
            retry_after=frozenset({413, 429, 503}),
            backoff_factor=backoff_factor, backoff_max=backoff_max, jitter=backoff_factor,
        )
        self.session = new_session(
            self.policy, pool_size=pool_size, pool_connections=2, ca_bundle=ca_bundle,
            headers={"Accept": "application/json", "User-Agent": "oauth2-sync"},
        )
        self.tokens = TokenSource(credentials, self._token, urlsplit(self.token_url).path)
        self._partner_lock = threading.Lock()
        self._partners: dict[str, int] | None = None
        self._partner_subdomains: dict[int, str] | None = None
        """Partner ids to subdomains, as the last ``list_partners`` read them."""

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
            self._partner_subdomains = {p.id: p.subdomain for p in partners}
        return partners

    def list_clients(self) -> list[RemoteClient]:
        """Every client, page by page (``?page=N&pageSize=M``, pages from 0).

        The registry is not trusted to end: paging stops with an error when a full page
        adds no new client, when the count passes the first page's ``total`` (plus a
        margin) or ``max_clients``.
        """
        # The partners just read (``read_registry`` reads them first) name the clients'
        # partners: one request less a plan (#14). A partner id they do not know has the
        # partners read again, once, as before every client list.
        with self._partner_lock:
            known = self._partner_subdomains
        subdomains = known if known is not None else self._read_subdomains()
        reread = known is None
        found: dict[str, RemoteClient] = {}
        page = 0
        announced: int | None = None
        while True:
            total, items = self._page(page)
            announced = total if announced is None else announced
            before = len(found)
            for obj in items:
                try:
                    remote = wire.client_from_wire(obj, subdomains)
                except RegistryError:
                    if reread:
                        raise
                    subdomains, reread = self._read_subdomains(), True
                    remote = wire.client_from_wire(obj, subdomains)
                found[remote.client.client_id] = remote
            self._check_paging(page, len(found) - before, len(found), announced)
            page += 1
            # Stop on a short page too: a total that shrinks while we read must not loop.
            if len(items) < self.page_size or page * self.page_size >= total:
                break
        return sorted(found.values(), key=lambda r: r.client.client_id)

    def _read_subdomains(self) -> dict[int, str]:
        """Partner ids to subdomains, read now."""
        return {p.id: p.subdomain for p in self.list_partners()}

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
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise RegistryError(f"GET {self._shown(path)}: not a page of clients") from exc
        return total, items

    def get_client(self, client_id: str) -> RemoteClient | None:
        """One client, or ``None`` on 404."""
        path = client_path(client_id)
        response = self._call("GET", path, ok=(200, 404))
        if response.status_code == 404:
            if not no_such_client(response):
                raise self._error("GET", path, response)
            return None
        return self._remote(response, "GET", path)

    def create_client(self, client: Client) -> tuple[RemoteClient, Secret]:
        """``POST``; ``ConflictError`` on 409, ``CreatedResponseLostError`` when a lost
        response left the client created."""
        body = wire.client_to_wire(client, self._partner_id(client.partner))
        path = "/oauth2-clients"
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                answer = self._send("POST", path, json=body)
            except RegistryError as exc:
                if last or not outcome_unknown(exc):
                    # Unknown on the last attempt: the caller reads the client back (and
                    # a registry that is gone fails that read, opening the circuit).
                    raise
                logger.warning("%s; reading %s before trying again", exc, client.client_id)
                self._look_before_repeating(client, path, attempt, None, "no response")
                continue
            if answer.status_code == 201:
                return self._remote(answer, "POST", path), self._secret(answer, "POST", path)
            if answer.status_code == 429 and not last:
                self._sleep(attempt, answer)  # refused before any work: send it again
                continue
            if answer.status_code not in LOST_STATUSES or last:
                raise self._error("POST", path, answer)
            reason = f"{answer.status_code} {answer.reason}"
            logger.warning(
                "POST %s: %s; reading %s before trying again",
                self._shown(path), reason, client.client_id,
            )
            self._look_before_repeating(client, path, attempt, answer, reason)
        raise AssertionError("unreachable")  # pragma: no cover

    def _look_before_repeating(
        self, client: Client, path: str, attempt: int, answer: Answer | None, reason: str
    ) -> None:
        """The POST may have been carried out: wait, then ``CreatedResponseLostError`` if
        the client exists now (its secret was never received)."""
        self._sleep(attempt, answer)
        if self.get_client(client.client_id) is not None:
            raise CreatedResponseLostError(
                f"POST {self._shown(path)}: the response was lost ({reason}) and "
                f"client {client.client_id} exists now; its secret was not received: "
                f"run `oauth2-sync rotate-secret {client.client_id}`",
                status=409,
            )

    def replace_client(self, client: Client, version: str | None) -> RemoteClient:
        """``PUT`` with ``If-Match``; ``PreconditionFailedError`` on 412, ``NotFoundError``."""
        body = wire.client_to_wire(client, self._partner_id(client.partner))
        path = client_path(client.client_id)
        headers = {} if version is None else {"If-Match": etags.etag(version)}
        response = self._call("PUT", path, json=body, headers=headers, ok=(200, 412))
        if response.status_code == 412:
            if response.retried:
                current = self.get_client(client.client_id)
                if current is not None and current.client == client:
                    logger.info("PUT %s: an earlier attempt landed", self._shown(path))
                    return current
            raise self._error("PUT", path, response)
        return self._remote(response, "PUT", path)

    def delete_client(self, client_id: str, version: str | None) -> None:
        """``DELETE`` with ``If-Match``; ``PreconditionFailedError``, ``NotFoundError``."""
        path = client_path(client_id)
        headers = {} if version is None else {"If-Match": etags.etag(version)}
        response = self._call("DELETE", path, headers=headers, ok=(204, 404))
        if response.status_code == 404:
            if response.retried and no_such_client(response):
                logger.info("DELETE %s: an earlier attempt landed", self._shown(path))
                return
            raise self._error("DELETE", path, response)

    def rotate_secret(self, client_id: str) -> Secret:
        """``POST .../secret``: the new secret (the old one stops working)."""
        path = f"{client_path(client_id)}/secret"
        # A second rotation only makes the first new secret obsolete too: harmless.
        answer = self._repeated(lambda: self._send("POST", path), outcome_unknown)
        if answer.status_code != 200:
            raise self._error("POST", path, answer)
        return self._secret(answer, "POST", path)

    def check_can_write(self) -> None:
        """Refuse, before the first write, a credential whose token may only read
        (its granted ``scope`` lacks ``write``). ``RegistryError`` naming the variables."""
        self.tokens.bearer()
        scope = self.tokens.scope
        if scope is not None and "write" not in scope.split():
            raise RegistryError(
                f"the API credential ({' and '.join(self.credential_names)}, named in "
                f"registry.auth) may only read: its token's scope is '{scope}'; apply "
                "needs a credential of scope 'write'", status=403,
            )

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()

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

    def _remote(self, response: Answer, method: str, path: str) -> RemoteClient:
        body = self._json(response, method, path)
        partner_id = body.get("partnerId") if isinstance(body, dict) else None
        remote = wire.client_from_wire(body, self._subdomains(partner_id))
        tag = etags.version_from_etag(response.headers.get("ETag"))
        if tag is not None and tag != remote.version:
            raise RegistryError(
                f"{method} {self._shown(path)}: ETag {tag} disagrees with version "
                f"{remote.version}"
            )
        return remote

    def _secret(self, response: Answer, method: str, path: str) -> Secret:
        body = self._json(response, method, path)
        value = body.get("clientSecret") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise RegistryError(f"{method} {self._shown(path)}: the response has no clientSecret")
        return Secret(value)

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
            ) from exc
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

