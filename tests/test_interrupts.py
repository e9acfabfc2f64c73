"""Stopping an apply as Terraform does: real `oauth2-sync apply` and `rotate-secret`
processes against a real `registry serve --latency-ms`, real signals, real files.

- the first SIGINT or SIGTERM: no new write starts, the ones in flight finish, every
  finished client's line, a line naming the clients not attempted, exit 130 or 143;
  the registry holds exactly the clients reported created, and the next plan creates
  exactly the others, with no pending-secret warning;
- a second SIGINT: exit 130 at once, the journal naming exactly the creates in flight;
- the circuit breaker: the registry killed (SIGKILL) mid-apply, with no retry budget:
  apply stops starting writes, reports the rest as not attempted and exits 1; and in
  process, the first ``RegistryUnavailableError`` stops the scheduling.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.configrepo import client, write_repo
from support.registry import SEED, RegistryServer, launch_registry_server

from oauth2_sync.apply import Result, Stop, StopReason, apply_plan
from oauth2_sync.errors import RegistryUnavailableError
from oauth2_sync.journal import JOURNAL_PATH, Journal
from oauth2_sync.model import Client
from oauth2_sync.plan import make_plan
from oauth2_sync.refserver.store import RegistryStore
from oauth2_sync.registry.base import RemoteClient
from oauth2_sync.registry.local import LocalRegistry
from oauth2_sync.secret import Secret
from oauth2_sync.settings import load_settings
from oauth2_sync.sink import DirectorySink

PARALLELISM = 4
CREATED = "created (secret delivered to directory .secrets)"
STOPPING = re.compile(r"Interrupt received, stopping: no new writes; waiting for (\d) in flight")


# --- the library: Stop and the circuit breaker, in process ---------------------------------


class UnavailableAfter(LocalRegistry):
    """Creates ``good`` clients, then raises what the HTTP adapter raises once the
    registry cannot be reached (``RegistryUnavailableError``) for every create."""

    def __init__(self, path: Path, good: int) -> None:
        super().__init__(path, SEED)
        self.good = good
        self.attempts: list[str] = []

    def create_client(self, client: Client) -> tuple[RemoteClient, Secret]:
        self.attempts.append(client.client_id)
        if len(self.attempts) > self.good:
            raise RegistryUnavailableError(
                "POST /v1/oauth2-clients: cannot reach registry.example: connection failed "
                "(connection refused)"
            )
        return super().create_client(client)

    def get_client(self, client_id: str) -> RemoteClient | None:
        if len(self.attempts) > self.good:
            raise RegistryUnavailableError(
                f"GET /v1/oauth2-clients/{client_id}: cannot reach registry.example: "
                "connection failed (connection refused)"
            )
        return super().get_client(client_id)


def local_plan(root: Path, ids: list[str], registry: LocalRegistry) -> Any:
    write_repo(root, [client(i, restrict_to_partner_users=False) for i in ids], extra={
        "safety": {"max_changes": 100_000, "max_changes_percent": 100},
    })
    return make_plan(load_settings(root / "oauth2-sync.yaml"), registry)


def test_the_circuit_breaker_stops_scheduling_at_the_first_unavailable_error(
    tmp_path: Path,
) -> None:
    ids = client_ids(20)
    registry = UnavailableAfter(tmp_path / "registry.db", good=3)
    plan = local_plan(tmp_path, ids, registry)
    journal = Journal.beside(tmp_path)
    stops: list[tuple[StopReason, int]] = []
    seen: list[Result] = []
    report = apply_plan(
        plan, registry, DirectorySink(tmp_path / ".secrets"), parallelism=1, journal=journal,
        on_result=seen.append, on_stop=lambda reason, n: stops.append((reason, n)),
    )
    # One at a time: three created, the fourth failed, and nothing after it was sent.
    assert registry.attempts == ids[:4]
    assert stops == [("registry-unavailable", 0)]
    assert report.stopped == "registry-unavailable"
    assert [(r.client_id, r.status) for r in seen] == [
        *((i, "created") for i in ids[:3]), (ids[3], "failed"),
    ]
    assert seen[3].message == (
        f"failed: GET /v1/oauth2-clients/{ids[3]}: cannot reach registry.example: connection "
        "failed (connection refused)"
    )
    assert report.not_attempted == tuple(ids[4:])
    assert report.summary() == (
        "Apply stopped: 3 created, 0 updated, 0 deleted; 1 failed, 16 not attempted."
    )
    # Crossed off: the not attempted were never sent; the failed one stays noted (its
    # read-back failed, so nobody knows whether it was created).
    assert [p.client_id for p in journal.pending()] == [ids[3]]
    registry.close()


def test_a_stop_before_the_first_write_starts_none(tmp_path: Path) -> None:
    ids = client_ids(5)
    registry = UnavailableAfter(tmp_path / "registry.db", good=100)
    plan = local_plan(tmp_path, ids, registry)
    stop = Stop()
    stop.request("SIGTERM")
    stop.request("SIGINT")  # the first reason is kept
    journal = Journal.beside(tmp_path)
    report = apply_plan(
        plan, registry, DirectorySink(tmp_path / ".secrets"), journal=journal, stop=stop,
    )
    assert registry.attempts == []
    assert (report.stopped, report.not_attempted) == ("SIGTERM", tuple(ids))
    assert report.summary() == (
        "Apply interrupted: 0 created, 0 updated, 0 deleted; 5 not attempted."
    )
    assert journal.pending() == ()
    registry.close()


# --- real processes, real signals -------------------------------------------------------------


def client_ids(count: int) -> list[str]:
    """``acme-u0000``... (no seed users needed: the clients do not restrict to them)."""
    return [f"acme-u{i:04d}" for i in range(count)]


def write_config(root: Path, server: RegistryServer, ids: list[str]) -> None:
    """A config repository for ``server`` with no retry budget and short timeouts, and
    no safety limit in the way."""
    write_repo(
        root, [client(i, restrict_to_partner_users=False) for i in ids],
        extra={
            "registry": {
                "url": server.base_url, "retries": 0, "connect_timeout": 1, "read_timeout": 10,
            },
            "safety": {"max_changes": 100_000, "max_changes_percent": 100},
        },
    )


def environment(server: RegistryServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    env.update(server.env(), NO_COLOR="1")
    return env


@dataclass
class Running:
    """An `oauth2-sync` process whose stdout and stderr lines are read as they come."""

    process: subprocess.Popen[str]
    stdout: queue.Queue[str | None] = field(default_factory=queue.Queue)
    stderr: queue.Queue[str | None] = field(default_factory=queue.Queue)
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)

    def wait_for(self, stream: str, count: int, *, timeout: float = 60) -> list[str]:
        """Block until ``count`` lines have arrived on ``stream``; returns them all."""
        lines, source = (self.out, self.stdout) if stream == "out" else (self.err, self.stderr)
        deadline = time.monotonic() + timeout
        while len(lines) < count:
            line = source.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, f"ended early: {self.out} {self.err}"
            lines.append(line)
        return lines

    def finish(self, *, timeout: float) -> int:
        """Wait for the exit (within ``timeout``) and collect every remaining line."""
        code = self.process.wait(timeout=timeout)
        for lines, source in ((self.out, self.stdout), (self.err, self.stderr)):
            while (line := source.get(timeout=10)) is not None:
                lines.append(line)
        return code


def start(root: Path, env: dict[str, str], *args: str) -> Running:
    process = subprocess.Popen(
        [sys.executable, "-m", "oauth2_sync", *args], cwd=root, env=env, text=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    running = Running(process)

    def pump(stream: Any, into: queue.Queue[str | None]) -> None:
        with stream:  # closed at EOF: an open pipe is a ResourceWarning
            for line in stream:
                into.put(line.rstrip("\n"))
        into.put(None)

    for stream, into in ((process.stdout, running.stdout), (process.stderr, running.stderr)):
        threading.Thread(target=pump, args=(stream, into), daemon=True).start()
    return running


def start_apply(root: Path, env: dict[str, str]) -> Running:
    """Save a plan, then start ``apply`` of it (which prints only result lines)."""
    subprocess.run(
        [sys.executable, "-m", "oauth2_sync", "plan", "-q", "--out", "plan.json"], cwd=root,
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    return start(root, env, "apply", "plan.json", "--parallelism", str(PARALLELISM))


def held(server: RegistryServer) -> set[str]:
    """The clients the registry's store holds (read from its database)."""
    store = RegistryStore(server.db)
    try:
        return {c["clientId"] for c in store.list_clients() if c["clientId"].startswith("acme-u")}
    finally:
        store.close()


