"""The ``rfc7592+http(s)://`` adapter: a standard Dynamic Client Registration server.

Clients are created with RFC 7591 (``POST`` to the registration endpoint, with the
initial access token) and read, replaced and deleted with RFC 7592 (``GET``/``PUT``/
``DELETE`` on each client's registration client URI, with its registration access
token). Tested against oidc-provider 9.13.3 (``tests/peers/oidc-provider``).

What the standard lacks, and how this adapter makes up for it (README, "Standard OAuth servers"):

- No list endpoint, and the server picks the client_id: a state file
  (``registry.state``) maps our client IDs to the server's registrations. Our client ID
  is also stored in the client's metadata (``oauth2_sync_client_id``), so a lost state
  can be rebuilt with ``adopt``. The server's client_id is the clients'
  ``registry_client_id``, which apply hands to the secret sink with a new secret.
- No partners: partners are the managed partners of the settings (``users`` unknown).
- No partner, restrict-to-partner-users or token lifetimes: extension metadata
  (``oauth2_sync_*``), which the server must be told to keep (oidc-provider drops
  unknown metadata silently: ``extraClientMetadata``). A write whose fields do not come
  back as sent raises ``RegistryError``.
- No ETag: a client's version is a hash of the metadata the server returns; replace and
  delete read first and refuse a stale version (best effort, not atomic).
- No secret rotation: ``rotate_secret`` raises ``RegistryError``.
- What the server can represent is read from its discovery document
  (``grant_types_supported``, ``response_types_supported``, ``scopes_supported``);
  ``unsupported`` lists what a desired client asks for beyond that.

Registration access tokens and client secrets are ``Secret``s: they are never logged and
never part of an error message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import requests

from oauth2_sync.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    RegistryError,
    RegistryUnavailableError,
    UsageError,
)
from oauth2_sync.model import Client
from oauth2_sync.registry import transport
from oauth2_sync.registry.base import Partner, Registry, RemoteClient, Secret
from oauth2_sync.registry.state import Registration, StateFile
from oauth2_sync.settings import Settings

logger = logging.getLogger(__name__)

SCHEME_PREFIX = "rfc7592+"

# Extension metadata: the fields RFC 7591 has no name for.
X_CLIENT_ID = "oauth2_sync_client_id"
X_PARTNER = "oauth2_sync_partner"
X_RESTRICT = "oauth2_sync_restrict_to_partner_users"
X_ACCESS_TTL = "oauth2_sync_access_token_ttl"
X_REFRESH_TTL = "oauth2_sync_refresh_token_ttl"
EXTENSION_FIELDS: tuple[str, ...] = (X_CLIENT_ID, X_PARTNER, X_RESTRICT, X_ACCESS_TTL, X_REFRESH_TTL)

MANAGED_FIELDS: tuple[str, ...] = (
    "client_name", "contacts", "scope", "grant_types", "response_types", "redirect_uris",
    "application_type", *EXTENSION_FIELDS,
)
"""Every metadata field this adapter sets; the rest of a registration is left as it is."""

RESPONSE_TYPE_OF: Mapping[str, str] = {"authorization_code": "code", "implicit": "token"}
"""The response type each redirect-based grant needs (RFC 7591 §2.1)."""

# RFC 7592 §2.2: a PUT must not carry these; the server owns them.
_NOT_IN_UPDATE = frozenset({
    "registration_access_token", "registration_client_uri",
    "client_secret_expires_at", "client_id_issued_at",
})
# Never part of a version hash: credentials, and the URI that only repeats the id.
_NOT_HASHED = frozenset({"client_secret", "registration_access_token", "registration_client_uri"})
# RFC 8414 §2: the default of grant_types_supported when a server omits it.
_DEFAULT_GRANTS = ("authorization_code", "implicit")
_WEB_SCHEMES = frozenset({"http", "https"})

INITIAL_ACCESS_TOKEN_HINT = "OAUTH2_SYNC_INITIAL_ACCESS_TOKEN"
REGISTRATION_ACCESS_TOKEN_ENV = "OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN"
"""Where ``adopt`` reads the registration access token of the client it adopts."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the server says it supports (its discovery document)."""

    grant_types: frozenset[str]
    response_types: frozenset[str]
    scopes: frozenset[str] | None
    """``None`` when the server does not publish ``scopes_supported``."""
    source: str
    """The discovery document's URL."""


