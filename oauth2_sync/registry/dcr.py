"""The HTTP side of the rfc7592 adapter: discovery, calls with their deadline and
circuit, and the wording of the server's refusals.

``DcrConnection`` is the base of ``Rfc7592Registry``: it sends each call through the
session of ``session.new_session`` with the rfc7592 ``retry_policy`` (urllib3 never
repeats a write the server may have carried out), refuses unsafe URLs with
``check_transport``, reads the server's discovery document once and reads a
registration not yet in the state with the token it was given (``adopt``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

import requests

from oauth2_sync.errors import NotFoundError, RegistryError, RegistryUnavailableError, UsageError
from oauth2_sync.registry import transport
from oauth2_sync.registry.capabilities import Capabilities, narrowed
from oauth2_sync.registry.compat import refused_token
from oauth2_sync.registry.metadata import capabilities_from
from oauth2_sync.registry.retry import RetryPolicy
from oauth2_sync.registry.session import new_session
from oauth2_sync.registry.state import Registration, StateFile
from oauth2_sync.secret import Secret

logger = logging.getLogger("oauth2_sync.registry.rfc7592")
"""The adapter's logger: its notices keep the name users know from ``-v``."""

REGISTRATION_ACCESS_TOKEN_ENV = "OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN"
"""Where ``adopt`` reads the registration access token of the client it adopts."""


def retry_policy(retries: int) -> RetryPolicy:
    """Retries that never repeat a write the server may have carried out.

    429 and 503 mean the request was not processed, so every method but POST may be
    retried; 502 and 504 may hide a completed write, so only GET is. Connection errors
    before the request was sent are retried for every method (urllib3's ``connect``).
    """
    return RetryPolicy(
        retries, unprocessed=frozenset({429, 503}), maybe_executed=frozenset({502, 504}),
        repeatable=frozenset({"GET"}), backoff_factor=0.5, backoff_max=30.0, jitter=0.25,
        other=None,
    )


REFUSALS: Final = transport.Refusals(
    # The URL itself is not shown: its user info may hold a password.
    ambiguous="refusing {what}: {detail}",
    plain_http="{what} {url} must use https (plain http only for a loopback host)",
    scheme="{what} {url} must use https (plain http only for a loopback host)",
)


def check_transport(url: str, what: str) -> None:
    """Refuse a URL that would carry a credential in clear text off this machine, or
    that parsers may read differently (``transport.check_url``, as the HTTP adapter).
    The registration endpoint (registry.url) holds no query or fragment."""
    if what == "the registration endpoint" and ("?" in url or "#" in url):
        raise UsageError(f"refusing {what}: it holds a query or fragment ('?' or '#')")
    transport.check_url(url, what, REFUSALS)


class RefusedError(RegistryError):
    """The registry refused a registration access token: the client was deleted on the
    server, or its token was revoked or rotated elsewhere (RFC 7592 §2: 401; some
    servers say 403, or 400 ``access_denied`` as Canaille does)."""


def recovery(registration: Registration) -> str:
    """How to get a client back in reach: ``adopt`` it with its current token, or
    ``forget`` it when it is gone (the next apply creates it again)."""
    return (
        f"If it still exists, run `oauth2-sync adopt {registration.client_id} "
        f"--registration-client-uri {registration.registration_client_uri}` with its "
        f"current token in {REGISTRATION_ACCESS_TOKEN_ENV}; if it is gone, run "
        f"`oauth2-sync forget {registration.client_id}`"
    )


