"""The registry API's HTTP calls: what ``HttpRegistry`` sends and how it reads answers.

``ApiConnection`` holds the transport of one adapter (the session of
``session.new_session``, the ``RetryPolicy``, the ``TokenSource``, the command's
deadline and the circuit) and sends each call: with a bearer token renewed once on
``401 invalid_token``, within its deadline, the body read whole but bounded, errors
worded on one line. A POST whose repetition is harmless (a token request, a secret
rotation) is repeated by ``_repeated``; one that may create something is not: the
adapter decides. A registry unreachable for a whole retry budget opens the circuit:
every later call fails at once, saying why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError

from oauth2_sync.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    RegistryError,
    RegistryUnavailableError,
    UsageError,
)
from oauth2_sync.registry import transport
from oauth2_sync.registry.retry import RetryPolicy, parse_retry_after
from oauth2_sync.registry.session import Answer, TooLargeError, read_bounded
from oauth2_sync.registry.tokens import AuthorizationHeader, TokenSource
from oauth2_sync.registry.transport import Deadline

logger = logging.getLogger("oauth2_sync.registry.http")
"""The adapter's logger: its notices keep the name users know from ``-v``."""

LOST_STATUSES: Final = frozenset({500, 502, 503, 504})
"""Answers after which a POST may or may not have been carried out."""
UNREACHABLE_HINT: Final = "check registry.url and that the registry is running"
BASE_PATH_HINT: Final = (
    "the base path looks wrong: registry.url must end in the API's base, e.g. /v1"
)
_MESSAGE_MAX: Final = 300