class _Retry(transport.BudgetRetry):
    """Retries that never repeat a write the server may have carried out.

    429 and 503 mean the request was not processed, so every method but POST may be
    retried; 502 and 504 may hide a completed write, so only GET is. Connection errors
    before the request was sent are retried for every method (urllib3's ``connect``).
    """

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if status_code in (429, 503):
            return method in ("GET", "PUT", "DELETE")
        return method == "GET" and status_code in (502, 504)


def check_transport(url: str, what: str) -> None:
    """Refuse a URL that would carry a credential in clear text off this machine, or
    that parsers may read differently (``transport.url_problem``, the HTTP adapter's
    check too): the host judged is the one urllib3 connects to. The registration
    endpoint (registry.url) holds no query or fragment."""
    if what == "the registration endpoint" and ("?" in url or "#" in url):
        raise UsageError(f"refusing {what}: it holds a query or fragment ('?' or '#')") from None
    problem = transport.url_problem(url)
    if problem is None:
        return
    if problem[0] == "ambiguous":
        # The URL itself is not shown: its user info may hold a password.
        raise UsageError(f"refusing {what}: {problem[1]}") from None
    raise UsageError(
        f"{what} {url} must use https (plain http only for a loopback host)"
    ) from None


def response_types_for(grant_types: Iterable[str]) -> tuple[str, ...]:
    """The response types a client with these grant types registers (sorted)."""
    return tuple(sorted({RESPONSE_TYPE_OF[g] for g in grant_types if g in RESPONSE_TYPE_OF}))


def to_metadata(client: Client) -> dict[str, Any]:
    """The RFC 7591 client metadata for a client, extension fields included.

    Null lifetimes are left out (absent = the platform default). ``application_type`` is
    ``native`` when a redirect URI uses a private-use scheme (RFC 8252 §7.1), which
    OpenID Connect servers refuse for ``web`` clients.
    """
    native = any(urlsplit(u).scheme not in _WEB_SCHEMES for u in client.redirect_uris)
    metadata: dict[str, Any] = {
        "client_name": client.name,
        "contacts": [client.email],
        "scope": " ".join(client.scopes),
        "grant_types": list(client.grant_types),
        "response_types": list(response_types_for(client.grant_types)),
        "redirect_uris": list(client.redirect_uris),
        "application_type": "native" if native else "web",
        X_CLIENT_ID: client.client_id,
        X_PARTNER: client.partner,
        X_RESTRICT: client.restrict_to_partner_users,
    }
    if client.access_token_ttl is not None:
        metadata[X_ACCESS_TTL] = client.access_token_ttl
    if client.refresh_token_ttl is not None:
        metadata[X_REFRESH_TTL] = client.refresh_token_ttl
    return metadata


def from_metadata(
    client_id: str, metadata: Mapping[str, Any], partners: Iterable[str] = ()
) -> Client:
    """The client in normal form from a server's metadata; only the fields we manage.

    Reading is lenient, so that a drifted client shows as a difference rather than an
    error: absent extension fields take the files' defaults (restricted, platform
    lifetimes), several contacts are joined with ", ", and a missing partner is taken
    from the client ID's prefix among ``partners`` (the managed ones), else "".
    """
    contacts = metadata.get("contacts") or []
    scope = metadata.get("scope")
    partner = metadata.get(X_PARTNER)
    if not isinstance(partner, str):
        prefixes = [p for p in partners if client_id.startswith(f"{p}-")]
        partner = max(prefixes, key=len) if prefixes else ""
    restrict = metadata.get(X_RESTRICT)
    return Client(
        client_id=client_id,
        name=str(metadata.get("client_name") or ""),
        email=", ".join(str(c) for c in contacts),
        partner=partner,
        restrict_to_partner_users=restrict if isinstance(restrict, bool) else True,
        scopes=tuple(sorted(set(scope.split()))) if isinstance(scope, str) else (),
        grant_types=tuple(sorted(set(metadata.get("grant_types") or []))),
        redirect_uris=tuple(sorted(set(metadata.get("redirect_uris") or []))),
        access_token_ttl=_int_or_none(metadata.get(X_ACCESS_TTL)),
        refresh_token_ttl=_int_or_none(metadata.get(X_REFRESH_TTL)),
    )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def version_of(metadata: Mapping[str, Any]) -> str:
    """The version of a registration: a hash of all its metadata but the credentials."""
    kept = {k: v for k, v in metadata.items() if k not in _NOT_HASHED}
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True, ensure_ascii=True).encode())
    return "sha256:" + digest.hexdigest()[:32]


