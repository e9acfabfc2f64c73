"""No secret or token ever reaches stdout, stderr, logs, plan files or other written files.

Every command runs as a real process, with ``-v`` and ``-vv``; then every string in
everything they printed or wrote that could be a secret (43 URL-safe characters, the
shape of ``secrets.token_urlsafe(32)``) is checked against the registry's stored
secret hashes and token hashes, and the secrets the sink received are searched for
literally.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import click
import pytest
from conftest import RegistryServer

from oauth2_sync.cli import cli
from oauth2_sync.registry.store import RegistryStore

EXAMPLES = Path(__file__).parents[1] / "examples"
CANDIDATE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")
LOUD_SINK = (
    "import sys; d = sys.stdin.read(); print(d); print('failed to store', d, file=sys.stderr); "
    "sys.exit(1)"
)


class Recorder:
    """Runs the CLI in a copy of the examples and keeps everything it shows or writes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
        self.env["NO_COLOR"] = "1"
        self.outputs: list[tuple[str, str]] = []
        self.secrets: set[str] = set()
        self.ran: set[str] = set()
        self.before = dict(self._files())

    def run(self, *args: str, expect: Iterable[int] = (0, 2)) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "oauth2_sync", *args], cwd=self.root, env=self.env,
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert done.returncode in tuple(expect), (args, done.stdout, done.stderr)
        self.ran.add(next((a for a in args if not a.startswith("-")), ""))
        self.outputs.append((f"stdout of {args}", done.stdout))
        self.outputs.append((f"stderr of {args}", done.stderr))
        self.collect_secrets()

    def collect_secrets(self) -> None:
        folder = self.root / ".secrets"
        for path in folder.glob("*.json") if folder.exists() else ():
            self.secrets.add(json.loads(path.read_text())["client_secret"])

    def _files(self) -> list[tuple[str, str]]:
        skip = {".secrets", ".oauth2-sync"}
        found = []
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not skip & set(path.relative_to(self.root).parts):
                found.append((str(path.relative_to(self.root)), path.read_text(errors="replace")))
        return found

    def written_files(self) -> list[tuple[str, str]]:
        """Files the commands created or changed (the sink and the store aside)."""
        return [(name, text) for name, text in self._files() if self.before.get(name) != text]


@pytest.mark.parametrize("backend", ["local", "http"])
def test_no_secret_or_token_leaks_from_any_command(
    tmp_path: Path, backend: str, start_registry_server: Callable[..., RegistryServer]
) -> None:
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(".oauth2-sync", ".secrets"))
    rec = Recorder(root)
    db = root / ".oauth2-sync" / "registry.db"
    if backend == "http":
        server = start_registry_server()
        db = server.db
        settings = root / "oauth2-sync.yaml"
        settings.write_text(settings.read_text().replace(
            "url: local:.oauth2-sync/registry.db", f"url: {server.base_url}"
        ))
        rec.env.update(server.env())
        # The API credential is a secret too.
        rec.secrets.add(server.ci[1])

    rec.run("validate", "-v")
    rec.run("plan", "-v", "--out", "plan.json")
    rec.run("apply", "-vv", "--auto-approve")
    rec.run("plan", "-vv", "--format", "json")
    rec.run("plan", "-v", "--format", "markdown")
    path = root / "clients" / "payments" / "reporting.yaml"
    path.write_text(path.read_text().replace("name: Reporting service", "name: Reports"))
    rec.run("plan", "-vv", "--out", "plan2.json")
    rec.run("apply", "-vv", "plan2.json")
    rec.run("rotate-secret", "-vv", "globex-etl", "acme-reporting")
    rec.run("apply", "-vv", "plan.json", expect=(1,))  # every create now conflicts

    # A sink command that echoes the secret on stdout and stderr, then fails.
    settings = root / "oauth2-sync.yaml"
    settings.write_text(
        settings.read_text().replace(
            "secrets:\n  directory: .secrets",
            f"secrets:\n  command: [{json.dumps(sys.executable)}, -c, {json.dumps(LOUD_SINK)}]",
        )
    )
    path.write_text(path.read_text().replace("- client_id: acme-billing-sync", (
        "- client_id: acme-ops-cli\n    name: Ops\n    email: ops@acme.example\n"
        "    partner: acme\n\n  - client_id: acme-billing-sync"
    )))
    rec.run("apply", "-vv", "--auto-approve", expect=(1,))
    rec.run("rotate-secret", "-vv", "acme-ops-cli", expect=(1,))

    for name in sorted(set(cli.commands) - rec.ran):
        command = cli.commands[name]
        if isinstance(command, click.Group):
            rec.run(name, "--help")
        else:
            rec.run(name, "-vv", expect=(0, 1, 2))
    rec.run("--help")

    texts = rec.outputs + rec.written_files()
    assert any(name == "plan.json" for name, _ in texts)
    assert len(rec.secrets) >= 12
    store = RegistryStore(db)
    client_ids = [c["clientId"] for c in store.list_clients()]
    assert "acme-ops-cli" in client_ids
    for where, text in texts:
        for secret in rec.secrets:
            assert secret not in text, f"a client secret appears in {where}"
        for candidate in CANDIDATE.findall(text):
            assert store.check_token(candidate) is None, f"a token appears in {where}"
            for client_id in client_ids:
                assert not store.check_client_secret(client_id, candidate), (
                    f"the secret of {client_id} appears in {where}"
                )
    store.close()
