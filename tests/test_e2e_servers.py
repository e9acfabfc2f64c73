"""The same end-to-end scenarios on every real standard server (issue #18): oidc-provider
9.13.3 (Node.js, tests/peers/oidc-provider) in three configurations (as we configure it;
rotating the registration access token on every update; the extension fields declared
under names its administrator chose) and Canaille 0.3.6 (Python, Authlib,
tests/peers/canaille), each started on 127.0.0.1 by the tests, `oauth2-sync` run as a
real process against a repository of three clients (and a public one, on its own).

Each server gets the clients it can hold, written in its own vocabulary: oidc-provider
publishes `read` and `write` and keeps the `oauth2_sync_*` extension fields; Canaille
publishes only OpenID scopes, supports `client_credentials`, keeps no unknown metadata
(`registry.capabilities.fields` all null) and refuses custom-scheme redirect URIs. The
scenarios are the same: validate, plan, apply, `No changes.`; the server holds exactly
the files; the delivered pair authenticates; an edit applies in place; an out-of-band
change shows in drift and apply restores it; prune deletes; export then plan shows no
changes; a client deleted on the server is left out on its own; a public client gets
no secret, on any server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from support.canaille_peer import CanaillePeer
from support.oidc_peer import INITIAL_ACCESS_TOKEN, OidcPeer

STATE = Path(".oauth2-sync/rfc7592-state.json")
SERVER_OWNED = ("registration_access_token", "registration_client_uri",
                "client_secret_expires_at", "client_id_issued_at")


@dataclass(frozen=True)
class Server:
    """One real server and what the scenarios need to know about it."""

    name: str
    registry_url: str
    token_endpoint: str
    env: dict[str, str]
    settings: dict[str, Any]
    scopes: tuple[list[str], list[str], list[str]]
    """The scopes of the three clients (service, portal, dashboard)."""
    service_grants: list[str]
    service_redirects: list[str] = field(default_factory=list)
    rotates: bool = False
    """Whether every update (ours or anyone's) rotates the registration access token."""
    partner_field: str | None = None
    """The server's metadata name for our partner field (``None``: not kept)."""

    def authenticates(self, client_id: str, secret: str) -> bool:
        """Whether the pair authenticates at the token endpoint. Canaille: a real
        client_credentials grant. oidc-provider (no client_credentials here): the server
        checks the client before the grant, so a made-up code gets invalid_grant for the
        right pair and invalid_client for a wrong one."""
        if "client_credentials" in self.service_grants:
            answer = requests.post(self.token_endpoint, auth=(client_id, secret), timeout=10,
                                   data={"grant_type": "client_credentials"})
            return answer.status_code == 200 and bool(answer.json().get("access_token"))
        answer = requests.post(
            self.token_endpoint, auth=(client_id, secret), timeout=10,
            data={"grant_type": "authorization_code", "code": "made-up",
                  "redirect_uri": self.service_redirects[0]},
        )
        return (answer.status_code, answer.json().get("error")) == (400, "invalid_grant")


def refused(answer: requests.Response) -> bool:
    """A registration read refused: RFC 7592's 401, Canaille's 400 access_denied."""
    if answer.status_code == 401:
        return True
    return answer.status_code == 400 and answer.json().get("error") == "access_denied"


RENAMED = {
    "client_id": "client_ref", "partner": "partner",
    "restrict_to_partner_users": "partner_users_only",
    "access_token_ttl": "access_token_ttl", "refresh_token_ttl": "refresh_token_ttl",
}
"""Our extension fields as an administrator who never heard of oauth2-sync named them."""
OIDC_VARIANTS: dict[str, dict[str, Any]] = {
    "oidc-provider": {},
    "oidc-provider-rotation": {"rotate_registration_access_token": True},
    "oidc-provider-renamed": {
        "extra_names": {f"oauth2_sync_{ours}": theirs for ours, theirs in RENAMED.items()},
    },
}


@pytest.fixture(scope="module")
def oidc_providers() -> Iterator[dict[str, OidcPeer]]:
    """One oidc-provider per configuration, started when first asked for."""
    started: dict[str, OidcPeer] = {}
    yield started
    for peer in started.values():
        peer.stop()


@pytest.fixture(params=[*OIDC_VARIANTS, "canaille"])
def server(request: pytest.FixtureRequest, oidc_providers: dict[str, OidcPeer]) -> Server:
    """Each real server in turn (oidc-provider started here, Canaille per session)."""
    if request.param == "canaille":
        canaille = request.getfixturevalue("canaille")
        assert isinstance(canaille, CanaillePeer)  # (and the `peer` mark finds the name)
        return Server(
            name="canaille", registry_url=canaille.registry_url,
            token_endpoint=canaille.token_endpoint, env={},
            # Canaille keeps no metadata it does not know: our fields live in the files
            # and the state file only.
            settings={"capabilities": {"fields": {
                "client_id": None, "partner": None, "restrict_to_partner_users": None,
                "access_token_ttl": None, "refresh_token_ttl": None,
            }}},
            scopes=(["openid", "profile"], ["email", "openid"], ["openid"]),
            service_grants=["client_credentials"],
        )
    name = request.param
    if name not in oidc_providers:
        oidc_providers[name] = OidcPeer.start(**OIDC_VARIANTS[name])
    oidc = oidc_providers[name]
    renamed = name == "oidc-provider-renamed"
    return Server(
        name=name, registry_url=oidc.registry_url,
        token_endpoint=f"{oidc.issuer}/token",
        env={"OAUTH2_SYNC_INITIAL_ACCESS_TOKEN": INITIAL_ACCESS_TOKEN},
        settings={"capabilities": {"fields": RENAMED}} if renamed else {},
        scopes=(["read"], ["read", "write"], ["read"]),
        service_grants=["authorization_code"],
        service_redirects=["https://service.acme.example/callback"],
        rotates=name == "oidc-provider-rotation",
        partner_field="partner" if renamed else "oauth2_sync_partner",
    )


def client_files(server: Server) -> dict[str, list[dict[str, Any]]]:
    """The three clients, by file, in the server's vocabulary."""
    service: dict[str, Any] = {
        "client_id": "acme-service", "name": "Acme batch service",
        "email": "ops@acme.example", "partner": "acme", "scopes": server.scopes[0],
        "grant_types": server.service_grants,
    }
    if server.service_redirects:
        service["redirect_uris"] = server.service_redirects
    return {
        "clients/acme/clients.yaml": [service, {
            "client_id": "acme-portal", "name": "Acme customer portal",
            "email": "portal@acme.example", "partner": "acme", "scopes": server.scopes[1],
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": ["https://portal.acme.example/callback"],
        }],
        "clients/globex/clients.yaml": [{
            "client_id": "globex-dashboard", "name": "Globex dashboard",
            "email": "data@globex.example", "partner": "globex", "scopes": server.scopes[2],
            "grant_types": ["authorization_code"],
            "redirect_uris": ["https://dashboard.globex.example/callback"],
        }],
    }


class Repo:
    """A config repository wired to one server; every run's output is kept."""

    def __init__(self, root: Path, server: Server) -> None:
        self.root = root
        self.server = server
        self.outputs: list[str] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
        self.env.update(NO_COLOR="1", **server.env)
        settings = {
            "registry": {"url": server.registry_url, **server.settings},
            "clients": {"paths": ["clients/**/*.yaml"]},
            "teams": {
                "payments": {"paths": ["clients/acme/**"], "partners": ["acme"]},
                "analytics": {"paths": ["clients/globex/**"], "partners": ["globex"]},
            },
            "safety": {"max_changes_percent": 100, "max_deletes_percent": 100},
            "secrets": {"directory": ".secrets"},
        }
        (root / "oauth2-sync.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
        for name, clients in client_files(server).items():
            self.write(name, clients)

    def write(self, name: str, clients: list[dict[str, Any]]) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({"clients": clients}, sort_keys=False))

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "oauth2_sync", *args], cwd=self.root,
            env={**self.env, **env},
            capture_output=True, text=True, timeout=120, check=False,
        )
        self.outputs += [done.stdout, done.stderr]
        return done

    def state(self) -> dict[str, Any]:
        clients: dict[str, Any] = json.loads((self.root / STATE).read_text())["clients"]
        return clients

    def read(self, client_id: str) -> requests.Response:
        """The client's registration, read with its own token (RFC 7592 GET)."""
        entry = self.state()[client_id]
        return requests.get(entry["registration_client_uri"], timeout=10, headers={
            "Authorization": f"Bearer {entry['registration_access_token']}"})

    def declared(self) -> dict[str, dict[str, Any]]:
        return {c["client_id"]: c for clients in client_files(self.server).values()
                for c in clients}

    def credentials(self) -> list[str]:
        found = [INITIAL_ACCESS_TOKEN]
        if (self.root / STATE).exists():
            found += [e["registration_access_token"] for e in self.state().values()]
        secrets = self.root / ".secrets"
        if secrets.exists():
            found += [json.loads(p.read_text())["client_secret"] for p in secrets.iterdir()]
        return found


