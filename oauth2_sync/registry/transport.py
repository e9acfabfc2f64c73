"""The transport edge shared by the HTTP adapters: URL checks, path segments,
deadlines and the wording of transport failures.

- ``url_problem`` is the one check of every URL a credential is sent to. It judges the
  host urllib3 will really connect to (``urllib3.util.parse_url``), and refuses URLs
  that parsers read differently (``http://evil.example\\@127.0.0.1/`` is loopback to
  ``urlsplit`` but ``evil.example`` to urllib3): backslashes, user info, whitespace or
  control characters, a missing host.
- ``segment`` encodes one path segment so that no value can address another route
  (``.`` and ``..`` become ``%2E`` and ``%2E%2E``).
- ``check_url`` refuses such a URL with the adapter's wording (``Refusals``).
- ``Deadline`` and the watchdog bound a whole request (headers and body, every retry):
  a socket timeout only bounds each ``recv``, so a response trickling a byte a second
  would never end. When the deadline passes, the watchdog shuts the request's sockets.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import socket
import threading
import time
from typing import Any, Final, Literal, Protocol

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import LocationParseError

from oauth2_sync.errors import UsageError
from oauth2_sync.records import NamedTuple
from oauth2_sync.urls import is_loopback

logger = logging.getLogger(__name__)

UrlProblem = Literal["ambiguous", "plain-http", "scheme"]

REFUSED_ATTEMPTS: Final = 3
"""Attempts at a connection that is refused: nothing listens, and waiting rarely helps
(a restarting server is up again within a second or two)."""

_local = threading.local()


class ResponseLike(Protocol):
    """What the wording reads of an answer: ``requests.Response`` or a body read whole."""

    @property
    def reason(self) -> str:
        """The status line's reason phrase."""

    def json(self) -> object:
        """The body as JSON (``ValueError`` when it is not)."""


# --- URLs --------------------------------------------------------------------------------


def url_problem(url: str) -> tuple[UrlProblem, str] | None:
    """Why ``url`` must not carry a credential, or ``None`` when it may.

    ``("ambiguous", reason)`` for a URL that parsers may read differently,
    ``("plain-http", host)`` for http to a host that is not loopback, and
    ``("scheme", scheme)`` for anything but http and https. The host judged is the one
    urllib3 connects to.
    """
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return "ambiguous", "it holds whitespace or control characters"
    if "\\" in url:
        return "ambiguous", "it holds a backslash"
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in ("http", "https"):
        return "scheme", scheme
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in authority:
        return "ambiguous", "it holds user info (credentials belong in registry.auth)"
    try:
        parsed = urllib3.util.parse_url(url)
    except LocationParseError:
        return "ambiguous", "urllib3 cannot parse it"
    host = parsed.host or ""
    if not host:
        return "ambiguous", "it has no host"
    # Both parsers must agree on the host, or the check below judges the wrong one.
    from urllib.parse import urlsplit

    try:
        other = urlsplit(url).hostname or ""
    except ValueError:
        return "ambiguous", "Python cannot parse it"
    if other.strip("[]").lower() != host.strip("[]").lower():
        return "ambiguous", "parsers disagree on its host"
    if scheme.lower() == "http" and not is_loopback(host):
        return "plain-http", host
    return None


class Refusals(NamedTuple):
    """How an adapter words the refusal of each ``UrlProblem``: ``str.format``
    templates of ``url``, ``what`` (the setting or URI checked) and ``detail`` (the
    problem's reason or host)."""

    ambiguous: str
    plain_http: str
    scheme: str


def check_url(url: str, what: str, refusals: Refusals) -> None:
    """``UsageError`` unless ``url`` may carry a credential (``url_problem``): the one
    transport check of every adapter, worded by ``refusals``."""
    problem = url_problem(url)
    if problem is None:
        return
    kind, detail = problem
    template = {
        "ambiguous": refusals.ambiguous, "plain-http": refusals.plain_http,
        "scheme": refusals.scheme,
    }[kind]
    raise UsageError(template.format(url=url, what=what, detail=detail))


