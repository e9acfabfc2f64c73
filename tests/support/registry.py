"""The reference registry server as a real subprocess on 127.0.0.1, for the tests.

``launch_registry_server`` starts ``python -m oauth2_sync registry serve`` on a free port
with its own database and returns a ``RegistryServer`` once it listens;
``write_registry_settings`` writes an ``oauth2-sync.yaml`` that points at one. The
fixtures built on them live in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from support.processes import stop_process

ROOT = Path(__file__).resolve().parents[2]
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
        return stop_process(self.process, 15)


def launch_registry_server(
    folder: Path,
    *,
    seed: Path | None = SEED,
    token_ttl: int | None = None,
    rate_limit: float | None = None,
    extra_env: Mapping[str, str] | None = None,
    verbose: bool = False,
    latency_ms: int | None = None,
    options: Sequence[str] = (),
) -> RegistryServer:
    """Start a server on a free port with a database in ``folder``; return once it listens.

    ``verbose`` runs it with ``-vv`` (debug logs on its stderr, kept in ``stderr``);
    ``latency_ms`` delays every answer (``--latency-ms``), so that an apply takes time;
    ``options`` are more options of ``registry serve`` (``-q``: no access lines)."""
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
    command += options
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
        with process.stderr:  # closed at EOF: an open pipe is a ResourceWarning
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


def examples_against(folder: Path, server: RegistryServer) -> tuple[Path, dict[str, str]]:
    """A copy of the examples in ``folder/repo`` whose settings point at ``server``, and
    an environment holding its credentials and no other ``OAUTH2_SYNC_`` variable."""
    import shutil

    root = folder / "repo"
    shutil.copytree(
        ROOT / "examples", root,
        ignore=shutil.ignore_patterns(".oauth2-sync", ".secrets", "*.json"),
    )
    settings = root / "oauth2-sync.yaml"
    settings.write_text(
        settings.read_text().replace(
            "url: local:.oauth2-sync/registry.db", f"url: {server.base_url}"
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    env.update(NO_COLOR="1", **server.env())
    return root, env