@pytest.fixture
def repo(tmp_path: Path, server: Server) -> Iterator[Repo]:
    made = Repo(tmp_path, server)
    yield made
    # Whatever happened, no credential reached any output.
    seen = "\n".join(made.outputs)
    for credential in made.credentials():
        assert credential not in seen


def applied(repo: Repo) -> Repo:
    done = repo.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    return repo


def holds(metadata: dict[str, Any], client: dict[str, Any]) -> None:
    """The registration says what the file says, field by field."""
    assert metadata["client_name"] == client["name"]
    assert metadata["contacts"] == [client["email"]]
    assert sorted(metadata["scope"].split()) == sorted(client["scopes"])
    assert sorted(metadata["grant_types"]) == sorted(client["grant_types"])
    assert sorted(metadata["redirect_uris"]) == sorted(client.get("redirect_uris", []))


def test_validate_plan_apply_then_no_changes(repo: Repo) -> None:
    done = repo.run("validate")
    assert (done.returncode, done.stdout) == (0, "2 files, 3 clients: 0 errors, 0 warnings.\n")
    planned = repo.run("plan")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "Plan: 3 to add, 0 to change, 0 to destroy." in planned.stdout
    done = repo.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Apply complete: 3 created, 0 updated, 0 deleted." in done.stdout
    again = repo.run("plan")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes. The registry matches the configuration." in again.stdout


