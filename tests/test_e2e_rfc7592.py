"""End to end against a real oidc-provider: the example repository, `oauth2-sync` as a
real process, a registry URL `rfc7592+http://127.0.0.1:PORT/reg`.

The examples hold clients a standard server cannot represent (the password grant, the
pure OAuth implicit grant): plan names them; the others are planned, applied, updated
in place and pruned; a change made out of band with a registration access token shows.
The secret sink names the client_id the server issued (an application authenticates
with it), and export writes files against which plan shows no changes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from support.oidc_peer import INITIAL_ACCESS_TOKEN, OidcPeer, running_peer
from support.refusing_dcr import running_refusing_server

from oauth2_sync.export import render_file
from oauth2_sync.model import Client

EXAMPLES = Path(__file__).parents[1] / "examples"
SUPPORTED = (
    "acme-mobile-app", "acme-web-portal", "globex-analytics", "globex-partner-portal",
    "initech-intranet",
)
GRANTS = "authorization_code, implicit, refresh_token"
STATE = Path(".oauth2-sync/rfc7592-state.json")


@pytest.fixture(scope="module")
def peer() -> Iterator[OidcPeer]:
    with running_peer() as server:
        yield server


class Repo:
    """A copy of the examples wired to the oidc-provider; every run's output is kept."""

    def __init__(self, root: Path, peer: OidcPeer) -> None:
        self.root = root
        self.peer = peer
        self.outputs: list[str] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
        self.env["NO_COLOR"] = "1"
        self.env["OAUTH2_SYNC_INITIAL_ACCESS_TOKEN"] = INITIAL_ACCESS_TOKEN

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "oauth2_sync", *args], cwd=self.root,
            env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=120,
            check=False,
        )
        self.outputs += [done.stdout, done.stderr]
        return done

    def state(self) -> dict[str, Any]:
        clients: dict[str, Any] = json.loads((self.root / STATE).read_text())["clients"]
        return clients

    def keep_only(self, wanted: tuple[str, ...]) -> None:
        """Rewrite the client files with only ``wanted`` clients (comments are lost)."""
        for path in (self.root / "clients").rglob("*.yaml"):
            data = yaml.safe_load(path.read_text())
            data["clients"] = [c for c in data["clients"] if c["client_id"] in wanted]
            path.write_text(yaml.safe_dump(data, sort_keys=False))

    def edit_file(self, client_id: str, **changes: Any) -> None:
        for path in (self.root / "clients").rglob("*.yaml"):
            data = yaml.safe_load(path.read_text())
            for entry in data["clients"]:
                if entry["client_id"] == client_id:
                    entry.update(changes)
                    path.write_text(yaml.safe_dump(data, sort_keys=False))
                    return
        raise AssertionError(f"{client_id} is in no file")

    def credentials(self) -> list[str]:
        """Every registration access token and client secret this repository knows."""
        found = [INITIAL_ACCESS_TOKEN]
        if (self.root / STATE).exists():
            found += [e["registration_access_token"] for e in self.state().values()]
        secrets = self.root / ".secrets"
        if secrets.exists():
            found += [json.loads(p.read_text())["client_secret"] for p in secrets.iterdir()]
        return found


@pytest.fixture
def repo(tmp_path: Path, peer: OidcPeer) -> Iterator[Repo]:
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(".oauth2-sync", ".secrets"))
    settings_path = root / "oauth2-sync.yaml"
    settings = yaml.safe_load(settings_path.read_text())
    settings["registry"] = {"url": peer.registry_url}
    settings_path.write_text(yaml.safe_dump(settings, sort_keys=False))
    made = Repo(root, peer)
    yield made
    # Whatever happened, no credential reached any output.
    seen = "\n".join(made.outputs)
    for credential in made.credentials():
        assert credential not in seen


def applied(repo: Repo) -> Repo:
    """The supported example clients created, and the others removed from the files."""
    targets = [arg for cid in SUPPORTED for arg in ("--target", cid)]
    assert repo.run("plan", *targets, "--out", "plan.json").returncode == 2
    done = repo.run("apply", "plan.json")
    assert done.returncode == 0, done.stderr
    repo.keep_only(SUPPORTED)
    return repo


