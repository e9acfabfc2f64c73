"""Apply under faults, races and concurrency, against a real `registry serve` process.

- 500 creates and 500 updates through the fault proxy (``tests/faultproxy.py``) with 20%
  of all requests failing (500, 502, 503, 429 with Retry-After, resets before the
  request arrives, responses dropped after the server carried the request out, added
  latency): the registry ends equal to the files within 3 runs, nothing is created
  twice, no update is lost, and no result claims a write the server did not do;
- an out-of-band edit that lands between the plan and the write is never overwritten
  (every replace and delete carries If-Match);
- two applies started at the same moment: no duplicate, no lost update, and the one
  that came second says what the other did.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from support.faultproxy import Exchange, FaultProxy, start_proxy
from support.faultproxy import origin as proxy_origin
from support.registry import CI_CREDENTIAL, RegistryServer

from oauth2_sync.apply import Report, apply_plan, check_preconditions, rotate_secrets
from oauth2_sync.journal import Journal
from oauth2_sync.model import Client
from oauth2_sync.plan import make_plan
from oauth2_sync.refserver.store import RegistryStore
from oauth2_sync.registry.http import Credentials, HttpRegistry
from oauth2_sync.secret import Secret
from oauth2_sync.settings import Settings, load_settings
from oauth2_sync.sink import DirectorySink

CI = CI_CREDENTIAL
SEED_ID = 101


def write_seed(path: Path, users: list[str]) -> Path:
    """A seed with one partner, ``acme``, holding ``users``, and the CI credential."""
    path.write_text(yaml.safe_dump({
        "partners": [{"id": SEED_ID, "subdomain": "acme", "users": users}],
        "api_credentials": [{"client_id": CI[0], "secret": CI[1], "scope": "read write"}],
    }))
    return path


def desired(i: int) -> Client:
    """The i-th client as the files want it."""
    return Client(
        f"acme-u{i:04d}", f"Service {i}", f"team{i % 7}@acme.example", "acme",
        scopes=("read", "write") if i % 2 else ("read",),
        access_token_ttl=3600 if i % 3 else None,
    )


def write_config(root: Path, url: str, clients: list[Client]) -> Settings:
    """Settings pointing at ``url`` (no safety limits in the way) and one client file."""
    folder = root / "clients" / "acme"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "clients.yaml").write_text(
        yaml.safe_dump({"clients": [c.to_document() for c in clients]}, sort_keys=False)
    )
    (root / "oauth2-sync.yaml").write_text(yaml.safe_dump({
        "registry": {"url": url},
        "clients": {"paths": ["clients/**/*.yaml"]},
        "teams": {"payments": {"paths": ["clients/acme/**"], "partners": ["acme"]}},
        "safety": {"max_changes": 100_000, "max_changes_percent": 100,
                   "max_deletes": 100_000, "max_deletes_percent": 100},
        "secrets": {"directory": ".secrets"},
    }, sort_keys=False))
    return load_settings(root / "oauth2-sync.yaml")


def seed_clients(db: Path, clients: list[Client]) -> None:
    """Put clients straight into the server's store (one transaction)."""
    from oauth2_sync.registry import wire

    store = RegistryStore(db)
    store.bulk_create([wire.client_to_wire(c, SEED_ID) for c in clients], "seed")
    store.close()


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    env.update(NO_COLOR="1", OAUTH2_SYNC_CLIENT_ID=CI[0], OAUTH2_SYNC_CLIENT_SECRET=CI[1])
    return subprocess.run(
        [sys.executable, "-m", "oauth2_sync", *args], cwd=root, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )


@pytest.fixture
def proxied(
    tmp_path: Path, start_registry_server: Callable[..., RegistryServer]
) -> Iterator[tuple[RegistryServer, FaultProxy]]:
    """A server whose partner acme has users u0000..u0999, and a fault proxy before it."""
    users = [f"u{i:04d}" for i in range(1000)]
    server = start_registry_server(seed=write_seed(tmp_path / "seed.yaml", users))
    proxy = start_proxy(proxy_origin(server.base_url))
    yield server, proxy
    proxy.stop()


# --- convergence under 20% faults ---------------------------------------------------------