def test_the_server_holds_exactly_the_files(repo: Repo) -> None:
    applied(repo)
    declared = repo.declared()
    assert sorted(repo.state()) == sorted(declared)
    for client_id, client in declared.items():
        answer = repo.read(client_id)
        assert answer.status_code == 200, answer.text
        holds(answer.json(), client)
        assert answer.json()["client_id"] == repo.state()[client_id]["client_id"]
        if repo.server.partner_field:  # under the name the server declared
            assert answer.json()[repo.server.partner_field] == client["partner"]


def test_the_delivered_pair_authenticates_at_the_token_endpoint(repo: Repo) -> None:
    applied(repo)
    delivered = json.loads((repo.root / ".secrets" / "acme-service.json").read_text())
    assert sorted(delivered) == ["client_id", "client_secret", "registry_client_id"]
    assert delivered["registry_client_id"] == repo.state()["acme-service"]["client_id"]
    assert repo.server.authenticates(delivered["registry_client_id"], delivered["client_secret"])
    assert not repo.server.authenticates(delivered["registry_client_id"], "wrong-secret")
    assert not repo.server.authenticates("acme-service", delivered["client_secret"])


def test_an_edit_applies_in_place(repo: Repo) -> None:
    applied(repo)
    before = repo.state()["acme-portal"]["client_id"]
    clients = client_files(repo.server)["clients/acme/clients.yaml"]
    clients[1]["name"] = "Acme portal (new)"
    clients[1]["redirect_uris"] = ["https://portal.acme.example/oauth2/cb"]
    repo.write("clients/acme/clients.yaml", clients)
    planned = repo.run("plan")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert '~ client "acme-portal"' in planned.stdout
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout
    done = repo.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "acme-portal: updated (name, redirect_uris)" in done.stdout
    assert repo.state()["acme-portal"]["client_id"] == before
    holds(repo.read("acme-portal").json(), clients[1])
    assert repo.run("plan").returncode == 0