PASSWORD = "the registry does not support grant type 'password' (it supports " + GRANTS + ")"
LEFT_OUT = [
    f"clients/analytics/globex.yaml:23:5: error: [registry-unsupported] client globex-etl: "
    f"{PASSWORD}",
    f"clients/payments/reporting.yaml:4:5: error: [registry-unsupported] client "
    f"acme-reporting: {PASSWORD}",
    f"clients/payments/reporting.yaml:14:5: error: [registry-unsupported] client "
    f"acme-billing-sync: {PASSWORD}",
    f"clients/platform/initech.yaml:4:5: error: [registry-unsupported] client "
    f"initech-tps-reports: {PASSWORD}",
    f"clients/platform/initech.yaml:25:5: error: [registry-unsupported] client "
    f"initech-batch: {PASSWORD}",
    "clients/platform/initech.yaml:35:5: error: [registry-unsupported] client "
    "initech-legacy-spa: grant type 'implicit' needs response type 'token', which the "
    "registry does not support (it supports code, code id_token, id_token, none)",
    f"clients/platform/initech.yaml:44:5: error: [registry-unsupported] client "
    f"initech-kiosk: {PASSWORD}",
]
LEFT_OUT_LINE = "7 clients are left out of this plan: the registry cannot hold them."


def test_the_clients_the_server_cannot_represent_are_plan_time_errors(repo: Repo) -> None:
    done = repo.run("plan")
    assert done.returncode == 1, done.stderr
    assert "Plan: 5 to add, 0 to change, 0 to destroy.\n" in done.stdout
    assert done.stdout.endswith(
        f"\nError: {LEFT_OUT_LINE}\n" + "".join(f"  {line}\n" for line in LEFT_OUT)
    )
    # In the formats meant for files and comments, the job's log names them too.
    done = repo.run("plan", "--format", "json")
    assert done.returncode == 1
    assert done.stderr.splitlines() == LEFT_OUT
    assert len(json.loads(done.stdout)["errors"]) == 7
    # Planning wrote nothing.
    assert not (repo.root / STATE).exists()


def test_apply_creates_the_supported_clients_and_names_the_others(repo: Repo) -> None:
    done = repo.run("apply", "--auto-approve")
    assert done.returncode == 1, done.stderr
    assert sorted(repo.state()) == sorted(SUPPORTED)
    assert done.stdout.endswith(
        "Apply complete: 5 created, 0 updated, 0 deleted.\n"
        f"Error: {LEFT_OUT_LINE}\n"
    )
    done = repo.run("plan")
    assert done.returncode == 1
    assert (
        "No changes. The registry matches the configuration, but for the clients left out "
        "below.\n" in done.stdout
    )
    assert done.stdout.endswith("".join(f"  {line}\n" for line in LEFT_OUT))


def test_apply_creates_the_supported_clients_then_plan_shows_no_changes(repo: Repo) -> None:
    applied(repo)
    assert sorted(repo.state()) == sorted(SUPPORTED)
    assert sorted(p.stem for p in (repo.root / ".secrets").iterdir()) == sorted(SUPPORTED)
    # The server chose its own client_ids; ours live in the state and in the metadata.
    for client_id, entry in repo.state().items():
        assert entry["client_id"] != client_id
        metadata = requests.get(
            entry["registration_client_uri"], timeout=10,
            headers={"Authorization": f"Bearer {entry['registration_access_token']}"},
        ).json()
        assert metadata["oauth2_sync_client_id"] == client_id
    done = repo.run("plan")
    assert done.returncode == 0, done.stderr
    assert "No changes. The registry matches the configuration." in done.stdout
    assert "5 unchanged; 0 outside the managed scope (not touched)." in done.stdout


