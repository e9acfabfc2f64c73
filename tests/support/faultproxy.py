"""A logging, fault-injecting HTTP proxy on 127.0.0.1, in front of a registry server.

Shared by the tests (and importable by path from ``benchmarks/``). It relays every
request to the upstream server and logs it, and it can make requests fail:

- targeted: ``inject(method, path_prefix, fault, times)`` makes the next matching
  requests meet ``fault``; ``respond(...)`` answers them with a canned response (a
  malformed or oversized body, say); ``before_forward(...)`` runs a hook just before a
  matching request is relayed (an out-of-band edit racing an apply);
- at random: ``randomize(rate, seed=...)`` gives every request under the chosen paths
  a fault with probability ``rate``, drawn from a seeded generator so a failing run can
  be repeated.

Faults:

=========  ==============================================================================
``500``     answered by the proxy: 500 (likewise ``502``, ``503``, ``504``); never relayed
``429``     answered by the proxy with ``Retry-After`` (``retry_after`` seconds)
``reset``   the connection is closed before the request is relayed: it never arrived
``lost``    relayed and carried out by the server, then the connection is closed before
            the response is sent: the outcome is unknown to the client
``slow``    relayed after ``slow_seconds`` (a read timeout on the client's side)
``latency`` relayed after ``latency_seconds`` (added latency, well under any timeout)
=========  ==============================================================================

Every request is logged as an ``Exchange`` with the status the client saw (0: none)
and the status the upstream server answered (0: not relayed), so tests can tell what
the server really did from what the client was told. ``counts`` tallies the faults
injected by kind. Nothing in ``requests`` is mocked: this is a real server.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit

Fault = Literal["500", "502", "503", "504", "429", "reset", "lost", "slow", "latency"]
STATUS_FAULTS: frozenset[str] = frozenset({"500", "502", "503", "504", "429"})
RANDOM_FAULTS: tuple[Fault, ...] = ("500", "502", "503", "429", "reset", "lost", "latency")
"""The kinds ``randomize`` draws from by default (``slow`` would only test timeouts)."""
_HOP_BY_HOP = frozenset({"connection", "content-length", "server", "date", "keep-alive",
                         "transfer-encoding"})


@dataclass
class Exchange:
    """One request the proxy saw.

    ``status`` is what the client got (0: no response); ``upstream`` what the server
    answered (0: the request was not relayed); ``fault`` the fault injected, if any.
    """

    method: str
    path: str
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    upstream: int = 0
    fault: str | None = None
    response: bytes = b""

    @property
    def client_id(self) -> str | None:
        """The client a ``/v1/oauth2-clients/{id}`` request is about (for a create: the
        ``clientId`` of its body); ``None`` for other requests."""
        parts = urlsplit(self.path).path.split("/")
        if parts[1:3] != ["v1", "oauth2-clients"]:
            return None
        if len(parts) > 3 and parts[3]:
            return unquote(parts[3])
        if self.method == "POST" and self.body:
            try:
                value = json.loads(self.body).get("clientId")
            except (ValueError, AttributeError):
                return None
            return value if isinstance(value, str) else None
        return None


@dataclass
class Canned:
    """A response the proxy sends instead of relaying."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


Hook = Callable[[Exchange], None]
_Action = Fault | Canned | Hook


