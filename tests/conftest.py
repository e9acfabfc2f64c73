"""Shared fixtures: the reference registry server as a real subprocess on 127.0.0.1.

- ``registry_server`` (session): one ``python -m oauth2_sync registry serve`` seeded
  with ``examples/registry-seed.yaml``, on a free port with a temporary database. Tests
  that share it must not assume an empty registry: use client IDs of their own.
- ``start_registry_server`` (function): a factory for servers with their own options
  (``token_ttl=1``, ``rate_limit=2``...) and their own database; stopped after the test.
- ``registry_env``: sets ``OAUTH2_SYNC_CLIENT_ID``/``OAUTH2_SYNC_CLIENT_SECRET`` to the
  read-write API credential of ``registry_server`` for the test.
- ``registry_settings``: a factory writing an ``oauth2-sync.yaml`` that points at a
  server and returning the loaded ``Settings``.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from oauth2_sync.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "examples" / "registry-seed.yaml"
START_TIMEOUT = 30.0

CI_CREDENTIAL = ("oauth2-sync-ci", "ci-secret-for-local-tests")
"""Read-write API credential of the example seed (client ID, secret): test values."""
PLAN_CREDENTIAL = ("oauth2-sync-plan", "plan-secret-for-local-tests")
"""Read-only API credential of the example seed."""
OPS_USER = ("ops", "ops-password-for-local-tests")
"""Password-grant user of the example seed (read write)."""


@dataclass
class RegistryServer:
    """A running ``oauth2-sync registry serve``.

    ``base_url`` ends in ``/v1``; ``ci`` and ``plan`` are the (client ID, secret) pairs
    of the read-write and read-only API credentials; ``user`` the password-grant user.
    """

    process: subprocess.Popen[str]
    base_url: str
    db: Path
    ci: tuple[str, str] = CI_CREDENTIAL
    plan: tuple[str, str] = PLAN_CREDENTIAL
    user: tuple[str, str] = OPS_USER
    stderr: list[str] = field(default_factory=list)

    @property
    def token_url(self) -> str:
        """The token endpoint (``/oauth/token`` beside ``/v1``)."""
        return self.base_url[: -len("/v1")] + "/oauth/token"

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self.base_url.rsplit(":", 1)[1].split("/")[0])

    def token(self, credential: tuple[str, str] = CI_CREDENTIAL) -> str:
        """A fresh access token (client_credentials grant) for ``credential``."""
        response = requests.post(
            self.token_url, data={"grant_type": "client_credentials"},
            auth=credential, timeout=10,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def headers(self, credential: tuple[str, str] = CI_CREDENTIAL) -> dict[str, str]:
        """``Authorization: Bearer`` headers for ``credential``."""
        return {"Authorization": f"Bearer {self.token(credential)}"}

    def env(self, credential: tuple[str, str] = CI_CREDENTIAL) -> dict[str, str]:
        """The environment variables the HTTP adapter reads its credentials from."""
        return {"OAUTH2_SYNC_CLIENT_ID": credential[0], "OAUTH2_SYNC_CLIENT_SECRET": credential[1]}

    def stop(self) -> int:
        """SIGTERM, wait for the exit; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def launch_registry_server(
    folder: Path,
    *,
    seed: Path | None = SEED,
    token_ttl: int | None = None,
    rate_limit: float | None = None,
    extra_env: Mapping[str, str] | None = None,
    verbose: bool = False,
    latency_ms: int | None = None,
) -> RegistryServer:
    """Start a server on a free port with a database in ``folder``; return once it listens.

    ``verbose`` runs it with ``-vv`` (debug logs on its stderr, kept in ``stderr``);
    ``latency_ms`` delays every answer (``--latency-ms``), so that an apply takes time."""
    db = folder / "registry.db"
    command = [
        sys.executable, "-m", "oauth2_sync", "registry", "serve",
        "--db", str(db), "--host", "127.0.0.1", "--port", "0",
    ]
    if seed is not None:
        command += ["--seed", str(seed)]
    if token_ttl is not None:
        command += ["--token-ttl", str(token_ttl)]
    if rate_limit is not None:
        command += ["--rate-limit", str(rate_limit)]
    if verbose:
        command.append("-vv")
    if latency_ms is not None:
        command += ["--latency-ms", str(latency_ms)]
    env = {**os.environ, **(extra_env or {})}
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, env=env, cwd=ROOT,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    stderr: list[str] = []

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            stderr.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    prefix = "registry listening on "
    while True:
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            process.kill()
            raise RuntimeError("registry server did not start in time") from None
        if line is None:
            process.wait()
            raise RuntimeError(f"registry server exited: {''.join(stderr)}")
        if line.startswith(prefix):
            return RegistryServer(process, line[len(prefix):].strip(), db, stderr=stderr)


@pytest.fixture(scope="session")
def registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """One reference server for the whole session, seeded with the example seed."""
    server = launch_registry_server(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture
def start_registry_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., RegistryServer]]:
    """A factory: ``start_registry_server(token_ttl=1, rate_limit=2)`` starts a server
    with its own database (keyword arguments of ``launch_registry_server``); every
    server it started is stopped after the test."""
    started: list[RegistryServer] = []

    def start(**options: Any) -> RegistryServer:
        server = launch_registry_server(tmp_path_factory.mktemp("registry"), **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def registry_env(
    registry_server: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point the HTTP adapter's default credential variables at ``registry_server``'s
    read-write credential for this test; returns them."""
    env = registry_server.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def write_registry_settings(
    root: Path,
    url: str,
    *,
    registry: Mapping[str, Any] | None = None,
    teams: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``root/oauth2-sync.yaml`` for registry ``url`` (extra ``registry`` keys such as
    ``auth`` or ``retries``); teams default to acme/globex/initech. Returns its path."""
    root.mkdir(parents=True, exist_ok=True)
    document = {
        "registry": {"url": url, **(registry or {})},
        "clients": {"paths": ["clients/**/*.yaml"]},
        "teams": dict(
            teams
            or {
                "payments": {"paths": ["clients/acme/**"], "partners": ["acme"]},
                "analytics": {"paths": ["clients/globex/**"], "partners": ["globex"]},
                "platform": {"paths": ["clients/initech/**"], "partners": ["initech"]},
            }
        ),
    }
    path = root / "oauth2-sync.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def registry_settings(tmp_path: Path) -> Callable[..., Settings]:
    """A factory: ``registry_settings(url, **options)`` writes an ``oauth2-sync.yaml`` in a
    temporary folder (see ``write_registry_settings``) and returns the loaded settings."""

    def make(url: str, **options: Any) -> Settings:
        return load_settings(write_registry_settings(tmp_path / "config", url, **options))

    return make