def test_the_secret_sink_names_the_client_id_the_server_issued(repo: Repo) -> None:
    applied(repo)
    discovery = requests.get(
        f"{repo.peer.issuer}/.well-known/openid-configuration", timeout=10
    ).json()
    for client_id, entry in repo.state().items():
        delivered = json.loads((repo.root / ".secrets" / f"{client_id}.json").read_text())
        assert sorted(delivered) == ["client_id", "client_secret", "registry_client_id"]
        assert delivered["client_id"] == client_id
        assert delivered["registry_client_id"] == entry["client_id"] != client_id
        # What an application does with it: authenticate at the token endpoint. The
        # server checks the client before the grant, so a made-up authorization code gets
        # invalid_grant for the right credentials and invalid_client for ours.
        metadata = requests.get(
            entry["registration_client_uri"], timeout=10,
            headers={"Authorization": f"Bearer {entry['registration_access_token']}"},
        ).json()
        for user, status, error in (
            (delivered["registry_client_id"], 400, "invalid_grant"),
            (client_id, 401, "invalid_client"),
        ):
            answer = requests.post(
                discovery["token_endpoint"], timeout=10,
                auth=(user, delivered["client_secret"]),
                data={"grant_type": "authorization_code", "code": "made-up",
                      "redirect_uri": metadata["redirect_uris"][0]},
            )
            assert (answer.status_code, answer.json()["error"]) == (status, error), client_id


def test_a_rotation_the_server_cannot_make_leaves_nothing_pending(repo: Repo) -> None:
    applied(repo)
    client_id = SUPPORTED[0]
    done = repo.run("rotate-secret", client_id)
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == (
        f"{client_id}: failed: cannot rotate the secret of {client_id}: a standard (RFC 7592) "
        "registry has no secret rotation; rotate it on the server, or delete the client and "
        "let apply create it again (it gets a new registry client_id)"
    )
    # Nothing was rotated: no plan may say a rotation stopped half-way.
    planned = repo.run("plan")
    assert (planned.returncode, planned.stderr) == (0, "")
    assert not (repo.root / ".oauth2-sync" / "pending-secrets.jsonl").exists()


def test_export_into_an_empty_folder_then_plan_shows_no_changes(repo: Repo) -> None:
    applied(repo)
    declared = {
        c["client_id"]: c
        for path in (repo.root / "clients").rglob("*.yaml")
        for c in yaml.safe_load(path.read_text())["clients"]
    }
    shutil.rmtree(repo.root / "clients")
    (repo.root / "clients").mkdir()
    # Without client files a pruning plan would delete every client.
    pruning = repo.run("plan", "--prune")
    assert pruning.returncode == 2
    assert "Plan: 0 to add, 0 to change, 5 to destroy." in pruning.stdout
    done = repo.run("export")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "Wrote clients/payments/acme-mobile-app.yaml (acme-mobile-app)",
        "Wrote clients/payments/acme-web-portal.yaml (acme-web-portal)",
        "Wrote clients/analytics/globex-analytics.yaml (globex-analytics)",
        "Wrote clients/analytics/globex-partner-portal.yaml (globex-partner-portal)",
        "Wrote clients/platform/initech-intranet.yaml (initech-intranet)",
        "Exported 5 of 5 clients to .: 5 new, 0 overwritten, 0 already declared "
        "(skipped), 0 failed.",
    ]
    assert sorted(
        str(p.relative_to(repo.root)) for p in (repo.root / "clients").rglob("*") if p.is_file()
    ) == [
        "clients/analytics/globex-analytics.yaml", "clients/analytics/globex-partner-portal.yaml",
        "clients/payments/acme-mobile-app.yaml", "clients/payments/acme-web-portal.yaml",
        "clients/platform/initech-intranet.yaml",
    ]
    # Every file is the client the examples declared, in the normal form that
    # test_export.py pins to the letter (schema comment, header, lifetimes in their
    # shortest spelling, defaults spelled out), and holds nothing of the server's: no
    # registry client_id, no credential.
    server_ids = [entry["client_id"] for entry in repo.state().values()]
    for path in (repo.root / "clients").rglob("*.yaml"):
        relative = str(path.relative_to(repo.root))
        text = path.read_text()
        assert text == render_file(Client.from_document(declared[path.stem]), relative)
        assert text.startswith(
            "# yaml-language-server: $schema=../../schemas/clients.schema.json\n"
            "# Exported by `oauth2-sync export`: this client as the registry held it.\n"
        )
        assert not any(server_id in text for server_id in server_ids)
        assert not any(credential in text for credential in repo.credentials())
    planned = repo.run("plan")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "No changes. The registry matches the configuration." in planned.stdout
    assert repo.run("plan", "--prune").returncode == 0
    assert repo.run("fmt", "--check").returncode == 0
    assert repo.run("drift").returncode == 0


