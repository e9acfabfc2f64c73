"""End to end: the example repository, `oauth2-sync plan` and `apply` as real processes.

Every scenario runs twice: against the embedded ``local:`` registry, and against a real
``oauth2-sync registry serve`` process over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from support.registry import RegistryServer

from oauth2_sync.model import Client
from oauth2_sync.registry import wire
from oauth2_sync.registry.local import LocalRegistry

EXAMPLES = Path(__file__).parents[1] / "examples"
EXAMPLE_IDS = (
    "acme-billing-sync", "acme-mobile-app", "acme-reporting", "acme-web-portal",
    "globex-analytics", "globex-etl", "globex-partner-portal",
    "initech-batch", "initech-intranet", "initech-kiosk", "initech-legacy-spa",
    "initech-tps-reports",
)


@dataclasses.dataclass
class Repo:
    """A copy of the examples wired to one registry, and ways to poke that registry."""

    root: Path
    env: dict[str, str]
    edit: Callable[[str, Callable[[Client], Client]], None]
    """Change one client out of band (as someone using the registry's admin form would)."""
    clients: Callable[[], dict[str, Client]]

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "oauth2_sync", *args], cwd=self.root, env=self.env,
            capture_output=True, text=True, input=stdin, timeout=120, check=False,
        )

    def settings(self, change: Callable[[dict[str, Any]], None]) -> None:
        path = self.root / "oauth2-sync.yaml"
        data = yaml.safe_load(path.read_text())
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def secrets(self) -> list[str]:
        folder = self.root / ".secrets"
        return sorted(p.stem for p in folder.iterdir()) if folder.exists() else []


