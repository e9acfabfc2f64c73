"""Config repositories on disk for the plan/apply tests (real files in tmp dirs)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from oauth2_sync.model import Client

TEAMS = {
    "payments": {"paths": ["clients/acme/**"], "partners": ["acme"]},
    "analytics": {"paths": ["clients/globex/**"], "partners": ["globex"]},
}


def client(client_id: str, **overrides: Any) -> Client:
    """A valid client of the partner its ID starts with; ``overrides`` replace fields."""
    partner = client_id.split("-", 1)[0]
    fields: dict[str, Any] = {
        "client_id": client_id,
        "name": f"Service {client_id}",
        "email": f"team@{partner}.example",
        "partner": partner,
    }
    fields.update(overrides)
    return Client(**fields)


def write_repo(
    root: Path,
    clients: Iterable[Client],
    *,
    url: str = "local:.oauth2-sync/registry.db",
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``oauth2-sync.yaml`` and one client file per partner; return the settings path.

    Client files from an earlier call are removed first: the repository holds exactly
    ``clients``.
    """
    root.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(root / "clients", ignore_errors=True)
    by_partner: dict[str, list[dict[str, Any]]] = {}
    for c in sorted(clients, key=lambda c: c.client_id):
        by_partner.setdefault(c.partner, []).append(c.to_document())
    for partner, docs in by_partner.items():
        folder = root / "clients" / partner
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "clients.yaml").write_text(
            yaml.safe_dump({"clients": docs}, sort_keys=False), encoding="utf-8"
        )
    settings: dict[str, Any] = {
        "registry": {"url": url},
        "clients": {"paths": ["clients/**/*.yaml"]},
        "teams": TEAMS,
        "secrets": {"directory": ".secrets"},
    }
    settings.update(extra or {})
    path = root / "oauth2-sync.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return path


def git(root: Path, *args: str, date: str = "2024-05-01T09:00:00Z") -> str:
    """Run git in ``root`` with a fixed identity and commit date; its stdout."""
    env = {
        "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.test",
        "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.test",
        "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date,
        "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
        "PATH": os.environ.get("PATH", ""),
    }
    done = subprocess.run(["git", "-C", str(root), *args], env=env, capture_output=True,
                          text=True, check=True, timeout=30)
    return done.stdout


def commit_all(root: Path, *, date: str = "2024-05-01T09:00:00Z") -> str:
    """``git init`` (once) and commit everything under ``root`` at ``date``; the commit."""
    if not (root / ".git").exists():
        git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", "clients", date=date)
    return git(root, "rev-parse", "HEAD").strip()