def test_editing_a_redirect_uri_updates_in_place(repo: Repo) -> None:
    applied(repo)
    before = repo.state()["acme-web-portal"]["client_id"]
    repo.edit_file("acme-web-portal", redirect_uris=["https://portal.acme.example/oauth2/cb"])
    planned = repo.run("plan")
    assert planned.returncode == 2
    assert '~ client "acme-web-portal"' in planned.stdout
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout
    done = repo.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stderr
    assert "acme-web-portal: updated (redirect_uris)" in done.stdout
    after = repo.state()["acme-web-portal"]
    assert after["client_id"] == before
    metadata = requests.get(
        after["registration_client_uri"], timeout=10,
        headers={"Authorization": f"Bearer {after['registration_access_token']}"},
    ).json()
    assert metadata["redirect_uris"] == ["https://portal.acme.example/oauth2/cb"]
    assert repo.run("plan").returncode == 0


def test_a_change_made_out_of_band_shows_in_drift_and_the_plan(repo: Repo) -> None:
    applied(repo)
    entry = repo.state()["globex-analytics"]
    headers = {"Authorization": f"Bearer {entry['registration_access_token']}"}
    current = requests.get(entry["registration_client_uri"], headers=headers, timeout=10).json()
    for field in ("registration_access_token", "registration_client_uri",
                  "client_secret_expires_at", "client_id_issued_at"):
        del current[field]
    current["client_name"] = "Renamed by hand"
    changed = requests.put(
        entry["registration_client_uri"], headers=headers, json=current, timeout=10
    )
    assert changed.status_code == 200
    drifted = repo.run("drift", "--format", "json")
    assert drifted.returncode == 2, drifted.stderr
    report = json.loads(drifted.stdout)
    assert [(c["kind"], c["client_id"], [f["field"] for f in c["fields"]]) for c in
            report["clients"]] == [("changed", "globex-analytics", ["name"])]
    assert report["clients"][0]["fields"][0]["after"] == "Renamed by hand"
    planned = repo.run("plan")
    assert planned.returncode == 2
    assert '~ client "globex-analytics"' in planned.stdout
    assert '"Renamed by hand" -> "Globex analytics dashboards"' in planned.stdout
    assert repo.run("apply", "--auto-approve").returncode == 0
    assert repo.run("plan").returncode == 0
    assert repo.run("drift").returncode == 0


def test_prune_deletes_a_client_removed_from_the_files(repo: Repo) -> None:
    applied(repo)
    gone = repo.state()["globex-partner-portal"]
    repo.keep_only(tuple(c for c in SUPPORTED if c != "globex-partner-portal"))
    planned = repo.run("plan", "--prune")
    assert planned.returncode == 2
    assert "Plan: 0 to add, 0 to change, 1 to destroy." in planned.stdout
    done = repo.run("apply", "--prune", "--auto-approve")
    assert done.returncode == 0, done.stderr
    assert "globex-partner-portal: deleted" in done.stdout
    assert "globex-partner-portal" not in repo.state()
    read = requests.get(
        gone["registration_client_uri"], timeout=10,
        headers={"Authorization": f"Bearer {gone['registration_access_token']}"},
    )
    assert read.status_code == 401
    assert repo.run("plan", "--prune").returncode == 0


