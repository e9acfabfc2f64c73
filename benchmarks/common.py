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


def mix_client_yaml(i: int, partner: str) -> str:
    """One client of the realistic mix: every field shape, and a warning for 3 in 8.

    Kinds (``i % 8``): a password service with lifetimes as text; a web app with the
    authorization code and refresh grants (block list of redirects, quoted strings,
    lifetimes in seconds); a native app (loopback redirect, flow lists); a legacy
    implicit-grant SPA (warns ``implicit-grant``); a service with a refresh lifetime but
    no refresh grant (warns ``refresh-ttl-without-grant``); a partner-wide reporting
    client (warns ``unrestricted-users``); a never-expiring access token made an
    error-free shape by a refresh grant; defaults only.
    """
    head = [
        f"  - client_id: {partner}-svc{i:06d}",
        f"    name: \"Service {i} ({partner})\"" if i % 3 == 0 else f"    name: Service {i}",
        f"    email: team{i % 97}@{partner}.example",
        f"    partner: {partner}",
    ]
    kind = i % 8
    body = {
        0: ["    scopes: [read, write]", "    grant_types: [password, refresh_token]",
            "    access_token_ttl: 1h", "    refresh_token_ttl: 7d"],
        1: ["    # the customer portal", "    grant_types:", "      - authorization_code",
            "      - refresh_token", "    redirect_uris:",
            f"      - 'https://app{i}.{partner}.example/callback'",
            f"      - https://app{i}.{partner}.example/silent-renew",
            "    access_token_ttl: 900", "    refresh_token_ttl: 86400",
            "    restrict_to_partner_users: true"],
        2: ["    grant_types: [authorization_code]",
            "    redirect_uris: [\"http://127.0.0.1:8400/cb\", \"com.example.app:/cb\"]",
            "    scopes:", "      - read"],
        3: ["    grant_types: [implicit]",
            f"    redirect_uris: [https://spa{i}.{partner}.example/]",
            "    access_token_ttl: 30m"],
        4: ["    scopes: [read]", "    grant_types: [password]", "    refresh_token_ttl: 30d"],
        5: ["    restrict_to_partner_users: false", "    scopes: [read]",
            "    access_token_ttl: 2h"],
        6: ["    grant_types: [password, refresh_token]", "    access_token_ttl: 12h",
            "    refresh_token_ttl: 14d", "    scopes: [write, read]"],
        7: [],
    }[kind]
    return "\n".join(head + body) + "\n"


WARNING_SHARE = 3 / 8
"""The share of ``mix_client_yaml``'s clients that draw a warning."""


def write_mix_repository(
    root: Path, count: int, *, registry_url: str = "local:.oauth2-sync/registry.db"
) -> Path:
    """``count`` clients of the realistic mix in files of one to seven clients each
    (partner by partner, with a leading comment); returns the settings path."""
    for n, partner in enumerate(PARTNERS):
        folder = root / "clients" / partner
        folder.mkdir(parents=True, exist_ok=True)
        indexes = list(range(n, count, len(PARTNERS)))
        size, start = 1, 0
        while start < len(indexes):
            chunk = indexes[start : start + size]
            entries = "".join(mix_client_yaml(i, partner) for i in chunk)
            (folder / f"team{chunk[0]:06d}.yaml").write_text(
                f"# clients of {partner}, owned by its team\nclients:\n" + entries
            )
            start += size
            size = size % 7 + 1
    return _write_settings(root, registry_url)


def _write_settings(root: Path, registry_url: str) -> Path:
    settings = root / "oauth2-sync.yaml"
    teams = "".join(f"  {p}:\n    paths: [clients/{p}/**]\n    partners: [{p}]\n" for p in PARTNERS)
    settings.write_text(
        f"registry:\n  url: {registry_url}\nclients:\n  paths: [clients/**/*.yaml]\n"
        f"teams:\n{teams}safety:\n  max_changes: 1000000\n  max_changes_percent: 100\n"
        "secrets:\n  directory: .secrets\n"
    )
    return settings