@dataclass
class FaultProxy:
    """The proxy's state: what to inject and what it saw. See the module docstring."""

    upstream: str
    server: ThreadingHTTPServer | None = None
    slow_seconds: float = 1.0
    latency_seconds: float = 0.01
    retry_after: int = 1
    log: list[Exchange] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _queued: list[tuple[str, str, _Action]] = field(default_factory=list)
    _rate: float = 0.0
    _kinds: tuple[Fault, ...] = RANDOM_FAULTS
    _paths: tuple[str, ...] = ("/",)
    _methods: frozenset[str] | None = None
    _random: random.Random = field(default_factory=random.Random)

    @property
    def base_url(self) -> str:
        """The API base URL through the proxy."""
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    # --- what to inject ---------------------------------------------------------------

    def inject(self, method: str, path: str, fault: Fault, times: int = 1) -> None:
        """The next ``times`` requests ``method path...`` (a path prefix) meet ``fault``."""
        with self.lock:
            self._queued.extend([(method, path, fault)] * times)

    def respond(
        self, method: str, path: str, status: int, body: bytes, *,
        headers: Mapping[str, str] | None = None, times: int = 1,
    ) -> None:
        """The next ``times`` requests ``method path...`` get this response instead."""
        canned = Canned(status, body, dict(headers or {"Content-Type": "application/json"}))
        with self.lock:
            self._queued.extend([(method, path, canned)] * times)

    def before_forward(self, method: str, path: str, hook: Hook, times: int = 1) -> None:
        """Run ``hook(exchange)`` just before the next matching request is relayed."""
        with self.lock:
            self._queued.extend([(method, path, hook)] * times)

    def randomize(
        self,
        rate: float,
        *,
        seed: int,
        kinds: Iterable[Fault] = RANDOM_FAULTS,
        paths: Iterable[str] = ("/",),
        methods: Iterable[str] | None = None,
    ) -> None:
        """From now on, each request under ``paths`` (prefixes) meets one of ``kinds``
        with probability ``rate`` (0 turns it off); ``seed`` makes the draws repeatable."""
        with self.lock:
            self._rate = rate
            self._kinds = tuple(kinds)
            self._paths = tuple(paths)
            self._methods = None if methods is None else frozenset(methods)
            self._random = random.Random(seed)

    # --- what it saw --------------------------------------------------------------------

    def calls(self, *, path: str = "/v1") -> list[tuple[str, int]]:
        """(method, status) of the logged requests under ``path``."""
        with self.lock:
            return [(e.method, e.status) for e in self.log if e.path.startswith(path)]

    def exchanges(self, *, path: str = "/v1") -> list[Exchange]:
        """The logged requests under ``path``, in the order they arrived."""
        with self.lock:
            return [e for e in self.log if e.path.startswith(path)]

    def reset_log(self) -> None:
        """Forget what was logged and counted (queued faults stay)."""
        with self.lock:
            self.log.clear()
            self.counts.clear()

    def take(self, method: str, path: str) -> _Action | None:
        """The action for a request: a queued one first, else a random draw."""
        with self.lock:
            for i, (m, p, action) in enumerate(self._queued):
                if m == method and path.startswith(p):
                    del self._queued[i]
                    return action
            if (
                self._rate > 0
                and any(path.startswith(p) for p in self._paths)
                and (self._methods is None or method in self._methods)
                and self._random.random() < self._rate
            ):
                return self._random.choice(self._kinds)
        return None

    # --- running --------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # without it every keep-alive request stalls ~40 ms
    proxy: ClassVar[FaultProxy]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._relay
        raise AttributeError(name)

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        proxy = self.proxy
        action = proxy.take(self.command, self.path)
        exchange = Exchange(
            self.command, self.path, 0, body, {k.lower(): v for k, v in self.headers.items()}
        )
        with proxy.lock:
            proxy.log.append(exchange)
        if isinstance(action, str):
            exchange.fault = action
            with proxy.lock:
                proxy.counts[action] += 1
        if isinstance(action, Canned):
            exchange.fault = "canned"
            self._answer(exchange, action.status, action.body, action.headers)
            return
        if action in STATUS_FAULTS:
            assert isinstance(action, str)
            status = int(action)
            payload = json.dumps({"error": "injected", "message": f"injected {action}"}).encode()
            headers = {"Content-Type": "application/json"}
            if status == 429:
                headers["Retry-After"] = str(proxy.retry_after)
            self._answer(exchange, status, payload, headers)
            return
        if action == "reset":
            self.close_connection = True
            return
        if action == "slow":
            time.sleep(proxy.slow_seconds)
        elif action == "latency":
            time.sleep(proxy.latency_seconds)
        elif callable(action):
            action(exchange)
        status, headers, payload = self._forward(body)
        exchange.upstream = status
        exchange.response = payload
        if action == "lost":
            self.close_connection = True
            return
        self._answer(exchange, status, payload, headers)

    def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        target = urlsplit(self.proxy.upstream)
        upstream = http.client.HTTPConnection(str(target.hostname), target.port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "connection", "content-length")}
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
            return response.status, kept, payload
        finally:
            upstream.close()

    def _answer(
        self, exchange: Exchange, status: int, payload: bytes, headers: Mapping[str, str]
    ) -> None:
        exchange.status = status
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and status != 204:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def start_proxy(upstream: str) -> FaultProxy:
    """A running ``FaultProxy`` in front of ``upstream`` (``scheme://host:port``)."""
    proxy = FaultProxy(upstream)
    handler = type("Handler", (_ProxyHandler,), {"proxy": proxy})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    proxy.server = server
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return proxy


def origin(base_url: str) -> str:
    """``http://127.0.0.1:PORT`` of an API base URL ending in ``/v1``."""
    return base_url.removesuffix("/").removesuffix("/v1")