def test_an_out_of_band_change_shows_in_drift_and_apply_restores_it(repo: Repo) -> None:
    applied(repo)
    entry = repo.state()["globex-dashboard"]
    current = repo.read("globex-dashboard").json()
    # What an administrator does by hand: send back what the server holds, changed.
    # (Canaille refuses its own null fields back, so they are left out, as RFC 7592 allows.)
    update = {k: v for k, v in current.items() if k not in SERVER_OWNED and v is not None}
    update["client_name"] = "Renamed by hand"
    changed = requests.put(entry["registration_client_uri"], json=update, timeout=10,
                           headers={"Authorization": f"Bearer {entry['registration_access_token']}"})
    assert changed.status_code == 200, changed.text
    if repo.server.rotates:
        # The server rotated the token on that update: our copy no longer works, so the
        # client is unreachable until adopted with the new one (the recovery drift names).
        new_token = changed.json()["registration_access_token"]
        assert new_token != entry["registration_access_token"]
        unreachable = repo.run("drift", "--format", "json")
        assert unreachable.returncode == 2, unreachable.stdout + unreachable.stderr
        assert [(c["kind"], c["client_id"]) for c in json.loads(unreachable.stdout)["clients"]
                ] == [("unreachable", "globex-dashboard")]
        adopted = repo.run("adopt", "globex-dashboard", "--registration-client-uri",
                           entry["registration_client_uri"],
                           OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN=new_token)
        assert adopted.returncode == 0, adopted.stdout + adopted.stderr
        assert adopted.stdout == "Adopted globex-dashboard (partner globex).\n"
    drifted = repo.run("drift", "--format", "json")
    assert drifted.returncode == 2, drifted.stdout + drifted.stderr
    report = json.loads(drifted.stdout)
    assert [(c["kind"], c["client_id"], [f["field"] for f in c["fields"]])
            for c in report["clients"]] == [("changed", "globex-dashboard", ["name"])]
    assert report["clients"][0]["fields"][0]["after"] == "Renamed by hand"
    done = repo.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "globex-dashboard: updated (name)" in done.stdout
    assert repo.read("globex-dashboard").json()["client_name"] == "Globex dashboard"
    assert repo.run("drift").returncode == 0


