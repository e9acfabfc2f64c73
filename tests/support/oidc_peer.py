"""A real oidc-provider (tests/peers/oidc-provider) as a subprocess on 127.0.0.1.

``OidcPeer.start()`` launches ``node server.mjs`` on a free port (the server picks it and
prints it), waits until it accepts requests, and ``stop()`` ends it. The server keeps
its clients in memory, so each peer starts empty. Needs ``npm ci`` in the peer folder
first (scripts/test does it).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.processes import stop_process

PEER_DIR = Path(__file__).resolve().parents[1] / "peers" / "oidc-provider"
INITIAL_ACCESS_TOKEN = "test-initial-access-token-5b0c2f"
"""The initial access token the test servers demand (a test value, not a secret)."""
START_TIMEOUT = 30.0


def peer_problem() -> str | None:
    """Why the ``peer`` tests cannot run here (Node.js or oidc-provider missing), with how
    to fix it; None when they can."""
    if shutil.which("node") is None:
        return (
            "Node.js is not installed: the tests marked `peer` need Node.js 20+ on PATH "
            f"and `npm ci` in {PEER_DIR} (or deselect them: pytest -m 'not peer')"
        )
    if not (PEER_DIR / "node_modules" / "oidc-provider").is_dir():
        return (
            "oidc-provider is not installed: run `npm ci` in "
            f"{PEER_DIR} (or deselect the tests marked `peer`: pytest -m 'not peer')"
        )
    return None


@dataclass
class OidcPeer:
    """One running oidc-provider."""

    process: subprocess.Popen[str]
    issuer: str
    stderr: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self.issuer.rsplit(":", 1)[1])

    @property
    def registration_endpoint(self) -> str:
        """The server's RFC 7591 registration endpoint."""
        return f"{self.issuer}/reg"

    @property
    def registry_url(self) -> str:
        """The oauth2-sync registry URL for this server."""
        return f"rfc7592+{self.registration_endpoint}"

    @classmethod
    def start(cls, *, port: int = 0, rotate_registration_access_token: bool = False,
              declare_extra_metadata: bool = True,
              extra_names: Mapping[str, str] | None = None,
              client_credentials: bool = False) -> OidcPeer:
        """Launch a fresh server and wait until it listens (on ``port``; 0: a free one).

        ``extra_names`` declares extension fields under other names (``""``: not at all),
        as an administrator who never heard of oauth2-sync would; ``client_credentials``
        offers that grant."""
        problem = peer_problem()
        if problem is not None:
            raise RuntimeError(problem)
        node = shutil.which("node")
        assert node is not None
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "OIDC_INITIAL_ACCESS_TOKEN": INITIAL_ACCESS_TOKEN,
            "OIDC_PORT": str(port),
            "OIDC_ROTATE_RAT": "1" if rotate_registration_access_token else "0",
            "OIDC_EXTRA_METADATA": "1" if declare_extra_metadata else "0",
            "OIDC_EXTRA_NAMES": json.dumps(dict(extra_names or {})),
            "OIDC_CLIENT_CREDENTIALS": "1" if client_credentials else "0",
        }
        process = subprocess.Popen(
            [node, "server.mjs"], cwd=PEER_DIR, env=env, text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        lines: queue.Queue[str | None] = queue.Queue()
        stderr: list[str] = []

        def pump_stdout() -> None:
            assert process.stdout is not None
            with process.stdout:  # closed at EOF: an open pipe is a ResourceWarning
                for line in process.stdout:
                    lines.put(line)
            lines.put(None)

        def pump_stderr() -> None:
            assert process.stderr is not None
            with process.stderr:
                stderr.extend(process.stderr)

        threading.Thread(target=pump_stdout, daemon=True).start()
        threading.Thread(target=pump_stderr, daemon=True).start()
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            line = None
        if line is None or not line.startswith("listening on "):
            process.kill()
            process.wait()
            raise RuntimeError(f"oidc-provider did not start: {''.join(stderr)}")
        return cls(process, line.removeprefix("listening on ").strip(), stderr)

    def stop(self) -> None:
        """End the server (SIGTERM, then SIGKILL) and reap it."""
        stop_process(self.process)


@contextmanager
def running_peer(**options: Any) -> Iterator[OidcPeer]:
    """A fresh oidc-provider for the duration of a ``with`` block."""
    peer = OidcPeer.start(**options)
    try:
        yield peer
    finally:
        peer.stop()
