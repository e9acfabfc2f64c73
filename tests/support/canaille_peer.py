"""A real Canaille 0.3.6 (tests/peers/canaille) as a subprocess on 127.0.0.1.

Canaille is an OpenID Connect server on Flask and Authlib that implements RFC 7591
registration and RFC 7592 management. It is installed by scripts/test into its own
virtual environment, ``tests/peers/canaille/.venv``, from the pinned
``requirements.txt``, so its dependencies never reach the project's venv.

``CanaillePeer.start(folder)`` writes a configuration file (SQLite in ``folder``, the
address ``127.0.0.1:PORT`` as its ``SERVER_NAME``: Canaille redirects or refuses any
other host name), launches ``canaille run`` on a free port and waits until the discovery
document answers; ``stop()`` ends it. Registration is open by default (no initial
access token) because one Canaille token registers exactly one client and minting one
takes a second Python process; ``mint_command`` is the per-create command that mints
one (``canaille jwt registration``), for the settings' ``initial_access_token_command``.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from support.processes import stop_process

PEER_DIR = Path(__file__).resolve().parents[1] / "peers" / "canaille"
VENV = PEER_DIR / ".venv"
CANAILLE = VENV / "bin" / "canaille"
START_TIMEOUT = 90.0
"""Seconds to wait for the first answer (its database migrations run at startup; on a
busy 2-core machine that took 11 s)."""


def canaille_problem() -> str | None:
    """Why Canaille cannot run here, with how to fix it; None when it can."""
    if not CANAILLE.is_file():
        return (
            f"Canaille is not installed: run scripts/test, or `python3 -m venv {VENV} && "
            f"{VENV}/bin/pip install -r {PEER_DIR}/requirements.txt` "
            "(or deselect the tests marked `peer`: pytest -m 'not peer')"
        )
    return None


def free_port() -> int:
    """A port free on 127.0.0.1 now (Canaille must know its address before it binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_config(folder: Path, port: int, *, open_registration: bool) -> Path:
    """Canaille's configuration for a test server: SQLite, loopback, no mail, no UI."""
    config = folder / "canaille.toml"
    config.write_text(
        f'SECRET_KEY = "{secrets.token_hex(16)}"\n'
        f'SERVER_NAME = "127.0.0.1:{port}"\n'
        'PREFERRED_URL_SCHEME = "http"\n'
        "[CANAILLE]\n"
        'DATABASE = "sql"\n'
        "[CANAILLE_SQL]\n"
        f'DATABASE_URI = "sqlite:///{folder / "canaille.sqlite"}"\n'
        "[CANAILLE_OIDC]\n"
        f"DYNAMIC_CLIENT_REGISTRATION_OPEN = {'true' if open_registration else 'false'}\n"
    )
    return config


@dataclass
class CanaillePeer:
    """One running Canaille."""

    process: subprocess.Popen[str]
    issuer: str
    config: Path
    output: list[str] = field(default_factory=list)

    @property
    def registration_endpoint(self) -> str:
        """The server's RFC 7591 registration endpoint."""
        return f"{self.issuer}/oauth/register"

    @property
    def token_endpoint(self) -> str:
        """Where clients get tokens."""
        return f"{self.issuer}/oauth/token"

    @property
    def registry_url(self) -> str:
        """The oauth2-sync registry URL for this server."""
        return f"rfc7592+{self.registration_endpoint}"

    @property
    def mint_command(self) -> list[str]:
        """A command that prints one fresh initial access token (valid 10 minutes)."""
        script = self.config.parent / "mint-initial-access-token"
        if not script.exists():
            script.write_text(
                "#!/bin/sh\n# One initial access token registers one client on Canaille.\n"
                f"CANAILLE_CONFIG='{self.config}' exec '{CANAILLE}' jwt registration "
                "--lifetime 600\n"
            )
            script.chmod(0o755)
        return [str(script)]

    def mint(self) -> str:
        """One initial access token, minted by Canaille's own command."""
        done = subprocess.run(self.mint_command, capture_output=True, text=True, check=True,
                              timeout=60)
        return done.stdout.strip()

    @classmethod
    def start(cls, folder: Path, *, open_registration: bool = True) -> CanaillePeer:
        """Launch a fresh server with its database in ``folder``; wait until it answers."""
        problem = canaille_problem()
        if problem is not None:
            raise RuntimeError(problem)
        port = free_port()
        config = write_config(folder, port, open_registration=open_registration)
        env = {
            "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
            "CANAILLE_CONFIG": str(config),
        }
        process = subprocess.Popen(
            [str(CANAILLE), "run", "--bind", f"127.0.0.1:{port}"], cwd=folder, env=env,
            text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output: list[str] = []

        def pump() -> None:
            assert process.stdout is not None
            with process.stdout:  # closed at EOF: an open pipe is a ResourceWarning
                output.extend(process.stdout)

        threading.Thread(target=pump, daemon=True).start()
        peer = cls(process, f"http://127.0.0.1:{port}", config, output)
        if not peer._wait_ready():
            peer.stop()
            raise RuntimeError(f"Canaille did not start: {''.join(output)[-2000:]}")
        return peer

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        url = f"{self.issuer}/.well-known/openid-configuration"
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with requests.get(url, timeout=2) as answer:
                    if answer.status_code == 200:
                        return True
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        """End the server (SIGTERM, then SIGKILL) and reap it."""
        stop_process(self.process)


@contextmanager
def running_canaille(folder: Path, *, open_registration: bool = True) -> Iterator[CanaillePeer]:
    """A fresh Canaille for the duration of a ``with`` block."""
    peer = CanaillePeer.start(folder, open_registration=open_registration)
    try:
        yield peer
    finally:
        peer.stop()