def written(exchanges: list[Exchange], method: str, status: int) -> set[str]:
    """Clients for which the server answered ``method`` with ``status`` (the response may
    have been dropped on the way back)."""
    return {
        e.client_id for e in exchanges
        if e.method == method and e.upstream == status and e.client_id is not None
        and not e.path.endswith("/secret")
    }


def test_apply_converges_through_twenty_percent_faults(
    tmp_path: Path, proxied: tuple[RegistryServer, FaultProxy]
) -> None:
    server, proxy = proxied
    files = [desired(i) for i in range(1000)]
    # The first 500 exist with other values (500 updates), the others do not (500 creates).
    seed_clients(server.db, [c._replace(name=f"Old {c.name}", scopes=("write",))
                             for c in files[:500]])
    root = tmp_path / "repo"
    settings = write_config(root, proxy.base_url, files)
    sink = DirectorySink(root / ".secrets")
    journal = Journal.beside(root)
    proxy.retry_after = 0  # honoured (tests/test_registry_http.py); no need to wait here
    proxy.latency_seconds = 0.005
    proxy.randomize(0.2, seed=20240501, paths=("/v1/", "/oauth/"))

    reports: list[Report] = []
    faults: Counter[str] = Counter()
    for _ in range(3):
        faults.update(proxy.counts)
        proxy.reset_log()
        registry = HttpRegistry(
            proxy.base_url, Credentials(CI[0], Secret(CI[1])),
            backoff_factor=0.01, backoff_max=0.1, retries=6, pool_size=8,
        )
        with registry:
            plan = make_plan(settings, registry)
            if not plan.has_changes:
                break
            check_preconditions(plan, registry, sink)
            report = apply_plan(plan, registry, sink, parallelism=8, journal=journal)
        reports.append(report)
        log = proxy.exchanges()
        # No result claims a write the server did not do in this run.
        created = {r.client_id for r in report.results if r.status == "created"}
        updated = {r.client_id for r in report.results if r.status == "updated"}
        assert created <= written(log, "POST", 201)
        assert updated <= written(log, "PUT", 200)
    else:
        pytest.fail("apply did not converge in 3 runs")
    faults.update(proxy.counts)
    proxy.randomize(0, seed=0)
    # Every kind of fault was met on the way, most writes were done by the first run.
    assert set(faults) == {"500", "502", "503", "429", "reset", "lost", "latency"}, faults
    first = reports[0]
    assert first.count("created", "created-response-lost") + first.count("updated") > 900
    # Secrets whose delivery is unconfirmed are in the journal; rotating them recovers.
    pending = [p.client_id for p in journal.reconcile({c.client_id for c in files})]
    with HttpRegistry(server.base_url, Credentials(CI[0], Secret(CI[1]))) as direct:
        recovered = rotate_secrets(direct, sink, pending, {"acme"}, journal=journal)
    assert recovered.ok
    assert journal.pending() == ()

    # The registry equals the files: drift (a real process, straight to the server) says so.
    (root / "oauth2-sync.yaml").write_text(
        (root / "oauth2-sync.yaml").read_text().replace(proxy.base_url, server.base_url)
    )
    drift = cli(root, "drift")
    assert drift.returncode == 0, drift.stdout + drift.stderr
    store = RegistryStore(server.db)
    assert len(store.list_clients()) == 1000  # nothing created twice, nothing extra
    for client in files[500:]:  # every created client's secret is in the sink, and works
        secret = json.loads((root / ".secrets" / f"{client.client_id}.json").read_text())
        assert store.check_client_secret(client.client_id, secret["client_secret"])
    store.close()


# --- out-of-band edits racing an apply ------------------------------------------------------


