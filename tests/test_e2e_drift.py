"""End to end: out-of-band edits through the registry API, then ``drift``, ``apply``,
``export`` or ``apply --prune``, all as real processes against a real
``oauth2-sync registry serve`` over HTTP on 127.0.0.1.

The edits: a redirect URI changed (acme-web-portal), a client deleted (initech-kiosk)
and a client created by hand for a managed partner (acme-ops-cli).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from support.registry import RegistryServer

EXAMPLES = Path(__file__).parents[1] / "examples"
CHANGED, MISSING, UNDECLARED = "acme-web-portal", "initech-kiosk", "acme-ops-cli"
EVIL_URI = "https://evil.example/steal"


@dataclass
class Repo:
    root: Path
    env: dict[str, str]
    server: RegistryServer

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "oauth2_sync", *args], cwd=self.root, env=self.env,
            capture_output=True, text=True, timeout=120, check=False,
        )


@pytest.fixture
def repo(tmp_path: Path, start_registry_server: Callable[..., RegistryServer]) -> Repo:
    """The examples, applied to a fresh reference server, then edited out of band."""
    server = start_registry_server()
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(".oauth2-sync", ".secrets"))
    settings = root / "oauth2-sync.yaml"
    settings.write_text(
        settings.read_text().replace(
            "url: local:.oauth2-sync/registry.db", f"url: {server.base_url}"
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    env.update(server.env(), NO_COLOR="1")
    made = Repo(root, env, server)
    applied = made.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    return made


def edit_out_of_band(server: RegistryServer) -> None:
    """What someone with the admin form would do: three edits through the API."""
    session = requests.Session()
    session.headers.update(server.headers())
    base = server.base_url
    got = session.get(f"{base}/oauth2-clients/{CHANGED}", timeout=10)
    got.raise_for_status()
    body = {
        k: v for k, v in got.json().items()
        if k not in ("version", "createdAt", "updatedAt", "updatedBy")
    }
    body["redirectUri"] = f"{EVIL_URI},https://portal.acme.example/oauth2/callback"
    session.put(
        f"{base}/oauth2-clients/{CHANGED}", json=body,
        headers={"If-Match": got.headers["ETag"]}, timeout=10,
    ).raise_for_status()
    session.delete(f"{base}/oauth2-clients/{MISSING}", timeout=10).raise_for_status()
    created = session.post(f"{base}/oauth2-clients", json={
        "clientId": UNDECLARED, "name": "Ops CLI (by hand)", "email": "ops@acme.example",
        "partnerId": 101, "restrictToPartnerUsers": True, "scope": ["read", "write"],
        "grantTypes": ["password"], "redirectUri": "", "accessTokenValiditySeconds": 900,
        "refreshTokenValiditySeconds": None,
    }, timeout=10)
    assert created.status_code == 201, created.text


def test_drift_reports_out_of_band_edits_in_every_format(repo: Repo) -> None:
    clean = repo.run("drift")
    assert clean.returncode == 0, clean.stderr
    assert "No drift. The registry matches the configuration.\n" in clean.stdout
    edit_out_of_band(repo.server)

    text = repo.run("drift")
    assert text.returncode == 2, text.stderr
    assert f'  ~ client "{CHANGED}" changed in the registry (clients/payments/apps.yaml:17)\n' in (
        text.stdout
    )
    assert (
        '      ~ redirect_uris = ["https://portal.acme.example/oauth2/callback", '
        '"https://portal.acme.example/silent-renew"] -> ["https://evil.example/steal", '
        '"https://portal.acme.example/oauth2/callback"]\n'
    ) in text.stdout
    assert f'  - client "{MISSING}" missing from the registry (clients/platform/initech.yaml:44)\n' in (
        text.stdout
    )
    assert f'  + client "{UNDECLARED}" in the registry, declared by no file\n' in text.stdout
    assert '      + name                      = "Ops CLI (by hand)"\n' in text.stdout
    assert 'by "oauth2-sync-ci"' in text.stdout
    assert "Drift: 1 changed, 1 missing, 1 undeclared.\n" in text.stdout
    assert "10 in sync; 0 outside the managed scope (only counted).\n" in text.stdout

    document = json.loads(repo.run("drift", "--format", "json").stdout)
    assert document["drift"] is True
    by_id = {c["client_id"]: c for c in document["clients"]}
    assert {k: by_id[k]["kind"] for k in by_id} == {
        CHANGED: "changed", MISSING: "missing", UNDECLARED: "undeclared",
    }
    assert [f["field"] for f in by_id[CHANGED]["fields"]] == ["redirect_uris"]
    assert by_id[CHANGED]["fields"][0]["after"] == [
        EVIL_URI, "https://portal.acme.example/oauth2/callback",
    ]
    assert by_id[CHANGED]["updated_by"] == "oauth2-sync-ci"
    assert by_id[CHANGED]["updated_at"]
    assert by_id[MISSING]["before"]["access_token_ttl"] == -1
    assert by_id[UNDECLARED]["after"]["scopes"] == ["read", "write"]

    markdown = repo.run("drift", "--format", "markdown")
    assert markdown.returncode == 2
    for fragment in (
        f"<code>~</code> <code>{CHANGED}</code> changed in the registry (1 field)",
        "<tr><td>redirect_uris</td>",
        f"<code>&quot;{EVIL_URI}&quot;</code>",
        f"<code>-</code> <code>{MISSING}</code> missing from the registry",
        f"<code>+</code> <code>{UNDECLARED}</code> in the registry, declared by no file",
        "<tr><td>name</td><td><code>&quot;Ops CLI (by hand)&quot;</code></td></tr>",
    ):
        assert fragment in markdown.stdout

    junit = repo.run("drift", "--format", "junit")
    assert junit.returncode == 2
    root = ET.fromstring(junit.stdout)
    assert (root.get("tests"), root.get("failures")) == ("13", "3")
    failures = {
        str(case.get("name")): case.find("failure")
        for case in root.iter("testcase") if case.find("failure") is not None
    }
    assert sorted(failures) == [UNDECLARED, CHANGED, MISSING]
    changed_failure = failures[CHANGED]
    assert changed_failure is not None
    assert changed_failure.get("message") == "changed in the registry: redirect_uris"


def test_apply_fixes_two_and_export_adopts_the_third(repo: Repo) -> None:
    edit_out_of_band(repo.server)
    applied = repo.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    after_apply = json.loads(repo.run("drift", "--format", "json").stdout)
    assert [(c["kind"], c["client_id"]) for c in after_apply["clients"]] == [
        ("undeclared", UNDECLARED),
    ]

    exported = repo.run("export")
    assert exported.returncode == 0, exported.stderr
    assert f"Wrote clients/payments/{UNDECLARED}.yaml ({UNDECLARED})\n" in exported.stdout
    final = repo.run("drift")
    assert final.returncode == 0, final.stdout
    assert "No drift." in final.stdout
    assert repo.run("plan").returncode == 0
    assert repo.run("fmt", "--check").returncode == 0


def test_apply_fixes_two_and_prune_removes_the_third(repo: Repo) -> None:
    edit_out_of_band(repo.server)
    assert repo.run("apply", "--auto-approve").returncode == 0
    assert repo.run("drift").returncode == 2
    pruned = repo.run("apply", "--auto-approve", "--prune")
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    final = repo.run("drift")
    assert final.returncode == 0, final.stdout