def test_a_lost_state_file_is_rebuilt_with_adopt(repo: Repo) -> None:
    applied(repo)
    entries = repo.state()
    (repo.root / STATE).unlink()
    # Without the state the registry looks empty: plan would create everything again.
    assert "Plan: 5 to add" in repo.run("plan").stdout
    for client_id, entry in entries.items():
        done = repo.run(
            "adopt", client_id, "--registration-client-uri", entry["registration_client_uri"],
            env={"OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN": entry["registration_access_token"]},
        )
        assert done.returncode == 0, done.stderr
        partner = client_id.split("-", 1)[0]
        assert done.stdout == f"Adopted {client_id} (partner {partner}).\n"
    assert repo.state() == entries
    assert repo.run("plan").returncode == 0


def test_adopt_needs_the_token_outside_argv(repo: Repo) -> None:
    done = repo.run(
        "adopt", "acme-web-portal", "--registration-client-uri", f"{repo.peer.issuer}/reg/x"
    )
    assert done.returncode == 1
    assert done.stderr == (
        "Error: adopt needs the client's registration access token in "
        "OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN (or --registration-access-token-file)\n"
    )


def test_adopt_reads_the_token_from_a_file(repo: Repo) -> None:
    applied(repo)
    entry = repo.state()["initech-intranet"]
    token_file = repo.root / "token.txt"
    token_file.write_text(entry["registration_access_token"] + "\n")
    done = repo.run(
        "adopt", "initech-intranet",
        "--registration-client-uri", entry["registration_client_uri"],
        "--registration-access-token-file", str(token_file),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Adopted initech-intranet (partner initech).\n"


def test_a_client_deleted_on_the_server_is_isolated_then_forgotten(repo: Repo) -> None:
    applied(repo)
    entry = repo.state()["acme-mobile-app"]
    deleted = requests.delete(
        entry["registration_client_uri"], timeout=10,
        headers={"Authorization": f"Bearer {entry['registration_access_token']}"},
    )
    assert deleted.status_code == 204
    reason = (
        "reading client acme-mobile-app: the registry refused the registration access token "
        f"of acme-mobile-app (registry client_id {entry['client_id']}): the client was "
        "deleted on the server, or its token was revoked or rotated elsewhere. If it still "
        "exists, run `oauth2-sync adopt acme-mobile-app --registration-client-uri "
        f"{entry['registration_client_uri']}` with its current token in "
        "OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN; if it is gone, run "
        "`oauth2-sync forget acme-mobile-app`"
    )
    # The others are still planned and applied; this one is left out with its error.
    repo.edit_file("initech-intranet", name="Initech intranet, renamed")
    failed = repo.run("plan")
    assert failed.returncode == 1, failed.stderr
    assert "Plan: 0 to add, 1 to change, 0 to destroy.\n" in failed.stdout
    assert failed.stdout.endswith(
        "Error: 1 client is left out of this plan: the registry refused to show it.\n"
        f"  clients/payments/apps.yaml:2:3: error: [registry-unreachable] {reason}\n"
    )
    done = repo.run("apply", "--auto-approve")
    assert done.returncode == 1, done.stderr
    assert "initech-intranet: updated" in done.stdout
    drifted = repo.run("drift", "--format", "json")
    assert drifted.returncode == 2, drifted.stderr
    report = json.loads(drifted.stdout)
    assert report["summary"]["unreachable"] == 1
    assert [(c["kind"], c["client_id"], c["reason"]) for c in report["clients"]] == [
        ("unreachable", "acme-mobile-app", reason)
    ]
    text = repo.run("drift")
    assert text.returncode == 2
    assert "Drift: 0 changed, 0 missing, 0 undeclared, 1 unreachable." in text.stdout
    forgot = repo.run("forget", "acme-mobile-app")
    assert forgot.returncode == 0, forgot.stderr
    assert forgot.stdout == "Forgot acme-mobile-app; the next apply creates it again.\n"
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in repo.run("plan").stdout
    again = repo.run("forget", "acme-mobile-app")
    assert again.returncode == 1
    assert again.stderr == "Error: the state file does not know acme-mobile-app\n"


def test_a_server_that_lost_every_client_is_said_once(repo: Repo) -> None:
    applied(repo)
    for entry in repo.state().values():
        requests.delete(
            entry["registration_client_uri"], timeout=10,
            headers={"Authorization": f"Bearer {entry['registration_access_token']}"},
        )
    for command in ("plan", "drift"):
        done = repo.run(command)
        assert done.returncode == 1, done.stdout
        assert done.stderr == (
            "Error: the registry refused all 5 registrations of the state file "
            f"{STATE}: it has most likely lost its clients (a restart of a server that keeps "
            "them in memory, or a new database). If so, remove the state file and apply "
            "creates them again; if they still exist, run `oauth2-sync adopt CLIENT_ID "
            "--registration-client-uri URI` for each with its current token in "
            "OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN\n"
        )
    (repo.root / STATE).unlink()
    assert "Plan: 5 to add, 0 to change, 0 to destroy." in repo.run("plan").stdout


# --- refusals no real server makes: 403, 404, and 400 access_denied ----------------------

REFUSALS = {
    "403": (403, {"error": "access_denied"}),
    "404": (404, {"error": "not_found"}),
    "400-access_denied": (400, {"error": "access_denied"}),
}


def _write_settings(root: Path, url: str, *, writes: bool) -> None:
    """Settings for one team (partner acme, every client file) against ``url``; with
    ``writes``, no safety share limit and a secrets folder, for apply."""
    settings: dict[str, Any] = {
        "registry": {"url": url},
        "clients": {"paths": ["clients/**/*.yaml"]},
        "teams": {"payments": {"paths": ["clients/**"], "partners": ["acme"]}},
    }
    if writes:
        settings |= {"safety": {"max_changes_percent": 100}, "secrets": {"directory": ".secrets"}}
    (root / "oauth2-sync.yaml").write_text(yaml.safe_dump(settings))


@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_one_refused_registration_uri_is_isolated(tmp_path: Path, refusal: str) -> None:
    """A server (or a gateway) answers one client's registration URI with 403, 404 or
    400 access_denied: that client is left out with its error, the others are planned
    and applied, and drift reports it as unreachable with the way back."""
    with running_refusing_server() as server:
        _write_settings(tmp_path, server.registry_url, writes=True)
        clients = [
            {"client_id": f"acme-{name}", "name": f"Acme {name}", "email": "ops@acme.example",
             "partner": "acme", "scopes": ["read"], "grant_types": ["client_credentials"]}
            for name in ("a", "b", "c")
        ]
        (tmp_path / "clients").mkdir()
        files = tmp_path / "clients" / "acme.yaml"
        files.write_text(yaml.safe_dump({"clients": clients}, sort_keys=False))
        repo = Repo(tmp_path, None)  # type: ignore[arg-type]  # (no oidc-provider here)
        created = repo.run("apply", "--auto-approve")
        assert created.returncode == 0, created.stdout + created.stderr
        assert repo.run("plan").returncode == 0
        entry = repo.state()["acme-b"]
        server.refuse(entry["client_id"], *REFUSALS[refusal])
        clients[2]["name"] = "Acme c, renamed"
        files.write_text(yaml.safe_dump({"clients": clients}, sort_keys=False))
        recovery = (
            "If it still exists, run `oauth2-sync adopt acme-b --registration-client-uri "
            f"{entry['registration_client_uri']}` with its current token in "
            "OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN; if it is gone, run "
            "`oauth2-sync forget acme-b`"
        )
        reason = f"reading client acme-b: {REASONS[refusal](entry['client_id'])}. {recovery}"
        planned = repo.run("plan")
        assert planned.returncode == 1, planned.stdout + planned.stderr
        assert "Plan: 0 to add, 1 to change, 0 to destroy.\n" in planned.stdout
        assert planned.stdout.endswith(
            "Error: 1 client is left out of this plan: the registry refused to show it.\n"
            f"  clients/acme.yaml:10:3: error: [registry-unreachable] {reason}\n"
        )
        done = repo.run("apply", "--auto-approve")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "acme-c: updated (name)" in done.stdout
        assert server.clients[repo.state()["acme-c"]["client_id"]]["client_name"] == (
            "Acme c, renamed"
        )
        drifted = repo.run("drift", "--format", "json")
        assert drifted.returncode == 2, drifted.stdout + drifted.stderr
        assert [(c["kind"], c["client_id"], c["reason"])
                for c in json.loads(drifted.stdout)["clients"]] == [
            ("unreachable", "acme-b", reason)
        ]
    for token in [e["registration_access_token"] for e in repo.state().values()]:
        assert token not in "\n".join(repo.outputs)


REASONS = {
    "403": lambda server_id: (
        f"the registry refused the registration access token of acme-b (registry client_id "
        f"{server_id}): the client was deleted on the server, or its token was revoked or "
        "rotated elsewhere"
    ),
    "404": lambda server_id: (
        f"the registry has no client {server_id} (404): it was deleted on the server"
    ),
}
REASONS["400-access_denied"] = REASONS["403"]


def test_a_public_client_never_shows_a_secret_the_server_issues_anyway(tmp_path: Path) -> None:
    """A server that issues secrets to public clients too (Canaille): the secret reaches
    no sink, state file, journal or output; a client made confidential again is told to
    get a new secret (the registry may hold its old one, or one nobody received)."""
    with running_refusing_server() as server:
        server.secret_for_public = True
        _write_settings(tmp_path, server.registry_url, writes=True)
        spa = {"client_id": "acme-spa", "name": "Acme SPA", "email": "ops@acme.example",
               "partner": "acme", "scopes": ["read"], "grant_types": ["authorization_code"],
               "redirect_uris": ["https://spa.acme.example/cb"],
               "token_endpoint_auth_method": "none"}
        (tmp_path / "clients").mkdir()
        files = tmp_path / "clients" / "acme.yaml"
        files.write_text(yaml.safe_dump({"clients": [spa]}, sort_keys=False))
        repo = Repo(tmp_path, None)  # type: ignore[arg-type]  # (no oidc-provider here)
        created = repo.run("apply", "--auto-approve")
        assert created.returncode == 0, created.stdout + created.stderr
        server_id = repo.state()["acme-spa"]["client_id"]
        assert f"secret-of-{server_id}" in json.dumps(server.answer(server_id))
        del spa["token_endpoint_auth_method"]  # confidential again
        files.write_text(yaml.safe_dump({"clients": [spa]}, sort_keys=False))
        flipped = repo.run("apply", "--auto-approve")
        assert flipped.returncode == 0, flipped.stdout + flipped.stderr
        assert (
            "acme-spa: updated (token_endpoint_auth_method); it is confidential again and "
            "nobody holds a current secret: run `oauth2-sync rotate-secret acme-spa`"
        ) in flipped.stdout
        said = created.stdout + created.stderr + flipped.stdout + flipped.stderr
        kept = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()
                       and "clients" not in p.parts)
        assert f"secret-of-{server_id}" not in said + kept
        assert not (tmp_path / ".secrets").exists() or not any((tmp_path / ".secrets").iterdir())