def segment(value: str) -> str:
    """``value`` as one path segment: everything but unreserved characters encoded, and
    the dot segments ``.`` and ``..`` too (they would name the parent route)."""
    from urllib.parse import quote

    encoded = quote(value, safe="")
    if encoded in (".", ".."):
        return "%2E" * len(encoded)
    return encoded


def send_as_built(session: requests.Session, method: str, url: str, **options: Any) -> (
    requests.Response
):
    """``session.request`` without requests' re-quoting of the path.

    requests decodes ``%2E`` back to ``.`` when it prepares a URL, which turns an encoded
    client ID ``..`` into a dot segment; ``url`` is built from checked parts and encoded
    segments, so it is sent exactly as built.
    """
    send_keys = ("timeout", "allow_redirects", "stream")
    send = {k: options.pop(k) for k in send_keys if k in options}
    request = requests.Request(method, url, **options)
    prepared = session.prepare_request(request)
    if prepared.url == url.replace("%2E", "."):
        # The only change requests made was decoding our encoded dots: undo it.
        prepared.url = url
    settings: dict[str, Any] = dict(session.merge_environment_settings(
        prepared.url, {}, send.get("stream"), None, None
    ))
    settings.update(send)
    return session.send(prepared, **settings)


# --- deadlines ---------------------------------------------------------------------------


class Deadline:
    """When one request (or the command) must be over, and the sockets it uses."""

    def __init__(self, seconds: float, cause: Literal["request", "command"]) -> None:
        self.seconds = seconds
        self.cause: Literal["request", "command"] = cause
        self.at = time.monotonic() + seconds
        self.expired = False
        self.done = False
        self._lock = threading.Lock()
        self._connections: list[HTTPConnection] = []

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - time.monotonic()

    def passed(self) -> bool:
        """Whether the deadline passed (the watchdog fired, or the clock says so)."""
        return self.expired or self.remaining() <= 0

    def watch(self, connection: HTTPConnection) -> None:
        """Shut ``connection`` down when the deadline passes (at once if it has)."""
        with self._lock:
            self._connections.append(connection)
            expired = self.expired
        if expired:
            _shut(connection)

    def expire(self) -> None:
        """Called by the watchdog: shut every socket of the request."""
        with self._lock:
            self.expired = True
            connections = list(self._connections)
        for connection in connections:
            _shut(connection)

    def __enter__(self) -> Deadline:
        self._outer: Deadline | None = getattr(_local, "deadline", None)
        _local.deadline = self
        _WATCHDOG.add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.done = True
        with self._lock:
            # The watchdog keeps a finished deadline until its time: not its connections.
            self._connections.clear()
        _local.deadline = self._outer
        _local.last = self


def current_deadline() -> Deadline | None:
    """The deadline of the request this thread is sending, if any."""
    return getattr(_local, "deadline", None)


def last_deadline() -> Deadline | None:
    """The deadline of the request this thread sent last (for the wording of its error)."""
    return getattr(_local, "last", None)


def _shut(connection: HTTPConnection) -> None:
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    with contextlib.suppress(OSError):  # closed already: nothing left to interrupt
        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread that expires deadlines in time order."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, deadline: Deadline) -> None:
        with self._cond:
            earliest = not self._heap or deadline.at < self._heap[0][0]
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="oauth2-sync-deadlines", daemon=True
                )
                self._thread.start()
            if earliest:  # otherwise the watchdog wakes in time already
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    _, _, deadline = heapq.heappop(self._heap)
                    if not deadline.done:
                        deadline.expire()
                self._cond.wait(self._heap[0][0] - now if self._heap else None)


_WATCHDOG: Final = _Watchdog()


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline = current_deadline()
        if deadline is not None:
            deadline.watch(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline = current_deadline()
        if deadline is not None:
            deadline.watch(self)
        super().request(*args, **kwargs)


# ``ConnectionCls`` is urllib3's documented way to choose a pool's connections; its stubs
# declare it a mutable attribute, hence the override note.
class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection  # type: ignore[mutable-override]


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection  # type: ignore[mutable-override]


class WatchedAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections the current ``Deadline`` can shut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool, "https": _WatchedHTTPSPool,
        }