def test_out_of_band_edits_racing_an_apply_are_never_overwritten(
    tmp_path: Path, proxied: tuple[RegistryServer, FaultProxy]
) -> None:
    server, proxy = proxied
    files = [desired(i) for i in range(6)]
    seed_clients(server.db, [c._replace(name="Old") for c in files] + [desired(6)])
    settings = write_config(tmp_path, proxy.base_url, files)
    headers = server.headers()

    def edit(client_id: str) -> Callable[[Exchange], None]:
        def hook(_: Exchange) -> None:
            # Someone uses the admin form just before our write reaches the registry.
            url = f"{server.base_url}/oauth2-clients/{client_id}"
            body: dict[str, Any] = requests.get(url, headers=headers, timeout=10).json()
            body["email"] = "oob@acme.example"
            requests.put(url, json=body, headers=headers, timeout=10).raise_for_status()
        return hook

    for client_id in ("acme-u0001", "acme-u0006"):
        method = "DELETE" if client_id == "acme-u0006" else "PUT"
        proxy.before_forward(method, f"/v1/oauth2-clients/{client_id}", edit(client_id))
    registry = HttpRegistry(proxy.base_url, Credentials(CI[0], Secret(CI[1])))
    with registry:
        plan = make_plan(settings, registry, prune=True)
        report = apply_plan(plan, registry, None, parallelism=4)
    assert [(r.client_id, r.status) for r in report.results] == [
        ("acme-u0000", "updated"), ("acme-u0001", "stale"), ("acme-u0002", "updated"),
        ("acme-u0003", "updated"), ("acme-u0004", "updated"), ("acme-u0005", "updated"),
        ("acme-u0006", "stale"),
    ]
    writes = [e for e in proxy.exchanges() if e.method in ("PUT", "DELETE")]
    assert len(writes) == 7
    assert all(e.headers.get("if-match", "").startswith('"') for e in writes)
    store = RegistryStore(server.db)
    survivors = {c["clientId"]: c for c in store.list_clients()}
    store.close()
    assert survivors["acme-u0001"]["email"] == "oob@acme.example"
    assert survivors["acme-u0001"]["name"] == "Old"  # our update was refused, not merged
    assert survivors["acme-u0006"]["email"] == "oob@acme.example"  # not deleted


# --- two applies at the same moment ----------------------------------------------------------


def test_two_applies_at_the_same_moment(
    tmp_path: Path, proxied: tuple[RegistryServer, FaultProxy]
) -> None:
    server, _ = proxied
    files = [desired(i) for i in range(100)]
    seed_clients(server.db, [c._replace(name="Old") for c in files[:50]])
    roots = [tmp_path / "first", tmp_path / "second"]
    for root in roots:
        write_config(root, server.base_url, files)
        planned = cli(root, "plan", "--out", "plan.json")
        assert planned.returncode == 2, planned.stderr
    # Both plans were made before either apply: each change meets the other apply.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    env.update(NO_COLOR="1", OAUTH2_SYNC_CLIENT_ID=CI[0], OAUTH2_SYNC_CLIENT_SECRET=CI[1])
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "oauth2_sync", "apply", "plan.json", "--parallelism", "8",
             "--allow-unsafe"],
            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for root in roots
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    # Whoever met a create of the other exits 1: its secrets went to the other's sink.
    assert sorted(run.returncode for run in runs) in ([0, 1], [1, 1]), outputs
    lines: dict[str, list[str]] = {}
    for stdout, _ in outputs:
        for line in stdout.splitlines():
            client_id, _, message = line.partition(": ")
            if client_id.startswith("acme-"):
                lines.setdefault(client_id, []).append(message)
    assert sorted(lines) == [c.client_id for c in files]
    for index, client in enumerate(files):
        messages = sorted(lines[client.client_id])
        if index < 50:
            # One updated it; the other found it already so, and says who did it when.
            assert messages[0].startswith("already as planned: updated by oauth2-sync-ci at ")
            assert messages[0].endswith(", since the plan; nothing to do")
            assert messages[1] == "updated (name)"
        else:
            # One created it; the other met 409 and says so, without creating it again.
            assert messages[0].startswith("already created by oauth2-sync-ci at ")
            assert "since the plan (the registry answered 409); it matches the file" in (
                messages[0]
            )
            assert messages[1] == "created (secret delivered to directory .secrets)"
    drift = cli(roots[0], "drift")
    assert drift.returncode == 0, drift.stdout
    store = RegistryStore(server.db)
    assert len(store.list_clients()) == 100
    for client in files[50:]:
        holder = next(r for r in roots if (r / ".secrets" / f"{client.client_id}.json").exists())
        secret = json.loads((holder / ".secrets" / f"{client.client_id}.json").read_text())
        assert store.check_client_secret(client.client_id, secret["client_secret"])
    store.close()
