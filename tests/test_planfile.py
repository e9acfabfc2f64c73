"""`apply PLANFILE` re-checks a saved plan against the current settings and files.

Real processes against a real `oauth2-sync registry serve` over HTTP on 127.0.0.1: the
example repository is applied, then plan files are edited as an attacker (or a careless
hand) would, and each change the current configuration does not allow must be refused
with its exact line while the registry stays as it was.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.registry import RegistryServer, examples_against, launch_registry_server

from oauth2_sync.diff import client_json
from oauth2_sync.model import Client
from oauth2_sync.registry import wire

PARTNER_IDS = {"acme": 101, "globex": 102, "initech": 103, "umbrella": 104}
AGAIN = "make the plan again (`oauth2-sync plan --out FILE`)"


@dataclasses.dataclass
class Repo:
    """The examples wired to one reference server, with a session on its API."""

    root: Path
    env: dict[str, str]
    server: RegistryServer
    session: requests.Session

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "oauth2_sync", *args], cwd=self.root, env=self.env,
            capture_output=True, text=True, timeout=120, check=False,
        )

    def clients(self) -> dict[str, Client]:
        response = self.session.get(f"{self.server.base_url}/oauth2-clients", timeout=10)
        response.raise_for_status()
        names = {v: k for k, v in PARTNER_IDS.items()}
        return {
            rc.client.client_id: rc.client
            for rc in (wire.client_from_wire(obj, names) for obj in response.json())
        }

    def create(self, client: Client) -> None:
        """A client made outside the repository (as the registry's admin form would)."""
        body = wire.client_to_wire(client, PARTNER_IDS[client.partner])
        response = self.session.post(
            f"{self.server.base_url}/oauth2-clients", json=body, timeout=10
        )
        response.raise_for_status()

    def plan_document(self) -> dict[str, Any]:
        planned = self.run("plan", "--out", "plan.json")
        assert planned.returncode in (0, 2), planned.stderr
        document: dict[str, Any] = json.loads((self.root / "plan.json").read_text())
        return document

    def write(self, document: dict[str, Any], name: str = "tampered.json") -> str:
        (self.root / name).write_text(json.dumps(document, indent=2) + "\n")
        return name


UMBRELLA = Client("umbrella-legacy", "Legacy", "it@umbrella.example", "umbrella")
UNDECLARED = Client("acme-ops-cli", "Ops CLI", "ops@acme.example", "acme")


def make_repo(folder: Path, server: RegistryServer) -> Repo:
    root, env = examples_against(folder, server)
    session = requests.Session()
    session.headers.update(server.headers())
    repo = Repo(root, env, server, session)
    applied = repo.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    repo.create(UMBRELLA)
    repo.create(UNDECLARED)
    return repo


@pytest.fixture(scope="module")
def converged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    """The examples applied, plus a client of an unmanaged partner and an undeclared
    managed one. Tests sharing it must leave the registry as it is (every change they
    try is refused)."""
    server = launch_registry_server(tmp_path_factory.mktemp("registry"))
    try:
        yield make_repo(tmp_path_factory.mktemp("planfile"), server)
    finally:
        server.stop()


@pytest.fixture
def fresh(tmp_path: Path, start_registry_server: Callable[..., RegistryServer]) -> Repo:
    """As ``converged``, on a server of its own (for tests that write)."""
    return make_repo(tmp_path, start_registry_server())


def change_line(text: str, index: int) -> int:
    """The line of ``changes[index]`` in a plan file written with ``indent=2``."""
    lines = text.splitlines()
    start = lines.index('  "changes": [')
    starts = [n for n, line in enumerate(lines[start:], start) if line == "    {"]
    return starts[index] + 1


def entry_line(repo: Repo, file: str, client_id: str) -> int:
    lines = (repo.root / file).read_text().splitlines()
    return lines.index(f"  - client_id: {client_id}") + 1


def declared_at(repo: Repo, file: str, client_id: str) -> str:
    """``FILE:LINE`` of the entry declaring ``client_id``."""
    return f"{file}:{entry_line(repo, file, client_id)}"


def update(document: dict[str, Any], client: Client, **fields: Any) -> dict[str, Any]:
    """An update of ``client`` to ``fields`` added to a copy of ``document``."""
    after = client._replace(**fields)
    tampered = copy.deepcopy(document)
    tampered["changes"].insert(0, {
        "action": "update", "client_id": client.client_id, "partner": client.partner,
        "file": None, "line": None, "version": document["versions"][client.client_id],
        "fields": [], "before": client_json(client), "after": client_json(after),
    })
    return tampered


def delete(document: dict[str, Any], client: Client, *, prune: bool) -> dict[str, Any]:
    tampered = copy.deepcopy(document)
    tampered["prune"] = prune
    tampered["changes"].insert(0, {
        "action": "delete", "client_id": client.client_id, "partner": client.partner,
        "file": None, "line": None, "version": document["versions"][client.client_id],
        "fields": [], "before": client_json(client), "after": None,
    })
    return tampered


def create(document: dict[str, Any], client: Client) -> dict[str, Any]:
    tampered = copy.deepcopy(document)
    tampered["changes"].insert(0, {
        "action": "create", "client_id": client.client_id, "partner": client.partner,
        "file": "clients/payments/apps.yaml", "line": 5, "version": None,
        "fields": [], "before": None, "after": client_json(client),
    })
    return tampered


def refused(repo: Repo, name: str, index: int, message: str) -> str:
    line = change_line((repo.root / name).read_text(), index)
    return f"{name}:{line}:5: error: [plan-refused] {message}"


ONLY_DECLARED = "a saved plan may only write what the files declare"


def tamperings(repo: Repo, document: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """(what, tampered document, the reason apply must give) for each way to edit a plan."""
    clients = repo.clients()
    reporting, portal = clients["acme-reporting"], clients["acme-web-portal"]
    reporting_at = declared_at(repo, "clients/payments/reporting.yaml", "acme-reporting")
    portal_at = declared_at(repo, "clients/payments/apps.yaml", "acme-web-portal")
    etl_at = declared_at(repo, "clients/analytics/globex.yaml", "globex-etl")
    etl = clients["globex-etl"]
    return [
        (
            "a client of a partner no team manages, widened every way",
            update(
                document, clients["umbrella-legacy"], scopes=("read", "write"),
                grant_types=("implicit",), redirect_uris=("https://evil.example/cb",),
                access_token_ttl=-1,
            ),
            "update of 'umbrella-legacy' refused: the registry holds it under partner "
            "'umbrella', outside the managed scope",
        ),
        (
            "a scope added",
            update(document, reporting, scopes=("read", "write")),
            f"update of 'acme-reporting' refused: it differs from what {reporting_at} "
            f"declares (scopes); {ONLY_DECLARED}",
        ),
        (
            "the implicit grant added",
            update(document, portal, grant_types=("authorization_code", "implicit")),
            f"update of 'acme-web-portal' refused: it differs from what {portal_at} "
            f"declares (grant_types); {ONLY_DECLARED}",
        ),
        (
            "a redirect URI to a foreign host",
            update(document, portal, redirect_uris=("https://evil.example/cb",)),
            f"update of 'acme-web-portal' refused: it differs from what {portal_at} "
            f"declares (redirect_uris); {ONLY_DECLARED}",
        ),
        (
            "a never-expiring token",
            update(document, reporting, access_token_ttl=-1),
            f"update of 'acme-reporting' refused: it differs from what {reporting_at} "
            f"declares (access_token_ttl); {ONLY_DECLARED}",
        ),
        (
            "a delete with prune off",
            delete(document, clients["acme-ops-cli"], prune=False),
            "delete of 'acme-ops-cli' refused: the plan was made with prune off",
        ),
        (
            "a delete of a declared client",
            delete(document, reporting, prune=True),
            f"delete of 'acme-reporting' refused: {reporting_at} declares it",
        ),
        (
            "a change for a client of another team's partner",
            update(document, etl, partner="globex", email="attacker@acme.example"),
            f"update of 'globex-etl' refused: it differs from what {etl_at} declares (email); "
            f"{ONLY_DECLARED}",
        ),
        (
            "a create no file declares, for another team's partner",
            create(document, Client("globex-support-desk", "Desk", "x@acme.example", "globex")),
            f"create of 'globex-support-desk' refused: no client file declares it; {ONLY_DECLARED}",
        ),
        (
            "a create under a partner no team manages",
            create(document, Client("umbrella-new", "New", "x@umbrella.example", "umbrella")),
            "create of 'umbrella-new' refused: partner 'umbrella' is outside the managed "
            "scope (no team names it)",
        ),
    ]


def test_every_tampered_change_is_refused_with_its_reason_and_nothing_written(
    converged: Repo,
) -> None:
    repo = converged
    document = repo.plan_document()
    assert document["changes"] == []
    before = repo.clients()
    cases = tamperings(repo, document)
    assert len(cases) == 10
    for what, tampered, reason in cases:
        name = repo.write(tampered)
        result = repo.run("apply", name)
        assert (what, result.returncode) == (what, 1), result.stdout + result.stderr
        assert (what, result.stderr) == (what, refused(repo, name, 0, reason) + "\n")
        # Nothing is left to apply (the refusal, on stderr, fails the run).
        assert (what, result.stdout) == (what, "No changes.\n")
        assert repo.clients() == before, what


def test_only_the_changes_that_pass_are_applied(fresh: Repo) -> None:
    repo = fresh
    path = repo.root / "clients" / "payments" / "reporting.yaml"
    path.write_text(path.read_text().replace("name: Reporting service", "name: Reports v2"))
    document = repo.plan_document()
    assert [(c["action"], c["client_id"]) for c in document["changes"]] == [
        ("update", "acme-reporting"),
    ]
    clients = repo.clients()
    tampered = delete(
        update(document, clients["acme-web-portal"], redirect_uris=("https://evil.example/cb",)),
        clients["acme-ops-cli"], prune=False,
    )
    name = repo.write(tampered)
    result = repo.run("apply", name)
    assert result.returncode == 1
    portal_at = declared_at(repo, "clients/payments/apps.yaml", "acme-web-portal")
    assert result.stderr.splitlines() == [
        refused(repo, name, 0, "delete of 'acme-ops-cli' refused: the plan was made with prune off"),
        refused(
            repo, name, 1,
            "update of 'acme-web-portal' refused: it differs from what "
            f"{portal_at} declares (redirect_uris); {ONLY_DECLARED}",
        ),
    ]
    assert result.stdout == (
        "acme-reporting: updated (name)\n"
        "Apply complete: 0 created, 1 updated, 0 deleted.\n"
        "Error: 2 changes of the saved plan were refused: not what the current files and "
        "settings allow.\n"
    )
    after = repo.clients()
    assert after["acme-reporting"].name == "Reports v2"
    assert after["acme-web-portal"] == clients["acme-web-portal"]
    assert after["acme-ops-cli"] == clients["acme-ops-cli"]


def test_an_untampered_plan_applies(fresh: Repo) -> None:
    repo = fresh
    path = repo.root / "clients" / "payments" / "reporting.yaml"
    path.write_text(path.read_text().replace("name: Reporting service", "name: Reports v2"))
    planned = repo.run("plan", "--prune", "--out", "plan.json")
    assert planned.returncode == 2, planned.stderr
    result = repo.run("apply", "plan.json")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "acme-ops-cli: deleted\n"
        "acme-reporting: updated (name)\n"
        "Apply complete: 0 created, 1 updated, 1 deleted.\n"
    )
    assert "acme-ops-cli" not in repo.clients()


def test_a_plan_made_before_a_settings_edit_is_stale(converged: Repo) -> None:
    repo = converged
    repo.plan_document()
    settings = repo.root / "oauth2-sync.yaml"
    original = settings.read_text()
    try:
        settings.write_text(original.replace("max_changes: 50", "max_changes: 49"))
        result = repo.run("apply", "plan.json")
    finally:
        settings.write_text(original)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "Error: Saved plan is stale: the settings file oauth2-sync.yaml changed since the "
        f"plan was made; {AGAIN}\n"
    )
    assert repo.run("apply", "plan.json").returncode == 0