# --- wording -----------------------------------------------------------------------------


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, its causes and contexts, and the reasons of urllib3's ``MaxRetryError``."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 32:
        item = todo.pop()
        if any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [a for a in getattr(item, "args", ()) if isinstance(a, BaseException)]
        for nested in (getattr(item, "reason", None), item.__cause__, item.__context__):
            if isinstance(nested, BaseException):
                todo.append(nested)
    return seen


def is_refused(exc: BaseException) -> bool:
    """Whether nothing listened: the connection was refused."""
    return any(
        isinstance(e, ConnectionRefusedError) or "Connection refused" in str(e)
        for e in _chain(exc)
    )


def speaks_plain_http(exc: BaseException) -> bool:
    """Whether a TLS handshake failed because the server answered in plain http."""
    markers = ("WRONG_VERSION_NUMBER", "wrong version number", "record layer failure",
               "packet length too long", "http request")
    return any(m in str(e) for e in _chain(exc) for m in markers)


def describe(exc: BaseException | None) -> str:
    """What went wrong with a connection, in a few words."""
    if exc is None:
        return "no response"
    chain = _chain(exc)
    if is_refused(exc):
        return "connection refused"
    if any(isinstance(e, urllib3.exceptions.NameResolutionError) for e in chain):
        return "host name not found"
    if any(isinstance(e, urllib3.exceptions.ReadTimeoutError) for e in chain):
        return "no response in time"
    if any(isinstance(e, urllib3.exceptions.ConnectTimeoutError) for e in chain):
        return "no connection in time"
    if any(isinstance(e, ConnectionResetError) or "reset" in str(e).lower() for e in chain):
        return "connection reset after the request was sent"
    if any("Remote end closed" in str(e) or "aborted" in str(e).lower() for e in chain):
        return "connection closed after the request was sent"
    return "connection failed"


def failure_reason(
    exc: requests.RequestException,
    host: str,
    *,
    timeouts: tuple[float, float],
    retries: int,
    command_deadline: float,
    hint: str,
) -> str:
    """What happened to a request that got no response, and what to check: "no response
    from HOST within N s" (the connection was made) apart from "cannot reach HOST:
    connection refused (N attempts); HINT" (it was not)."""
    deadline = last_deadline()
    if deadline is not None and deadline.passed():
        if deadline.cause == "request":
            return f"no response from {host} within {deadline.seconds:g} s (registry.request_timeout)"
        return f"the command's deadline of {command_deadline:g} s passed (registry.deadline)"
    if isinstance(exc, requests.exceptions.SSLError):
        if speaks_plain_http(exc):
            return (
                f"cannot reach {host} over TLS: the server speaks plain http at this "
                "address; use http:// for loopback or check the port"
            )
        return f"cannot reach {host}: TLS verification failed"
    attempts = min(retries + 1, REFUSED_ATTEMPTS)
    tries = f"{attempts} attempt{'' if attempts == 1 else 's'}"
    return {
        "connection refused": f"cannot reach {host}: connection refused ({tries}); {hint}",
        "no connection in time":
            f"cannot reach {host}: no connection within {timeouts[0]:g} s; {hint}",
        "host name not found": f"cannot reach {host}: host name not found; check registry.url",
        "no response in time": f"no response from {host} within {timeouts[1]:g} s",
        "connection reset after the request was sent":
            f"connection to {host} reset after the request was sent",
        "connection closed after the request was sent":
            f"connection to {host} closed after the request was sent",
    }.get(describe(exc), f"cannot reach {host}: {describe(exc)}")


def error_detail(response: ResponseLike, limit: int) -> tuple[str, dict[str, str]]:
    """The registry's message of an error response on one line (at most ``limit``
    characters), and its per-field messages."""
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
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text, fields