def _comparable(field: str, value: Any) -> Any:
    if field == "scope" and isinstance(value, str):
        return sorted(set(value.split()))
    if isinstance(value, list):
        return sorted(set(map(str, value)))
    return value


def not_kept(sent: Mapping[str, Any], returned: Mapping[str, Any]) -> list[str]:
    """The managed fields that the server did not keep as sent (dropped or changed)."""
    problems: list[str] = []
    for field in MANAGED_FIELDS:
        if field == "application_type":
            continue  # not in RFC 7591: a plain OAuth server may ignore it, harmlessly
        if field in sent and field not in returned:
            problems.append(f"{field} (dropped)")
        elif field in sent and _comparable(field, sent[field]) != _comparable(
            field, returned[field]
        ):
            problems.append(f"{field} (sent {sent[field]!r}, kept {returned[field]!r})")
        elif field not in sent and returned.get(field) is not None and field in EXTENSION_FIELDS:
            problems.append(f"{field} (not sent, kept {returned[field]!r})")
    return problems


class Rfc7592Registry(Registry):
    """A Dynamic Client Registration server, with a state file for what it cannot list.

    ``url`` is the settings' ``rfc7592+http(s)://…`` URL; the registration endpoint is
    that URL without the ``rfc7592+`` prefix. The state file is locked from construction
    until ``close``.
    """

    def __init__(
        self,
        url: str,
        *,
        state: StateFile,
        managed_partners: Iterable[str],
        initial_access_token: Secret | None,
        initial_access_token_env: str = INITIAL_ACCESS_TOKEN_HINT,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retries: int = 5,
        ca_bundle: str | None = None,
        request_timeout: float = 60.0,
        deadline: float = 3600.0,
    ) -> None:
        if not url.startswith(SCHEME_PREFIX):
            raise UsageError(f"not an rfc7592 registry URL: {url}") from None
        self.url = url
        self.endpoint = url[len(SCHEME_PREFIX):]
        check_transport(self.endpoint, "the registration endpoint")
        self.state = state
        self._partners = tuple(sorted(set(managed_partners)))
        self._iat = initial_access_token
        self._iat_env = initial_access_token_env
        self._timeout = (connect_timeout, read_timeout)
        self._request_timeout = request_timeout
        self._retries = retries
        self._deadline = transport.Deadline(deadline, "command")
        self._circuit: str | None = None
        transport.quiet_urllib3()
        self._capabilities: Capabilities | None = None
        self._capabilities_lock = threading.Lock()
        self._session = requests.Session()
        retry = _Retry(
            total=retries, connect=retries, read=retries, status=retries,
            backoff_factor=0.5, backoff_jitter=0.25, backoff_max=30,
            allowed_methods=frozenset({"GET"}),
            status_forcelist=(429, 502, 503, 504), raise_on_status=False,
            respect_retry_after_header=True,
        )
        adapter = transport.WatchedAdapter(max_retries=retry, pool_maxsize=16)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["Accept"] = "application/json"
        if ca_bundle is not None:
            self._session.verify = ca_bundle

    @classmethod
    def from_settings(cls, settings: Settings) -> Rfc7592Registry:
        """The adapter for ``settings.registry``: the endpoint, its state file and tokens."""
        reg = settings.registry
        if reg.state_file is None:
            raise UsageError("an rfc7592 registry needs registry.state_file") from None
        token = os.environ.get(reg.auth.initial_access_token_env)
        state = StateFile(reg.state_file, reg.url, settings.root)
        try:
            return cls(
                reg.url,
                state=state,
                managed_partners=settings.managed_partners,
                initial_access_token=Secret(token) if token else None,
                initial_access_token_env=reg.auth.initial_access_token_env,
                connect_timeout=reg.connect_timeout,
                read_timeout=reg.read_timeout,
                retries=reg.retries,
                ca_bundle=str(reg.ca_bundle) if reg.ca_bundle else None,
                request_timeout=reg.request_timeout,
                deadline=reg.deadline,
            )
        except BaseException:
            state.close()
            raise

    # --- the Registry interface ----------------------------------------------------------

    def list_partners(self) -> list[Partner]:
        """The managed partners of the settings: a standard server has no partner list.

        Ids are derived from the subdomain, so they do not move when partners are added.
        """
        return [
            Partner(
                id=int.from_bytes(hashlib.sha256(p.encode()).digest()[:4], "big"),
                subdomain=p, name=p, users=None,
            )
            for p in self._partners
        ]

    def list_clients(self) -> list[RemoteClient]:
        """Every client the state knows, each read from the server (sorted by client ID).

        A registration the server reports gone (404) is left out with a warning; one it
        refuses (401: deleted, or its token revoked or rotated elsewhere) is an error, so
        that a plan never proposes to create a client that may still exist.
        """
        clients: list[RemoteClient] = []
        for registration in self.state.entries():
            metadata = self._read(registration)
            if metadata is None:
                logger.warning(
                    "%s: the registry no longer has it (404); it will be created again "
                    "unless `oauth2-sync forget %s` is run", registration.client_id,
                    registration.client_id,
                )
                continue
            clients.append(self._remote(registration.client_id, metadata))
        return clients

    def get_client(self, client_id: str) -> RemoteClient | None:
        """One client: ``None`` when the state does not know it or the server says 404."""
        registration = self.state.get(client_id)
        if registration is None:
            return None
        metadata = self._read(registration)
        return None if metadata is None else self._remote(client_id, metadata)

    def create_client(self, client: Client) -> tuple[RemoteClient, Secret]:
        """Register a client (RFC 7591) and record its registration in the state.

        Never retried: a POST whose response was lost may have created the client, and
        without its response nothing can reach it (README, "Standard OAuth servers", "Limitations").
        """
        self._refuse_unsupported(client)
        existing = self.state.get(client.client_id)
        if existing is not None and self._read(existing) is not None:
            raise ConflictError(
                f"client {client.client_id} already exists (registry client_id "
                f"{existing.server_client_id})", status=409,
            ) from None
        sent = to_metadata(client)
        headers = {}
        if self._iat is not None:
            headers["Authorization"] = f"Bearer {self._iat.reveal()}"
        response = self._request("POST", self.endpoint, body=sent, headers=headers,
                                 what=f"creating client {client.client_id}")
        if response.status_code == 401:
            hint = "" if self._iat is not None else f" ({self._iat_env} is not set)"
            raise RegistryError(
                f"creating client {client.client_id}: the registry refused the initial "
                f"access token{hint}", status=401,
            ) from None
        if response.status_code not in (200, 201):
            raise self._error(response, f"creating client {client.client_id}")
        body = self._json(response, f"creating client {client.client_id}")
        registration = self._registration_from(client.client_id, body)
        # Recorded before anything else can fail, so a created client is never orphaned.
        self.state.put(registration)
        logger.info("created %s as registry client_id %s", client.client_id,
                    registration.server_client_id)
        problems = not_kept(sent, body)
        if problems:
            self._undo_create(registration)
            raise RegistryError(
                f"creating client {client.client_id}: the registry did not keep "
                f"{', '.join(problems)}; the client was deleted again. A server drops "
                "metadata it does not know: declare the oauth2_sync_* fields on it "
                "(oidc-provider: extraClientMetadata.properties)",
            ) from None
        secret = body.get("client_secret")
        if not isinstance(secret, str) or not secret:
            raise RegistryError(
                f"creating client {client.client_id}: the registry issued no client secret"
            ) from None
        return self._remote(client.client_id, body), Secret(secret)

    def replace_client(self, client: Client, version: str | None) -> RemoteClient:
        """Replace the managed fields of a client (RFC 7592 PUT, a full replacement).

        The server's other metadata is sent back unchanged, so that fields this tool does
        not manage survive. With ``version``, the client is read first and a different
        version raises ``PreconditionFailedError``: best effort, since RFC 7592 has no
        conditional request (a change between the read and the PUT is not detected).
        A rotated registration access token in the response is recorded at once.
        """
        self._refuse_unsupported(client)
        registration = self._known(client.client_id)
        current = self._read_existing(registration)
        if version is not None and version_of(current) != version:
            raise PreconditionFailedError(
                f"client {client.client_id} changed in the registry since it was read "
                "(version mismatch); plan again", status=412,
            ) from None
        sent = to_metadata(client)
        update = {k: v for k, v in current.items() if k not in _NOT_IN_UPDATE}
        for field in MANAGED_FIELDS:
            update.pop(field, None)
        update.update(sent)
        update["client_id"] = registration.server_client_id
        response = self._management("PUT", registration, body=update,
                                    what=f"updating client {client.client_id}")
        returned = self._json(response, f"updating client {client.client_id}")
        self._record_rotation(registration, returned)
        problems = not_kept(sent, returned)
        if problems:
            raise RegistryError(
                f"updating client {client.client_id}: the registry did not keep "
                f"{', '.join(problems)}. A server drops metadata it does not know: declare "
                "the oauth2_sync_* fields on it (oidc-provider: extraClientMetadata.properties)",
            ) from None
        logger.info("updated %s", client.client_id)
        return self._remote(client.client_id, returned)

    def delete_client(self, client_id: str, version: str | None) -> None:
        """Delete a client (RFC 7592 DELETE) and forget its registration.

        With ``version``, the client is read first and a different version raises
        ``PreconditionFailedError`` (best effort, as for ``replace_client``).
        """
        registration = self._known(client_id)
        try:
            if version is not None:
                current = self._read_existing(registration)
                if version_of(current) != version:
                    raise PreconditionFailedError(
                        f"client {client_id} changed in the registry since it was read "
                        "(version mismatch); plan again", status=412,
                    ) from None
            self._management("DELETE", registration, what=f"deleting client {client_id}")
        except NotFoundError:
            # Gone already (a server that answers 404 rather than RFC 7592's 401).
            self.state.remove(client_id)
            raise
        self.state.remove(client_id)
        logger.info("deleted %s", client_id)

    def rotate_secret(self, client_id: str) -> Secret:
        """Not possible: RFC 7592 has no secret rotation, and oidc-provider keeps the
        secret on update. Raises ``RegistryError`` saying so."""
        raise RegistryError(
            f"cannot rotate the secret of {client_id}: a standard (RFC 7592) registry has no "
            "secret rotation; rotate it on the server, or delete the client and let apply "
            "create it again (it gets a new registry client_id)",
            status=405,  # a definite refusal: nothing was rotated (the journal forgets it)
        ) from None

    def unsupported(self, client: Client) -> list[str]:
        """What ``client`` asks for that the server's discovery document does not offer.

        Grant types against ``grant_types_supported`` (RFC 8414's default when absent),
        the response types they need against ``response_types_supported``, and scopes
        against ``scopes_supported`` when published. One message per value, naming the
        client.
        """
        caps = self.capabilities()
        problems: list[str] = []
        for grant in client.grant_types:
            if grant not in caps.grant_types:
                problems.append(
                    f"client {client.client_id}: the registry does not support grant type "
                    f"'{grant}' (it supports {_listing(caps.grant_types)})"
                )
        for grant in client.grant_types:
            needed = RESPONSE_TYPE_OF.get(grant)
            if needed and grant in caps.grant_types and needed not in caps.response_types:
                problems.append(
                    f"client {client.client_id}: grant type '{grant}' needs response type "
                    f"'{needed}', which the registry does not support (it supports "
                    f"{_listing(caps.response_types)})"
                )
        if caps.scopes is not None:
            for scope in client.scopes:
                if scope not in caps.scopes:
                    problems.append(
                        f"client {client.client_id}: the registry does not support scope "
                        f"'{scope}' (it supports {_listing(caps.scopes)})"
                    )
        return problems

    def adopt(self, client_id: str, registration_client_uri: str, token: Secret) -> RemoteClient:
        """Record an existing registration in the state file, after reading it with ``token``.

        For a lost state file, a registration made by hand, or a token rotated elsewhere.
        When the registration has ``oauth2_sync_client_id`` it must equal ``client_id``
        (``UsageError`` otherwise); an existing entry for ``client_id`` is replaced.
        ``RegistryError`` when the server refuses the token.
        """
        check_transport(registration_client_uri, "the registration client URI")
        what = f"adopting {client_id}"
        response = self._request(
            "GET", registration_client_uri, what=what,
            headers={"Authorization": f"Bearer {token.reveal()}"},
        )
        if response.status_code in (401, 403, 404):
            raise RegistryError(
                f"{what}: the registry refused the registration access token for "
                f"{registration_client_uri} ({response.status_code})",
                status=response.status_code,
            ) from None
        if response.status_code != 200:
            raise self._error(response, what)
        metadata = self._json(response, what)
        stored = metadata.get(X_CLIENT_ID)
        if isinstance(stored, str) and stored != client_id:
            raise UsageError(
                f"the registration at {registration_client_uri} belongs to {stored!r} "
                f"({X_CLIENT_ID}), not {client_id!r}"
            ) from None
        server_id = metadata.get("client_id")
        if not isinstance(server_id, str) or not server_id:
            raise RegistryError(f"{what}: the registry's answer has no client_id") from None
        if stored is None:
            logger.warning(
                "%s: the registration has no %s (not created by oauth2-sync); the next "
                "apply that updates it adds it", client_id, X_CLIENT_ID,
            )
        self.state.put(Registration(client_id, server_id, registration_client_uri, token))
        logger.info("adopted %s (registry client_id %s)", client_id, server_id)
        return self._remote(client_id, metadata)

    def close(self) -> None:
        """Close the HTTP session and release the state file's lock."""
        self._session.close()
        self.state.close()

    # --- capabilities ------------------------------------------------------------------

    def capabilities(self) -> Capabilities:
        """The server's discovery document, fetched once (RFC 8414, then OpenID Connect).

        The document is the first one, trying the issuer paths from the registration
        endpoint's folder up to the root, whose ``registration_endpoint`` is ours.
        """
        with self._capabilities_lock:
            if self._capabilities is None:
                self._capabilities = self._discover()
            return self._capabilities

    def _discover(self) -> Capabilities:
        parts = urlsplit(self.endpoint)
        segments = [s for s in parts.path.split("/") if s][:-1]
        tried: list[str] = []
        for n in range(len(segments), -1, -1):
            issuer_path = "".join(f"/{s}" for s in segments[:n])
            for path in (
                f"/.well-known/oauth-authorization-server{issuer_path}",
                f"{issuer_path}/.well-known/openid-configuration",
            ):
                url = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
                tried.append(url)
                doc = self._discovery_document(url)
                if doc is not None and doc.get("registration_endpoint") == self.endpoint:
                    return _capabilities(doc, url)
        raise RegistryError(
            f"no discovery document names {self.endpoint} as its registration_endpoint "
            f"(tried {', '.join(tried)})"
        ) from None

    def _discovery_document(self, url: str) -> dict[str, Any] | None:
        response = self._request("GET", url, what="reading the discovery document")
        if response.status_code != 200:
            return None
        try:
            doc = response.json()
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    # --- HTTP --------------------------------------------------------------------------

    def _request(
        self, method: str, url: str, *, what: str,
        body: Any = None, headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """One call within its deadline (``request_timeout`` and what is left of the
        command's). A registry unreachable for the whole retry budget (a POST: one whose
        connection never opened) opens the circuit: ``RegistryUnavailableError`` now and
        for every later call."""
        if self._circuit is not None:
            raise RegistryUnavailableError(f"{what}: not sent: {self._circuit}", status=0)
        left = self._deadline.remaining()
        if left <= 0:
            reason = (f"the command's deadline of {self._deadline.seconds:g} s passed "
                      "(registry.deadline)")
            raise self._open(f"{what}: not sent: {reason}", reason)
        cause: Literal["request", "command"] = (
            "request" if self._request_timeout <= left else "command"
        )
        try:
            # Not streamed: the body is read inside the deadline too.
            with transport.Deadline(min(self._request_timeout, left), cause) as deadline:
                response = self._session.request(
                    method, url, json=body, headers=dict(headers or {}),
                    timeout=self._timeout, allow_redirects=False,
                )
            if deadline.expired:
                raise requests.exceptions.ConnectionError("deadline passed")
        except requests.exceptions.RetryError:
            raise RegistryError(f"{what}: the registry kept failing ({url})") from None
        except requests.exceptions.RequestException as exc:
            # from None: the cause holds the request, whose headers carry a token.
            raise self._failure(method, url, what, exc) from None
        logger.debug("%s %s -> %d", method, url, response.status_code)
        return response

    def _failure(
        self, method: str, url: str, what: str, exc: requests.RequestException
    ) -> RegistryError:
        """The one-line error for a request that got no response (its URL is shown:
        registration URIs carry no secret)."""
        reason = transport.failure_reason(
            exc, urlsplit(url).netloc, timeouts=self._timeout, retries=self._retries,
            command_deadline=self._deadline.seconds,
            hint="check registry.url and that the server is running",
        )
        line = f"{what}: {reason} ({url})"
        sent = not isinstance(exc, (requests.exceptions.ConnectTimeout,
                                    requests.exceptions.SSLError)) and not transport.is_refused(exc)
        timed_out = (deadline := transport.last_deadline()) is not None and deadline.passed()
        if method == "POST" and sent and not timed_out:
            return RegistryError(line)  # one create whose outcome is unknown
        return self._open(line, reason)

    def _open(self, line: str, reason: str) -> RegistryUnavailableError:
        """Open the circuit (the first ``reason`` is kept) and return the error for ``line``."""
        if self._circuit is None:
            self._circuit = reason
        return RegistryUnavailableError(line, status=0)

    def _management(
        self, method: Literal["GET", "PUT", "DELETE"], registration: Registration, *,
        what: str, body: Any = None,
    ) -> requests.Response:
        """One RFC 7592 call; a 401 is an error whose message says how to recover."""
        token = registration.registration_access_token.reveal()
        response = self._request(
            method, registration.registration_client_uri, what=what, body=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code == 401:
            raise RegistryError(
                f"{what}: the registry refused the registration access token of "
                f"{registration.client_id} (registry client_id "
                f"{registration.server_client_id}): the client was deleted on the server, "
                "or its token was revoked or rotated elsewhere. If it still exists, run "
                f"`oauth2-sync adopt {registration.client_id} --registration-client-uri "
                f"{registration.registration_client_uri}` with its current token in "
                f"{REGISTRATION_ACCESS_TOKEN_ENV}; if it is gone, run "
                f"`oauth2-sync forget {registration.client_id}`", status=401,
            ) from None
        if response.status_code == 404:
            raise NotFoundError(
                f"{what}: the registry has no client {registration.server_client_id}",
                status=404,
            ) from None
        expected = 204 if method == "DELETE" else 200
        if response.status_code not in (expected, 200):
            raise self._error(response, what)
        return response

    def _read(self, registration: Registration) -> dict[str, Any] | None:
        try:
            response = self._management(
                "GET", registration, what=f"reading client {registration.client_id}"
            )
        except NotFoundError:
            return None
        return self._json(response, f"reading client {registration.client_id}")

    def _read_existing(self, registration: Registration) -> dict[str, Any]:
        metadata = self._read(registration)
        if metadata is None:
            raise NotFoundError(
                f"client {registration.client_id} no longer exists in the registry", status=404
            ) from None
        return metadata

    def _known(self, client_id: str) -> Registration:
        registration = self.state.get(client_id)
        if registration is None:
            raise NotFoundError(
                f"client {client_id} is not in the state file {self.state.path}", status=404
            ) from None
        return registration

    def _json(self, response: requests.Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RegistryError(
                f"{what}: the registry answered {response.status_code} without a JSON object",
                status=response.status_code,
            ) from None
        return body

    def _error(self, response: requests.Response, what: str) -> RegistryError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        detail = ""
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            detail = f": {body['error']}"
            if isinstance(body.get("error_description"), str):
                detail += f": {body['error_description']}"
        return RegistryError(f"{what}: the registry answered {status}{detail}", status=status)

    # --- registrations -------------------------------------------------------------------

    def _registration_from(self, client_id: str, body: Mapping[str, Any]) -> Registration:
        server_id = body.get("client_id")
        uri = body.get("registration_client_uri")
        token = body.get("registration_access_token")
        if not (isinstance(server_id, str) and isinstance(uri, str) and isinstance(token, str)):
            raise RegistryError(
                f"creating client {client_id}: the registry returned no client_id, "
                "registration_client_uri or registration_access_token: it does not support "
                "RFC 7592 management (oidc-provider: features.registrationManagement)"
            ) from None
        check_transport(uri, "the registration client URI")
        return Registration(client_id, server_id, uri, Secret(token))

    def _record_rotation(self, registration: Registration, returned: Mapping[str, Any]) -> None:
        token = returned.get("registration_access_token")
        uri = returned.get("registration_client_uri", registration.registration_client_uri)
        if isinstance(token, str) and token and (
            token != registration.registration_access_token.reveal()
            or uri != registration.registration_client_uri
        ):
            check_transport(str(uri), "the registration client URI")
            self.state.put(Registration(
                registration.client_id, registration.server_client_id, str(uri), Secret(token),
            ))
            logger.info("recorded the rotated registration access token of %s",
                        registration.client_id)

    def _undo_create(self, registration: Registration) -> None:
        try:
            self._management("DELETE", registration,
                             what=f"deleting client {registration.client_id} again")
        except RegistryError as exc:
            # Kept in the state so that a later run can still reach (and fix) it.
            logger.error("%s", exc)
            return
        self.state.remove(registration.client_id)

    def _remote(self, client_id: str, metadata: Mapping[str, Any]) -> RemoteClient:
        stored = metadata.get(X_CLIENT_ID)
        if isinstance(stored, str) and stored != client_id:
            logger.warning(
                "%s: the registry's %s says %r; the state file wins", client_id, X_CLIENT_ID,
                stored,
            )
        server_id = metadata.get("client_id")
        return RemoteClient(
            from_metadata(client_id, metadata, self._partners), version_of(metadata),
            registry_client_id=server_id if isinstance(server_id, str) and server_id else None,
        )

    def _refuse_unsupported(self, client: Client) -> None:
        problems = self.unsupported(client)
        if problems:
            raise RegistryError("; ".join(problems)) from None


def _capabilities(doc: Mapping[str, Any], source: str) -> Capabilities:
    def strings(key: str) -> frozenset[str] | None:
        value = doc.get(key)
        if isinstance(value, list):
            return frozenset(v for v in value if isinstance(v, str))
        return None

    # Response types are compared whole: "code id_token" does not offer "token" on its own.
    return Capabilities(
        grant_types=strings("grant_types_supported") or frozenset(_DEFAULT_GRANTS),
        response_types=strings("response_types_supported") or frozenset(),
        scopes=strings("scopes_supported"),
        source=source,
    )


def _listing(values: Iterable[str]) -> str:
    return ", ".join(sorted(values)) or "nothing"


# --- adopt and forget: rebuilding the state ------------------------------------------------


def adopt(
    settings: Settings, client_id: str, registration_client_uri: str, token: Secret
) -> RemoteClient:
    """Open the settings' rfc7592 registry and ``Rfc7592Registry.adopt`` one registration."""
    _require_rfc7592(settings, "adopt")
    with Rfc7592Registry.from_settings(settings) as registry:
        assert isinstance(registry, Rfc7592Registry)
        return registry.adopt(client_id, registration_client_uri, token)


def forget(settings: Settings, client_id: str) -> bool:
    """Remove a client's registration from the state file without touching the server.

    For a client deleted on the server (or lost in a restart): the next apply creates it
    again. ``False`` when the state did not know it.
    """
    _require_rfc7592(settings, "forget")
    state_file = settings.registry.state_file
    if state_file is None:
        raise UsageError("an rfc7592 registry needs registry.state_file") from None
    with StateFile(state_file, settings.registry.url, settings.root) as state:
        return state.remove(client_id)


def _require_rfc7592(settings: Settings, command: str) -> None:
    if not settings.registry.url.startswith(SCHEME_PREFIX):
        raise UsageError(
            f"{command} works with rfc7592+ registries only, not {settings.registry.url}"
        ) from None