def planned_creates(root: Path, env: dict[str, str]) -> tuple[list[str], str]:
    """The clients a fresh ``plan`` creates, and its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "oauth2_sync", "plan", "--format", "json"], cwd=root, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode in (0, 2), done.stderr
    plan = json.loads(done.stdout)
    return [c["client_id"] for c in plan["changes"] if c["action"] == "create"], done.stderr


def not_attempted_line(ids: list[str]) -> str:
    """The line naming them: at most 50, then how many more."""
    more = f", and {len(ids) - 50} more (run plan to see them)" if len(ids) > 50 else ""
    return f"{len(ids)} not attempted: {', '.join(ids[:50])}{more}"


def interrupted_apply(
    tmp_path: Path, start_server: Callable[..., RegistryServer], signum: signal.Signals
) -> None:
    server = start_server(latency_ms=150)
    root = tmp_path / "repo"
    ids = client_ids(60)
    write_config(root, server, ids)
    env = environment(server)
    running = start_apply(root, env)
    running.wait_for("out", PARALLELISM)  # writes are under way
    running.process.send_signal(signum)
    signalled = time.monotonic()
    code = running.finish(timeout=30)
    # Generous: the writes in flight take one latency (0.15 s) to finish.
    assert time.monotonic() - signalled < 10

    assert code == 128 + signum
    assert len(running.err) == 1, running.err
    stopping = STOPPING.fullmatch(running.err[0])
    assert stopping is not None, running.err
    assert int(stopping.group(1)) <= PARALLELISM
    *results, skipped_line, summary = running.out
    created = [line.split(":", 1)[0] for line in results]
    assert results == [f"{c}: {CREATED}" for c in created]
    skipped = sorted(set(ids) - set(created))
    assert skipped, "the signal came after the last write"
    assert skipped_line == not_attempted_line(skipped)
    assert summary == (
        f"Apply interrupted: {len(created)} created, 0 updated, 0 deleted; "
        f"{len(skipped)} not attempted."
    )
    # No write started after the signal: the registry holds exactly what was reported.
    assert held(server) == set(created)
    assert Journal(root / JOURNAL_PATH).pending() == ()
    creates, stderr = planned_creates(root, env)
    assert creates == skipped
    assert stderr == ""  # no pending-secret warning


def test_sigint_stops_apply_after_the_writes_in_flight(
    tmp_path: Path, start_registry_server: Callable[..., RegistryServer]
) -> None:
    interrupted_apply(tmp_path, start_registry_server, signal.SIGINT)


def test_sigterm_stops_apply_after_the_writes_in_flight(
    tmp_path: Path, start_registry_server: Callable[..., RegistryServer]
) -> None:
    interrupted_apply(tmp_path, start_registry_server, signal.SIGTERM)


def test_a_second_sigint_exits_at_once_leaving_the_journal_true(
    tmp_path: Path, start_registry_server: Callable[..., RegistryServer]
) -> None:
    server = start_registry_server(latency_ms=1000)
    root = tmp_path / "repo"
    ids = client_ids(40)
    write_config(root, server, ids)
    env = environment(server)
    running = start_apply(root, env)
    running.wait_for("out", PARALLELISM)  # the first wave done, the second one sent
    running.process.send_signal(signal.SIGINT)
    stopping = STOPPING.fullmatch(running.wait_for("err", 1)[0])
    assert stopping is not None, running.err
    in_flight = int(stopping.group(1))
    running.process.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    code = running.finish(timeout=30)
    assert time.monotonic() - signalled < 10

    assert code == 130
    assert running.err == [
        running.err[0],
        f"Interrupt received again: exiting now, without waiting for the {in_flight} in "
        "flight; run plan to see what they did",
    ]
    created = [line.split(":", 1)[0] for line in running.out]
    assert running.out == [f"{c}: {CREATED}" for c in created]
    # Not waited for: the creates in flight are neither reported nor crossed off. The
    # journal names exactly them: those started and not reported.
    pending = [p.client_id for p in Journal(root / JOURNAL_PATH).pending()]
    assert len(pending) == in_flight >= 1
    assert sorted(created + pending) == ids[: len(created) + len(pending)]

    # The registry carries out the creates it had received; the next plan names them.
    deadline = time.monotonic() + 30
    while held(server) != set(created + pending):
        assert time.monotonic() < deadline, held(server)
        time.sleep(0.1)
    creates, stderr = planned_creates(root, env)
    assert creates == sorted(set(ids) - set(created) - set(pending))
    assert stderr.splitlines() == [
        f"Warning: {p} was created by an apply that stopped before its secret reached the "
        f"sink ({since}); run `oauth2-sync rotate-secret {p}` to issue a new one"
        for p, since in ((p.client_id, p.since) for p in Journal(root / JOURNAL_PATH).pending())
    ]


def test_the_registry_killed_mid_apply_trips_the_circuit_breaker(
    tmp_path: Path, start_registry_server: Callable[..., RegistryServer]
) -> None:
    server = start_registry_server(latency_ms=300)
    root = tmp_path / "repo"
    ids = client_ids(60)
    write_config(root, server, ids)
    env = environment(server)
    running = start_apply(root, env)
    running.wait_for("out", PARALLELISM)
    server.process.kill()  # SIGKILL: connections reset, then refused
    server.process.wait()
    killed = time.monotonic()
    code = running.finish(timeout=60)
    assert time.monotonic() - killed < 15  # no write waited out a retry budget

    assert code == 1
    assert re.fullmatch(
        r"Registry unavailable, stopping: no new writes; waiting for \d in flight",
        running.err[0],
    ), running.err
    assert running.err[1:] == [
        "Error: the registry became unavailable, so apply started no more writes; run it "
        "again once the registry answers (plan shows what is left)",
    ]
    *results, skipped_line, summary = running.out
    created = [line.split(":", 1)[0] for line in results if line.endswith(CREATED)]
    failed = [line.split(":", 1)[0] for line in results if not line.endswith(CREATED)]
    assert 1 <= len(failed) <= PARALLELISM
    for c, line in zip(failed, (r for r in results if not r.endswith(CREATED)), strict=True):
        # Refused, or reset: a read-back on a kept-alive connection the kill cut.
        assert re.fullmatch(
            rf"{c}: failed: GET /v1/oauth2-clients/{c}: (?:not sent: )?(cannot reach 127\.0\.0\.1:"
            rf"{server.port}: connection refused \(1 attempt\); check registry\.url and "
            rf"that the registry is running|connection to 127\.0\.0\.1:{server.port} "
            rf"(reset|closed) after the request was sent)",
            line,
        ), line
    skipped = sorted(set(ids) - set(created) - set(failed))
    assert skipped_line == not_attempted_line(skipped)
    assert summary == (
        f"Apply stopped: {len(created)} created, 0 updated, 0 deleted; {len(failed)} failed, "
        f"{len(skipped)} not attempted."
    )

    # Back on the same database: the registry holds what was reported created (and the
    # failed creates it may have carried out); the plan creates everything else.
    restarted = launch_registry_server(server.db.parent, seed=SEED)
    try:
        registry = held(restarted)
        assert set(created) <= registry <= set(created) | set(failed)
        write_config(root, restarted, ids)  # the same database, on another port
        creates, stderr = planned_creates(root, environment(restarted))
        assert creates == sorted(set(ids) - registry)
        assert set(skipped) <= set(creates)
        # Only a failed create the registry did carry out is pending a secret.
        warned = sorted(re.findall(r"^Warning: (acme-u\d{4}) was created", stderr, re.M))
        assert warned == sorted(registry - set(created))
    finally:
        restarted.stop()


def test_sigterm_stops_rotate_secret_after_the_rotations_in_flight(
    tmp_path: Path, start_registry_server: Callable[..., RegistryServer]
) -> None:
    server = start_registry_server()
    root = tmp_path / "repo"
    ids = client_ids(30)
    write_config(root, server, ids)
    env = environment(server)
    created = subprocess.run(
        [sys.executable, "-m", "oauth2_sync", "apply", "--auto-approve"], cwd=root, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    server.stop()
    slow = launch_registry_server(server.db.parent, seed=SEED, latency_ms=200)
    try:
        write_config(root, slow, ids)
        env = environment(slow)
        secrets = {c: (root / ".secrets" / f"{c}.json").read_text() for c in ids}
        running = start(root, env, "rotate-secret", "--parallelism", str(PARALLELISM), *ids)
        running.wait_for("out", PARALLELISM)
        running.process.send_signal(signal.SIGTERM)
        code = running.finish(timeout=30)
    finally:
        slow.stop()

    assert code == 143
    assert len(running.err) == 1 and STOPPING.fullmatch(running.err[0]), running.err
    *results, skipped_line, summary = running.out
    rotated = [line.split(":", 1)[0] for line in results]
    assert results == [f"{c}: new secret delivered to directory .secrets" for c in rotated]
    skipped = sorted(set(ids) - set(rotated))
    assert skipped_line == not_attempted_line(skipped)
    assert summary == f"Rotated {len(rotated)} secrets; {len(skipped)} not attempted."
    store = RegistryStore(server.db)
    try:
        for c in ids:
            now = (root / ".secrets" / f"{c}.json").read_text()
            assert (now != secrets[c]) == (c in rotated), c
            assert store.check_client_secret(c, json.loads(now)["client_secret"]), c
    finally:
        store.close()