def copy_examples(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(
        EXAMPLES, root, ignore=shutil.ignore_patterns(".oauth2-sync", ".secrets", "*.json")
    )
    return root


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    env["NO_COLOR"] = "1"
    return env


@pytest.fixture
def local_repo(tmp_path: Path) -> Iterator[Repo]:
    root = copy_examples(tmp_path)
    db = root / ".oauth2-sync" / "registry.db"

    def edit(client_id: str, change: Callable[[Client], Client]) -> None:
        registry = LocalRegistry(db)
        try:
            current = registry.get_client(client_id)
            assert current is not None
            registry.replace_client(change(current.client), current.version)
        finally:
            registry.close()

    def clients() -> dict[str, Client]:
        registry = LocalRegistry(db)
        try:
            return {rc.client.client_id: rc.client for rc in registry.list_clients()}
        finally:
            registry.close()

    yield Repo(root, base_env(), edit, clients)


@pytest.fixture
def http_repo(tmp_path: Path, start_registry_server: Callable[..., RegistryServer]) -> Repo:
    server = start_registry_server()
    base = server.base_url
    root = copy_examples(tmp_path)
    settings = root / "oauth2-sync.yaml"
    settings.write_text(
        settings.read_text().replace("url: local:.oauth2-sync/registry.db", f"url: {base}")
    )
    session = requests.Session()
    session.headers.update(server.headers())

    def subdomains() -> dict[int, str]:
        response = session.get(f"{base}/partners", timeout=10)
        response.raise_for_status()
        return {p["id"]: p["subdomain"] for p in response.json()}

    def edit(client_id: str, change: Callable[[Client], Client]) -> None:
        response = session.get(f"{base}/oauth2-clients/{client_id}", timeout=10)
        response.raise_for_status()
        obj = response.json()
        current = wire.client_from_wire(obj, subdomains())
        body = wire.client_to_wire(change(current.client), obj["partnerId"])
        put = session.put(
            f"{base}/oauth2-clients/{client_id}", json=body,
            headers={"If-Match": response.headers["ETag"]}, timeout=10,
        )
        put.raise_for_status()

    def clients() -> dict[str, Client]:
        response = session.get(f"{base}/oauth2-clients", timeout=10)
        response.raise_for_status()
        names = subdomains()
        return {
            rc.client.client_id: rc.client
            for rc in (wire.client_from_wire(obj, names) for obj in response.json())
        }

    return Repo(root, {**base_env(), **server.env()}, edit, clients)


@pytest.fixture(params=["local", "http"])
def repo(request: pytest.FixtureRequest) -> Repo:
    fixture: Repo = request.getfixturevalue(f"{request.param}_repo")
    return fixture


def test_the_examples_go_from_empty_to_converged(repo: Repo) -> None:
    first = repo.run("plan")
    assert first.returncode == 2, first.stderr
    for client_id in EXAMPLE_IDS:
        assert f'  + client "{client_id}" {{\n' in first.stdout
    assert "Plan: 12 to add, 0 to change, 0 to destroy.\n" in first.stdout

    applied = repo.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete: 12 created, 0 updated, 0 deleted.\n" in applied.stdout
    assert repo.secrets() == list(EXAMPLE_IDS)
    assert sorted(repo.clients()) == list(EXAMPLE_IDS)

    second = repo.run("plan")
    assert second.returncode == 0, second.stderr
    assert "No changes. The registry matches the configuration.\n" in second.stdout

    path = repo.root / "clients" / "payments" / "reporting.yaml"
    path.write_text(path.read_text().replace(
        "email: data-team@acme.example", "email: reports@acme.example"
    ))
    edited = repo.run("plan")
    assert edited.returncode == 2
    assert (
        '  # client "acme-reporting" will be updated in-place '
        "(clients/payments/reporting.yaml:4)\n"
        '  ~ client "acme-reporting" {\n'
        '      ~ email = "data-team@acme.example" -> "reports@acme.example"\n'
        "        # (8 unchanged fields hidden)\n"
        "    }\n"
    ) in edited.stdout
    assert "Plan: 0 to add, 1 to change, 0 to destroy.\n" in edited.stdout
    assert repo.run("apply", "--auto-approve").returncode == 0
    assert repo.clients()["acme-reporting"].email == "reports@acme.example"
    assert repo.run("plan").returncode == 0


def test_a_saved_plan_refuses_a_client_edited_since_and_applies_the_others(repo: Repo) -> None:
    assert repo.run("apply", "--auto-approve").returncode == 0
    path = repo.root / "clients" / "payments" / "reporting.yaml"
    path.write_text(
        path.read_text()
        .replace("name: Reporting service", "name: Reporting service v2")
        .replace("name: Billing synchronisation", "name: Billing sync v2")
    )
    planned = repo.run("plan", "--out", "plan.json")
    assert planned.returncode == 2
    assert "To perform exactly these actions, run: oauth2-sync apply plan.json\n" in (
        planned.stdout
    )
    repo.edit("acme-reporting", lambda c: c._replace(email="oob@acme.example"))

    applied = repo.run("apply", "plan.json")
    assert applied.returncode == 1
    # The result lines come as the writes finish; sorted here, the summary last.
    *results, summary = applied.stdout.splitlines()
    lines = sorted(results)
    assert len(lines) == 2 and summary.startswith("Apply finished with problems: ")
    assert lines[0] == "acme-billing-sync: updated (name)"
    assert re.fullmatch(
        r"acme-reporting: refused: changed in the registry since the plan \(version \S+ no "
        r"longer current\); left untouched, run plan again",
        lines[1],
    )
    clients = repo.clients()
    assert clients["acme-reporting"].email == "oob@acme.example"
    assert clients["acme-reporting"].name == "Reporting service"
    assert clients["acme-billing-sync"].name == "Billing sync v2"


def test_apply_without_a_terminal_or_approval_refuses(repo: Repo) -> None:
    result = repo.run("apply")
    assert result.returncode == 1
    assert "Plan: 12 to add, 0 to change, 0 to destroy." in result.stdout
    assert result.stderr == (
        "Error: apply asks for confirmation on a terminal, and there is none: pass "
        "--auto-approve, or apply a saved plan (`plan --out FILE`, then `apply FILE`)\n"
    )
    assert repo.clients() == {}


def test_apply_without_a_terminal_and_nothing_to_change_succeeds(repo: Repo) -> None:
    assert repo.run("apply", "--auto-approve").returncode == 0
    result = repo.run("apply")
    assert (result.returncode, result.stderr) == (0, "")
    assert "No changes." in result.stdout


def test_over_a_safety_limit_nothing_is_written(repo: Repo) -> None:
    repo.settings(lambda s: s["safety"].update(max_changes=5))
    result = repo.run("apply", "--auto-approve")
    assert result.returncode == 1
    assert result.stderr == (
        "Error: the plan exceeds the safety limits: creates+updates: 12 exceeds 5 "
        "(safety.max_changes). Raise the limit in the settings, or pass --allow-unsafe "
        "for this run\n"
    )
    assert repo.clients() == {}
    assert repo.run("apply", "--auto-approve", "--allow-unsafe").returncode == 0
    assert len(repo.clients()) == 12


def test_without_a_secret_sink_nothing_is_created(repo: Repo) -> None:
    repo.settings(lambda s: s.pop("secrets"))
    result = repo.run("apply", "--auto-approve")
    assert result.returncode == 1
    assert result.stderr.endswith(
        "Error: the plan creates 12 clients but no secret sink is configured (settings: "
        "secrets.directory or secrets.command); refusing to create clients whose secrets "
        "would be lost\n"
    )
    assert repo.clients() == {}


def test_prune_and_target(repo: Repo) -> None:
    assert repo.run("apply", "--auto-approve").returncode == 0
    (repo.root / "clients" / "platform" / "initech.yaml").unlink()
    plan = repo.run("plan")
    assert "No changes." in plan.stdout
    pruned = repo.run("plan", "--prune", "--target", "initech-batch", "--format", "json")
    assert pruned.returncode == 2
    document = json.loads(pruned.stdout)
    assert [(c["action"], c["client_id"]) for c in document["changes"]] == [
        ("delete", "initech-batch"),
    ]
    refused = repo.run("apply", "--auto-approve", "--prune")
    assert refused.returncode == 1
    assert "deletes: 5 exceeds 2 (safety.max_deletes)" in refused.stderr
    repo.settings(lambda s: s["safety"].update(max_deletes=5, max_deletes_percent=50))
    applied = repo.run("apply", "--auto-approve", "--prune")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete: 0 created, 0 updated, 5 deleted.\n" in applied.stdout
    assert sorted(repo.clients()) == [c for c in EXAMPLE_IDS if not c.startswith("initech")]


def test_json_and_markdown_plans(repo: Repo) -> None:
    result = repo.run("plan", "--format", "json", "--out", "plan.json")
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document == json.loads((repo.root / "plan.json").read_text())
    assert document["summary"]["create"] == 12
    first = document["changes"][0]
    assert (first["action"], first["client_id"], first["file"], first["line"]) == (
        "create", "acme-billing-sync", "clients/payments/reporting.yaml", 14,
    )
    assert "Saved the plan to: plan.json" in result.stderr
    markdown = repo.run("plan", "--format", "markdown")
    assert markdown.stdout.startswith("### oauth2-sync plan\n\n**Plan: 12 to add,")
    assert markdown.stdout.count("<details>") == 12


def test_rotate_secret(repo: Repo) -> None:
    assert repo.run("apply", "--auto-approve").returncode == 0
    before = (repo.root / ".secrets" / "globex-etl.json").read_text()
    result = repo.run("rotate-secret", "globex-etl")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "globex-etl: new secret delivered to command ci/store-secret\nRotated 1 secret.\n"
    )
    assert (repo.root / ".secrets" / "globex-etl.json").read_text() != before
    missing = repo.run("rotate-secret", "globex-nope")
    assert missing.returncode == 1
    assert missing.stdout == (
        "globex-nope: failed: no such client in the registry\nRotated 0 secrets; 1 failed.\n"
    )


