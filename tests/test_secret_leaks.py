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
import yaml
from support.oidc_peer import INITIAL_ACCESS_TOKEN, running_peer
from support.registry import RegistryServer

from oauth2_sync.cli import cli
from oauth2_sync.refserver.store import RegistryStore

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

    def run(
        self, *args: str, expect: Iterable[int] = (0, 2), env: dict[str, str] | None = None
    ) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "oauth2_sync", *args], cwd=self.root,
            env={**self.env, **(env or {})},
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
        state = self.root / ".oauth2-sync" / "rfc7592-state.json"
        if state.exists():  # registration access tokens (rfc7592+ registries)
            for entry in json.loads(state.read_text())["clients"].values():
                self.secrets.add(entry["registration_access_token"])

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
        server = start_registry_server(verbose=True)
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
    for fmt in ("text", "json", "markdown", "junit"):
        rec.run("drift", "-vv", "--format", fmt)
    for fmt in ("text", "json", "github"):
        rec.run("validate", "-vv", "--format", fmt)
    rec.run("export", "-vv", "--include-declared", "--out", "exported")
    rec.run("fmt", "-vv", "--check", expect=(0, 1))
    rec.run("fmt", "-vv", "--diff")
    rec.run("apply", "-vv", "plan.json", expect=(1,))  # every create now conflicts

    # A sink command that echoes the secret on stdout and stderr, then fails.
    settings = root / "oauth2-sync.yaml"
    settings.write_text(
        settings.read_text().replace(
            "  command: [./ci/store-secret]",
            f"  command: [{json.dumps(sys.executable)}, -c, {json.dumps(LOUD_SINK)}]",
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
    if backend == "http":
        texts.append(("the server's debug log", "".join(server.stderr)))
        assert "DEBUG" in texts[-1][1]
    assert any(name == "plan.json" for name, _ in texts)
    assert any(name.startswith("exported/") for name, _ in texts)
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


RFC7592_SUPPORTED = (
    "acme-mobile-app", "acme-web-portal", "globex-analytics", "globex-partner-portal",
    "initech-intranet",
)


def keep_only(root: Path, client_ids: tuple[str, ...]) -> None:
    """Rewrite the client files with only ``client_ids`` (comments are lost)."""
    for path in (root / "clients").rglob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        data["clients"] = [c for c in data["clients"] if c["client_id"] in client_ids]
        path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_no_registration_access_token_leaks_from_any_command(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(".oauth2-sync", ".secrets"))
    keep_only(root, RFC7592_SUPPORTED)  # what a standard server can hold
    rec = Recorder(root)
    rec.env["OAUTH2_SYNC_INITIAL_ACCESS_TOKEN"] = INITIAL_ACCESS_TOKEN
    rec.secrets.add(INITIAL_ACCESS_TOKEN)
    with running_peer() as peer:
        settings = root / "oauth2-sync.yaml"
        settings.write_text(settings.read_text().replace(
            "url: local:.oauth2-sync/registry.db", f"url: {peer.registry_url}"
        ))
        rec.run("validate", "-vv")
        rec.run("plan", "-vv", "--out", "plan.json")
        rec.run("apply", "-vv", "plan.json")
        path = root / "clients" / "payments" / "apps.yaml"
        path.write_text(path.read_text().replace("name: ", "name: Renamed ", 1))
        rec.run("plan", "-vv", "--format", "json")
        rec.run("plan", "-vv", "--format", "markdown")
        rec.run("apply", "-vv", "--auto-approve")
        for fmt in ("text", "json", "markdown", "junit"):
            rec.run("drift", "-vv", "--format", fmt)
        rec.run("export", "-vv", "--include-declared", "--out", "exported")
        rec.run("rotate-secret", "-vv", "acme-web-portal", expect=(1,))  # not in RFC 7592
        state = json.loads((root / ".oauth2-sync" / "rfc7592-state.json").read_text())
        entry = state["clients"]["initech-intranet"]
        rec.run("forget", "-vv", "initech-intranet")
        rec.run(
            "adopt", "-vv", "initech-intranet",
            "--registration-client-uri", entry["registration_client_uri"],
            env={"OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN": entry["registration_access_token"]},
        )
        keep_only(root, RFC7592_SUPPORTED[1:])
        rec.run("apply", "-vv", "--auto-approve", "--prune")  # deletes acme-mobile-app
        assert "acme-mobile-app: deleted" in rec.outputs[-2][1]
    texts = rec.outputs + rec.written_files()
    assert any(name.startswith("exported/") for name, _ in texts)
    assert len(rec.secrets) >= 11  # 5 client secrets, 5 tokens, the initial access token
    for where, text in texts:
        for secret in rec.secrets:
            assert secret not in text, f"a secret or token appears in {where}"
