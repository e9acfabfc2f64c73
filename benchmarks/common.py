"""Shared pieces of the benchmark scripts: generated config repositories and timing."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PARTNERS = ("acme", "globex", "initech")


def client_yaml(i: int, partner: str) -> str:
    """One realistic client entry (a mix of grant types, redirects and lifetimes)."""
    kind = i % 4
    lines = [
        f"  - client_id: {partner}-svc{i:06d}",
        f"    name: Service {i}",
        f"    email: team{i % 97}@{partner}.example",
        f"    partner: {partner}",
    ]
    if kind == 0:
        lines += [
            "    scopes: [read, write]",
            "    grant_types: [password, refresh_token]",
            "    access_token_ttl: 1h",
            "    refresh_token_ttl: 7d",
        ]
    elif kind == 1:
        lines += [
            "    grant_types: [authorization_code, refresh_token]",
            f"    redirect_uris: [https://app{i}.{partner}.example/callback]",
        ]
    elif kind == 2:
        lines += [
            "    grant_types: [authorization_code]",
            "    redirect_uris:",
            f"      - https://web{i}.{partner}.example/cb",
            "      - http://127.0.0.1:8400/cb",
            "    access_token_ttl: 900",
        ]
    return "\n".join(lines) + "\n"


def write_repository(
    root: Path, count: int, *, registry_url: str = "local:.oauth2-sync/registry.db"
) -> Path:
    """A config repository of ``count`` clients, one file each; returns the settings path."""
    for partner in PARTNERS:
        (root / "clients" / partner).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        partner = PARTNERS[i % len(PARTNERS)]
        (root / "clients" / partner / f"svc{i:06d}.yaml").write_text(
            "clients:\n" + client_yaml(i, partner)
        )
    settings = root / "oauth2-sync.yaml"
    teams = "".join(f"  {p}:\n    paths: [clients/{p}/**]\n    partners: [{p}]\n" for p in PARTNERS)
    settings.write_text(
        f"registry:\n  url: {registry_url}\nclients:\n  paths: [clients/**/*.yaml]\n"
        f"teams:\n{teams}safety:\n  max_changes: 1000000\n  max_changes_percent: 100\n"
        "secrets:\n  directory: .secrets\n"
    )
    return settings


def best_of(runs: int, func: Callable[[], T]) -> tuple[float, T]:
    """The fastest of ``runs`` calls, in seconds, and the last result."""
    best = float("inf")
    result: T | None = None
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, result