def test_plan_fails_on_an_online_check_naming_file_and_line(repo: Repo) -> None:
    path = repo.root / "clients" / "payments" / "reporting.yaml"
    path.write_text(path.read_text() + (
        "\n  - client_id: acme-stranger\n    name: Stranger\n"
        "    email: stranger@acme.example\n    partner: acme\n"
    ))
    result = repo.run("plan")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "clients/payments/reporting.yaml:23:16: error: [user-unknown] 'stranger' is not a "
        "user of partner 'acme' (required by restrict_to_partner_users)\n"
    )


@pytest.mark.parametrize(("answer", "code"), [("yes", 0), ("no", 1)])
def test_apply_asks_for_confirmation_on_a_terminal(
    local_repo: Repo, answer: str, code: int
) -> None:
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "oauth2_sync", "apply", "--target", "globex-etl"],
            cwd=local_repo.root, env=local_repo.env, stdin=secondary,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        os.close(secondary)
        os.write(primary, f"{answer}\n".encode())
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        os.close(primary)
    assert proc.returncode == code, stderr
    assert "Do you want to perform these actions?\n  Only 'yes' will be accepted to approve." in (
        stdout
    )
    if answer == "yes":
        assert stdout.endswith("Apply complete: 1 created, 0 updated, 0 deleted.\n")
        assert list(local_repo.clients()) == ["globex-etl"]
    else:
        assert stderr == "\nApply cancelled.\n"
        assert local_repo.clients() == {}


def _on_a_terminal(repo: Repo, args: tuple[str, ...], env: dict[str, str]) -> str:
    """What a command writes to a terminal (a pty as its stdout)."""
    primary, secondary = pty.openpty()
    try:
        with subprocess.Popen(
            [sys.executable, "-m", "oauth2_sync", *args], cwd=repo.root, env=env,
            stdin=subprocess.DEVNULL, stdout=secondary, stderr=subprocess.PIPE,
        ) as proc:  # the with closes its stderr pipe
            os.close(secondary)
            chunks = []
            while True:
                try:
                    chunk = os.read(primary, 65536)
                except OSError:  # EIO: the command closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            assert proc.wait(timeout=60) == 2
    finally:
        os.close(primary)
    return b"".join(chunks).decode()


@pytest.mark.parametrize(
    ("no_color", "args", "coloured"),
    [(None, (), True), ("1", (), False), (None, ("--no-color",), False)],
    ids=["terminal", "NO_COLOR", "--no-color"],
)
def test_plan_is_coloured_on_a_terminal_unless_asked_not_to(
    local_repo: Repo, no_color: str | None, args: tuple[str, ...], coloured: bool
) -> None:
    env = {k: v for k, v in local_repo.env.items() if k != "NO_COLOR"}
    if no_color is not None:
        env["NO_COLOR"] = no_color
    shown = _on_a_terminal(local_repo, ("plan", *args), env)
    assert ("\x1b[" in shown) == coloured
    assert "Plan: 12 to add, 0 to change, 0 to destroy." in re.sub(r"\x1b\[[0-9;]*m", "", shown)