def test_a_hostile_discovery_document_is_one_short_line_per_client(tmp_path: Path) -> None:
    """200,000 scopes (listed up to 20), entries that are no strings (ignored), a
    grant list that is no list (the RFC 8414 default)."""
    with running_refusing_server() as server:
        server.extra_discovery = {
            "scopes_supported": [f"s{i:06}" for i in range(200_000)] + [5, None, {"a": 1}],
            "grant_types_supported": 7,
        }
        _write_settings(tmp_path, server.registry_url, writes=False)
        (tmp_path / "clients").mkdir()
        (tmp_path / "clients" / "acme.yaml").write_text(yaml.safe_dump({"clients": [
            {"client_id": "acme-a", "name": "A", "email": "ops@acme.example", "partner": "acme",
             "scopes": ["read"], "grant_types": ["authorization_code"],
             "redirect_uris": ["https://a.acme.example/cb"]}]}, sort_keys=False))
        planned = Repo(tmp_path, None).run("plan")  # type: ignore[arg-type]
    first = ", ".join(f"s{i:06}" for i in range(20))
    assert (planned.returncode, planned.stderr) == (1, "")
    assert planned.stdout.endswith(
        "  clients/acme.yaml:2:3: error: [registry-unsupported] client acme-a: the registry "
        f"does not support scope 'read' (it supports {first} and 199980 more)\n"
    )