class DcrConnection:
    """The calls of one rfc7592 adapter to its registration ``endpoint``, with the
    registrations of ``state``."""

    def __init__(
        self, endpoint: str, state: StateFile, *, timeout: tuple[float, float],
        request_timeout: float, retries: int, deadline: float, declared: Capabilities,
        ca_bundle: str | None,
    ) -> None:
        check_transport(endpoint, "the registration endpoint")
        self.endpoint = endpoint
        self.state = state
        self._timeout = timeout
        self._request_timeout = request_timeout
        self._retries = retries
        self._deadline = transport.Deadline(deadline, "command")
        self._circuit: str | None = None
        self._capabilities: Capabilities | None = None
        self._declared = declared
        self._capabilities_lock = threading.Lock()
        self._session = new_session(
            retry_policy(retries), pool_size=16, ca_bundle=ca_bundle,
            headers={"Accept": "application/json"},
        )

    # --- capabilities ------------------------------------------------------------------

    def capabilities(self) -> Capabilities:
        """What the server publishes in its discovery document (fetched once: RFC 8414,
        then OpenID Connect), narrowed by what the settings declare (``registry.capabilities``).

        The document is the first one, trying the issuer paths from the registration
        endpoint's folder up to the root, whose ``registration_endpoint`` is ours.
        """
        with self._capabilities_lock:
            if self._capabilities is None:
                self._capabilities = narrowed(self._discover(), self._declared)
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
                    return capabilities_from(doc, url)
        raise RegistryError(
            f"no discovery document names {self.endpoint} as its registration_endpoint "
            f"(tried {', '.join(tried)})"
        )

    def _discovery_document(self, url: str) -> dict[str, Any] | None:
        response = self._request("GET", url, what="reading the discovery document")
        if response.status_code != 200:
            return None
        try:
            doc = response.json()
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    # --- registrations -----------------------------------------------------------------

    def _registration_from(self, client_id: str, body: Mapping[str, Any]) -> Registration:
        server_id = body.get("client_id")
        uri = body.get("registration_client_uri")
        token = body.get("registration_access_token")
        if not (isinstance(server_id, str) and isinstance(uri, str) and isinstance(token, str)):
            raise RegistryError(
                f"creating client {client_id}: the registry returned no client_id, "
                "registration_client_uri or registration_access_token: it does not support "
                "RFC 7592 management (oidc-provider: features.registrationManagement)"
            )
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
            # from None: the cause holds the request, whose headers carry a token.
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
        """One RFC 7592 call; a refused token (``compat.refused_token``: 401, 403, or a 400
        such as Canaille's ``access_denied``) is a ``RefusedError`` whose message says how to
        recover, a 404 a ``NotFoundError``."""
        token = registration.registration_access_token.reveal()
        response = self._request(
            method, registration.registration_client_uri, what=what, body=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        if refused_token(response):
            raise RefusedError(
                f"{what}: the registry refused the registration access token of "
                f"{registration.client_id} (registry client_id "
                f"{registration.server_client_id}): the client was deleted on the server, "
                "or its token was revoked or rotated elsewhere. " + recovery(registration),
                status=response.status_code,
            )
        if response.status_code == 404:
            raise NotFoundError(
                f"{what}: the registry has no client {registration.server_client_id}",
                status=404,
            )
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

    def _read_with(self, uri: str, token: Secret, what: str) -> dict[str, Any]:
        """A registration not yet in the state, read at ``uri`` with ``token`` (``adopt``):
        a refused token is a ``RegistryError`` naming the URI."""
        check_transport(uri, "the registration client URI")
        response = self._request(
            "GET", uri, what=what, headers={"Authorization": f"Bearer {token.reveal()}"},
        )
        if response.status_code == 404 or refused_token(response):
            raise RegistryError(
                f"{what}: the registry refused the registration access token for "
                f"{uri} ({response.status_code})",
                status=response.status_code,
            )
        if response.status_code != 200:
            raise self._error(response, what)
        return self._json(response, what)

    def _read_existing(self, registration: Registration) -> dict[str, Any]:
        metadata = self._read(registration)
        if metadata is None:
            raise NotFoundError(
                f"client {registration.client_id} no longer exists in the registry", status=404
            )
        return metadata

    def _known(self, client_id: str) -> Registration:
        registration = self.state.get(client_id)
        if registration is None:
            raise NotFoundError(
                f"client {client_id} is not in the state file {self.state.path}", status=404
            )
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
            )
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
