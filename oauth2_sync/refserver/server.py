"""The reference registry server: ``RegistryApp`` over HTTP (``registry serve``).

Standard library only: a ``ThreadingHTTPServer`` (one thread per connection, HTTP/1.1
keep-alive, Nagle off so keep-alive requests do not stall on delayed ACKs), one SQLite
connection per thread, and a clean stop on SIGINT/SIGTERM (in-flight requests finish,
nothing new starts).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, ClassVar, Final

from oauth2_sync.errors import RegistryError
from oauth2_sync.refserver.app import RegistryApp, ServerConfig
from oauth2_sync.refserver.exchange import MAX_BODY, HttpError, Request, Response, too_large
from oauth2_sync.safetext import printable

__all__ = ["RegistryApp", "RegistryServer", "ServerConfig", "run"]

logger = logging.getLogger(__name__)
access_log = logging.getLogger("oauth2_sync.refserver.access")
"""One INFO line per request answered: method, path (never the query), status, time.
Tokens and secrets travel in headers and bodies, which it never logs."""

_JSON: Final = "application/json"


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
        except HttpError as exc:
            # The rest of a refused body is still on the wire: this connection is done.
            self.close_connection = True
            self._send(self.command, exc.response)
            self._log_access(self.path.split("?", 1)[0], exc.response.status, started)
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(self.command, self.path, headers, body)
        try:
            response = self.app.handle(request)
        except Exception:  # a server's last resort: one request's bug is a logged 500, not a crash
            logger.exception("%s %s failed", self.command, request.path)
            response = Response(500, {"error": "server_error", "message": "internal error"})
        if request.close:
            self.close_connection = True
        self._send(self.command, response)
        self._log_access(request.path, response.status, started)

    def _log_access(self, path: str, status: int, started: float) -> None:
        # The path is the client's text: escaped, so that it cannot forge log lines.
        access_log.info(
            "%s %s %d %.1f ms", printable(self.command), printable(path), status,
            (time.perf_counter() - started) * 1000,
        )

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as exc:
            raise HttpError(400, "invalid_request", "Content-Length is not a number") from exc
        if length < 0 or length > MAX_BODY:
            raise too_large()
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        size_so_far = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise HttpError(400, "invalid_request", "malformed chunked body") from exc
            if size == 0:
                break
            size_so_far += size
            if size_so_far > MAX_BODY:
                raise too_large()
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass  # trailers: none of them matter here
        return b"".join(parts)

    def _send(self, method: str, response: Response) -> None:
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
            ) from exc
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