def test_a_plan_made_before_a_client_file_edit_is_stale(converged: Repo) -> None:
    repo = converged
    repo.plan_document()
    path = repo.root / "clients" / "analytics" / "globex.yaml"
    original = path.read_text()
    try:
        path.write_text(original + "# a comment is an edit too\n")
        result = repo.run("apply", "plan.json")
    finally:
        path.write_text(original)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "Error: Saved plan is stale: the client file clients/analytics/globex.yaml changed "
        f"since the plan was made; {AGAIN}\n"
    )


def git(root: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
        "PATH": os.environ["PATH"], "HOME": str(root),
    }
    done = subprocess.run(
        ["git", "-C", str(root), *args], env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def test_a_plan_made_at_another_commit_is_stale(converged: Repo) -> None:
    repo = converged
    try:
        git(repo.root, "init", "-q")
        git(repo.root, "add", "oauth2-sync.yaml", "clients")
        git(repo.root, "commit", "-qm", "first")
        first = git(repo.root, "rev-parse", "HEAD")
        repo.plan_document()
        assert json.loads((repo.root / "plan.json").read_text())["commit"] == first
        (repo.root / "NOTES").write_text("unrelated\n")
        git(repo.root, "add", "NOTES")
        git(repo.root, "commit", "-qm", "second")
        second = git(repo.root, "rev-parse", "HEAD")
        result = repo.run("apply", "plan.json")
    finally:
        shutil.rmtree(repo.root / ".git")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: Saved plan is stale: it was made at commit {first[:12]} and the "
        f"configuration is at commit {second[:12]}; {AGAIN}\n"
    )