def test_prune_deletes_a_client_removed_from_the_files(repo: Repo) -> None:
    applied(repo)
    gone = repo.state()["globex-dashboard"]
    (repo.root / "clients/globex/clients.yaml").unlink()
    planned = repo.run("plan", "--prune")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "Plan: 0 to add, 0 to change, 1 to destroy." in planned.stdout
    done = repo.run("apply", "--prune", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "globex-dashboard: deleted" in done.stdout
    assert "globex-dashboard" not in repo.state()
    assert refused(requests.get(gone["registration_client_uri"], timeout=10, headers={
        "Authorization": f"Bearer {gone['registration_access_token']}"}))
    assert repo.run("plan", "--prune").returncode == 0


def test_export_then_plan_shows_no_changes(repo: Repo) -> None:
    applied(repo)
    shutil.rmtree(repo.root / "clients")
    (repo.root / "clients").mkdir()
    done = repo.run("export")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[-1] == (
        "Exported 3 of 3 clients to .: 3 new, 0 overwritten, 0 already declared (skipped), "
        "0 failed."
    )
    server_ids = [entry["client_id"] for entry in repo.state().values()]
    for path in (repo.root / "clients").rglob("*.yaml"):
        text = path.read_text()
        assert not any(server_id in text for server_id in server_ids)
    planned = repo.run("plan", "--prune")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "No changes. The registry matches the configuration." in planned.stdout
    assert repo.run("drift").returncode == 0


def test_a_client_deleted_on_the_server_is_left_out_on_its_own(repo: Repo) -> None:
    applied(repo)
    deleted = repo.state()["acme-service"]
    answer = requests.delete(deleted["registration_client_uri"], timeout=10, headers={
        "Authorization": f"Bearer {deleted['registration_access_token']}"})
    assert answer.status_code == 204
    # Another client changes meanwhile: it is still planned and applied.
    clients = client_files(repo.server)["clients/globex/clients.yaml"]
    clients[0]["name"] = "Globex dashboard (new)"
    repo.write("clients/globex/clients.yaml", clients)
    refusal = (
        "the registry refused the registration access token of acme-service (registry "
        f"client_id {deleted['client_id']})"
    )
    planned = repo.run("plan")
    assert planned.returncode == 1, planned.stdout + planned.stderr
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in planned.stdout
    assert refusal in planned.stdout + planned.stderr
    done = repo.run("apply", "--auto-approve")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "globex-dashboard: updated (name)" in done.stdout
    assert repo.read("globex-dashboard").json()["client_name"] == "Globex dashboard (new)"
    drifted = repo.run("drift", "--format", "json")
    assert drifted.returncode == 2, drifted.stdout + drifted.stderr
    report = json.loads(drifted.stdout)
    assert [(c["kind"], c["client_id"]) for c in report["clients"]] == [
        ("unreachable", "acme-service")
    ]
    text = repo.run("drift")
    assert "oauth2-sync adopt acme-service --registration-client-uri" in text.stdout
    assert "oauth2-sync forget acme-service" in text.stdout


def public_client(server: Server) -> dict[str, Any]:
    """A single-page app: public (no secret), authorization code with PKCE."""
    return {
        "client_id": "acme-spa", "name": "Acme single-page app", "email": "web@acme.example",
        "partner": "acme", "scopes": server.scopes[2], "grant_types": ["authorization_code"],
        "redirect_uris": ["https://spa.acme.example/callback"],
        "token_endpoint_auth_method": "none",
    }


def test_a_public_client_gets_no_secret(repo: Repo) -> None:
    applied(repo)
    spa = public_client(repo.server)
    repo.write("clients/acme/spa.yaml", [spa])
    planned = repo.run("plan")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert '+ token_endpoint_auth_method = "none"' in planned.stdout
    done = repo.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    server_id = repo.state()["acme-spa"]["client_id"]
    assert (f"acme-spa: created (public client: no secret; the registry's client_id is "
            f"{server_id})") in done.stdout
    assert sorted(p.name for p in (repo.root / ".secrets").iterdir()) == [
        "acme-portal.json", "acme-service.json", "globex-dashboard.json"]
    registration = repo.read("acme-spa").json()
    holds(registration, spa)
    assert registration["token_endpoint_auth_method"] == "none"
    # Canaille issues a secret even to a public client: it must be nowhere on our side.
    issued = registration.get("client_secret")
    assert bool(issued) == (repo.server.name == "canaille")
    if issued:
        kept = [p.read_bytes() for p in repo.root.rglob("*") if p.is_file()]
        assert not any(issued.encode() in text for text in kept)
        assert issued not in "\n".join(repo.outputs)
    assert repo.run("plan").returncode == 0
    # A confidential client made public: the access review says it widens access.
    clients = client_files(repo.server)["clients/acme/clients.yaml"]
    clients[1]["token_endpoint_auth_method"] = "none"
    repo.write("clients/acme/clients.yaml", clients)
    planned = repo.run("plan")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert ("# ! widens access: made public (token_endpoint_auth_method client_secret_basic "
            "-> none): no secret needed") in planned.stdout
    done = repo.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "acme-portal: updated (token_endpoint_auth_method)" in done.stdout
    assert repo.read("acme-portal").json()["token_endpoint_auth_method"] == "none"
    # Export writes the field back, and the exported files plan no changes.
    shutil.rmtree(repo.root / "clients")
    (repo.root / "clients").mkdir()
    assert repo.run("export").returncode == 0
    exported = next((repo.root / "clients").rglob("acme-spa.yaml")).read_text()
    assert "token_endpoint_auth_method: none\n" in exported
    planned = repo.run("plan", "--prune")
    assert planned.returncode == 0, planned.stdout + planned.stderr


def test_canaille_mints_one_initial_access_token_per_create(
    tmp_path: Path, canaille: CanaillePeer
) -> None:
    """Canaille's tokens register one client each: the settings name a command that
    mints one per create (Canaille's own `canaille jwt registration`)."""
    server = Server(
        name="canaille", registry_url=canaille.registry_url,
        token_endpoint=canaille.token_endpoint, env={},
        settings={
            "auth": {"initial_access_token_command": canaille.mint_command},
            "capabilities": {"fields": {
                "client_id": None, "partner": None, "restrict_to_partner_users": None,
                "access_token_ttl": None, "refresh_token_ttl": None,
            }},
        },
        scopes=(["openid", "profile"], ["email", "openid"], ["openid"]),
        service_grants=["client_credentials"],
    )
    repo = Repo(tmp_path, server)
    done = repo.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Apply complete: 3 created, 0 updated, 0 deleted." in done.stdout
    # A token that is not Canaille's is refused, with the initial token named.
    (tmp_path / "mint").write_text("#!/bin/sh\necho not-a-token\n")
    (tmp_path / "mint").chmod(0o755)
    settings = yaml.safe_load((tmp_path / "oauth2-sync.yaml").read_text())
    settings["registry"]["auth"]["initial_access_token_command"] = ["./mint"]
    (tmp_path / "oauth2-sync.yaml").write_text(yaml.safe_dump(settings))
    repo.write("clients/globex/more.yaml", [{
        "client_id": "globex-extra", "name": "Globex extra", "email": "x@globex.example",
        "partner": "globex", "scopes": ["openid"], "grant_types": ["client_credentials"],
    }])
    failed = repo.run("apply", "--auto-approve")
    assert failed.returncode == 1
    assert ("globex-extra: failed: creating client globex-extra: the registry refused the "
            "initial access token") in failed.stdout
    assert "not-a-token" not in failed.stdout + failed.stderr