class ApiConnection:
    """The calls of one HTTP adapter; ``HttpRegistry`` sets these attributes."""

    url: str
    token_url: str
    credential_names: tuple[str, ...]
    timeout: tuple[float, float]
    retries: int
    request_timeout: float
    max_response_bytes: int
    deadline: Deadline
    policy: RetryPolicy
    session: requests.Session
    tokens: TokenSource
    _circuit: str | None
    _base_path: str


    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        ok: Iterable[int] = (200,),
    ) -> Answer:
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
    ) -> Answer:
        """Send with a bearer token; on 401 invalid_token renew it once and resend."""
        for attempt in (0, 1):
            token = self.tokens.bearer()
            try:
                response = self._request(
                    method, self.url + path, self._shown(path), json=json, headers=headers,
                    auth=AuthorizationHeader(f"Bearer {token.reveal()}"),
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
                self.tokens.renew(token)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _request(self, method: str, url: str, shown: str, **options: Any) -> Answer:
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
            return self._exchange(method, url, shown, deadline, **options)

    def _exchange(
        self, method: str, url: str, shown: str, deadline: Deadline, **options: Any
    ) -> Answer:
        response = transport.send_as_built(
            self.session, method, url, timeout=self.timeout, allow_redirects=False,
            stream=True, **options,
        )
        try:
            answer = read_bounded(response, self.max_response_bytes)
        except TooLargeError as exc:
            # Status 0: the response was not usable, whatever the registry did.
            raise RegistryError(
                f"{method} {shown}: {exc.status_code} {exc.reason}: the response is larger "
                f"than {self.max_response_bytes // (1024 * 1024)} MiB; refusing to read it",
                status=0,
            ) from exc
        if deadline.expired:
            # The watchdog shut the socket: what was read may look complete (headers cut
            # at a line end, a body without a length), but it is not.
            response.close()
            raise requests.exceptions.ConnectionError(f"{method} {shown}: deadline passed")
        return answer

    def _repeated(
        self, once: Callable[[], Answer], unknown: Callable[[RegistryError], bool]
    ) -> Answer:
        """A POST whose repetition is harmless (a token request, a secret rotation),
        repeated like a GET: after an error ``unknown`` says left the outcome unknown, or
        an answer the policy repeats. The last answer is returned, whatever it is."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                answer = once()
            except RegistryError as exc:
                if last or not unknown(exc):
                    raise
                self._sleep(attempt, None)
                continue
            if answer.status_code in self.policy.statuses and not last:
                self._sleep(attempt, answer)
                continue
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, attempt: int, answer: Answer | None) -> None:
        after = parse_retry_after(answer.headers.get("Retry-After")) if answer else None
        delay = self.policy.delay(attempt, after)
        if delay >= self.deadline.remaining():
            reason = (
                f"waiting {delay:.0f} s to retry would pass the command's deadline of "
                f"{self.deadline.seconds:g} s (registry.deadline)"
            )
            raise self._open(reason, reason)
        logger.info("waiting %.2f s before retrying", delay)
        time.sleep(delay)

    # --- tokens ------------------------------------------------------------------

    def _token(self, form: Mapping[str, str], auth: AuthorizationHeader) -> object:
        """``TokenSource``'s fetch: one token request, repeated like a GET; the body of
        its 200 answer. Still no answer after the last attempt opens the circuit."""
        shown = urlsplit(self.token_url).path
        try:
            answer = self._repeated(
                lambda: self._token_once(form, auth, shown), _no_response
            )
        except _NoResponseError as exc:
            # from None: the cause is this very line, already said.
            raise self._open(str(exc), exc.reason) from None
        if answer.status_code != 200:
            raise self._error("POST", shown, answer, full=True)
        return self._json(answer, "POST", shown, full=True)

    def _token_once(
        self, form: Mapping[str, str], auth: AuthorizationHeader, shown: str
    ) -> Answer:
        try:
            return self._request("POST", self.token_url, shown, data=dict(form), auth=auth)
        except requests.RequestException as exc:
            # from None: the cause holds the request, whose headers carry the credential.
            if _never_sent(exc) or _timed_out(exc):
                raise self._unavailable("POST", shown, exc, full=True) from None
            raise self._transport_error("POST", shown, exc, full=True) from None

    def _json(
        self, response: Answer, method: str, path: str, *, full: bool = False
    ) -> Any:
        try:
            return response.json()
        except (ValueError, RecursionError):  # RecursionError: [[[[...]]]] nested too deep
            shown = path if full else self._shown(path)
            # from None: the cause quotes the body, which may hold a client secret.
            raise RegistryError(
                f"{method} {shown}: {response.status_code} {response.reason}: "
                "the response is not JSON",
                status=response.status_code,
            ) from None

    def _shown(self, path: str) -> str:
        return self._base_path + path

    def _error(
        self, method: str, path: str, response: Answer, *, full: bool = False
    ) -> RegistryError:
        """One line: method, path, status and the registry's message (and fields)."""
        status = response.status_code
        message, fields = transport.error_detail(response, _MESSAGE_MAX)
        shown = path if full else self._shown(path)
        line = f"{method} {shown}: {status} {response.reason}: {message}"
        cls: type[RegistryError] = {
            404: NotFoundError, 409: ConflictError, 412: PreconditionFailedError
        }.get(status, RegistryError)
        if status == 404 and not no_such_client(response):
            # Not the registry's "no such client": an unknown route, so a wrong base path
            # (or a client ID that addressed another route) - never "already deleted".
            cls, line = RegistryError, f"{line}; {BASE_PATH_HINT}"
        elif status == 401:
            line += f"; check {' and '.join(self.credential_names)} (named in registry.auth)"
        return cls(line, status=status, fields=fields)

    def _transport_error(
        self, method: str, path: str, exc: requests.RequestException, *, full: bool = False
    ) -> _NoResponseError:
        """One line: what was sent, to which host, what happened and what to check."""
        shown = path if full else self._shown(path)
        reason = self._reason(exc)
        return _NoResponseError(f"{method} {shown}: {reason}", reason)

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


class _NoResponseError(RegistryError):
    """A request was sent and no answer came: whether the registry acted is unknown."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message, status=0)
        self.reason = reason


def outcome_unknown(exc: RegistryError) -> bool:
    """Whether a POST that failed with ``exc`` may or may not have been carried out
    (no usable answer, status 0), and the registry is still worth asking."""
    return exc.status == 0 and not isinstance(exc, RegistryUnavailableError)


def _no_response(exc: RegistryError) -> bool:
    return isinstance(exc, _NoResponseError)


def _never_sent(exc: requests.RequestException) -> bool:
    # requests wraps urllib3's MaxRetryError; a connect failure (refused, connect
    # timeout) means the request never left this machine.
    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)):
        return True  # no connection, or no TLS session: no request was sent
    return any(isinstance(getattr(a, "reason", None), ConnectTimeoutError) for a in exc.args)


def client_path(client_id: str) -> str:
    return f"/oauth2-clients/{transport.segment(client_id)}"


def _timed_out(exc: requests.RequestException) -> bool:
    """Whether the request's deadline cut it short (the budget is spent)."""
    deadline = transport.last_deadline()
    return deadline is not None and deadline.passed()


def no_such_client(response: Answer) -> bool:
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


def _invalid_token(response: Answer) -> bool:
    if response.status_code != 401:
        return False
    challenge = response.headers.get("WWW-Authenticate", "")
    return "invalid_token" in challenge or not challenge


def default_token_url(url: str) -> str:
    """The registry URL without its trailing ``/v1``, plus ``/oauth/token``."""
    base = url.rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    return f"{base}/oauth/token"


REFUSALS: Final = transport.Refusals(
    ambiguous="refusing {what}: {detail}; use https://HOST/.../v1",
    plain_http=(
        "refusing plain http to {detail}: use https (http is allowed only for "
        "loopback addresses)"
    ),
    scheme="unsupported registry URL {url!r}: use https://HOST/.../v1",
)


def check_transport(url: str, what: str = "registry.url") -> None:
    """``UsageError`` unless ``url`` is https, or http to a loopback host, as urllib3
    will connect to it; URLs that parsers may read differently are refused
    (``transport.check_url``), and so is a registry URL with a query or fragment."""
    if what == "registry.url" and ("?" in url or "#" in url):
        raise UsageError(
            f"refusing {what}: it holds a query or fragment ('?' or '#'); use https://HOST/.../v1"
        )
    transport.check_url(url, what, REFUSALS)