def test_a_plan_file_of_format_version_1_is_refused(converged: Repo) -> None:
    repo = converged
    document = repo.plan_document()
    document["format_version"] = 1
    del document["settings_sha256"], document["files"]
    name = repo.write(document, "old.json")
    result = repo.run("apply", name)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: {name}: not a valid oauth2-sync plan file: format_version 1 records no "
        "digests of the configuration, so it cannot be re-checked before apply; make the "
        "plan again with this oauth2-sync\n"
    )


def test_a_plan_without_the_settings_digest_cannot_be_checked(converged: Repo) -> None:
    repo = converged
    document = repo.plan_document()
    document["settings_sha256"] = None
    name = repo.write(document)
    result = repo.run("apply", name)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "Error: Saved plan cannot be checked: it records no digest of the settings file it "
        f"was made under; {AGAIN}\n"
    )


def test_an_inflated_managed_count_does_not_lift_the_safety_shares(fresh: Repo) -> None:
    repo = fresh
    repo.create(Client("acme-extra", "Extra", "x@acme.example", "acme", False))
    planned = repo.run("plan", "--prune", "--out", "plan.json")
    assert planned.returncode == 2, planned.stderr
    document = json.loads((repo.root / "plan.json").read_text())
    assert [(c["action"], c["client_id"]) for c in document["changes"]] == [
        ("delete", "acme-extra"), ("delete", "acme-ops-cli"),
    ]
    document["summary"]["managed"] = 1000
    name = repo.write(document)
    result = repo.run("apply", name)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "Error: the plan exceeds the safety limits: deletes as a share of the 14 managed "
        "clients: 2 (14.3%) exceeds 10% (safety.max_deletes_percent). Raise the limit in "
        "the settings, or pass --allow-unsafe for this run\n"
    )
    assert {"acme-extra", "acme-ops-cli"} <= set(repo.clients())
