"""The pending-secrets journal: unit behaviour, apply's use of it, and a SIGKILL between
a create and its sink (a real `oauth2-sync apply` process killed mid-run)."""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.configrepo import client, write_repo
from support.registry import RegistryServer

from oauth2_sync import clock
from oauth2_sync.apply import apply_plan, check_preconditions
from oauth2_sync.errors import RegistryError, UsageError
from oauth2_sync.journal import JOURNAL_PATH, Journal, Pending
from oauth2_sync.model import Client
from oauth2_sync.plan import make_plan
from oauth2_sync.refserver.store import RegistryStore
from oauth2_sync.registry.base import RemoteClient
from oauth2_sync.registry.local import LocalRegistry
from oauth2_sync.secret import Secret
from oauth2_sync.settings import load_settings
from oauth2_sync.sink import DirectorySink, Sink

SEED = Path(__file__).parents[1] / "examples" / "registry-seed.yaml"


# --- the journal itself -------------------------------------------------------------------


def test_record_clear_and_compact(tmp_path: Path) -> None:
    journal = Journal.beside(tmp_path)
    assert journal.path == tmp_path / ".oauth2-sync" / "pending-secrets.jsonl"
    assert journal.pending() == ()
    assert not journal.path.parent.exists()  # reading creates nothing
    journal.record(["acme-a", "acme-b", "acme-c"])
    journal.clear(["acme-b"])
    assert [p.client_id for p in journal.pending()] == ["acme-a", "acme-c"]
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(journal.path.parent.stat().st_mode) == 0o700
    journal.compact()
    assert journal.path.read_text().count("\n") == 2
    assert [p.client_id for p in journal.pending()] == ["acme-a", "acme-c"]
    journal.clear(["acme-a", "acme-c"])
    journal.compact()
    assert not journal.path.exists()
    journal.compact()  # nothing to do


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    journal = Journal.beside(tmp_path)
    journal.record(["acme-a"])
    with journal.path.open("a") as stream:
        stream.write('{"pending":"acme-b","si')  # a crash in mid-write
    assert [p.client_id for p in journal.pending()] == ["acme-a"]


def test_reconcile_keeps_clients_that_exist_and_drops_the_others(tmp_path: Path) -> None:
    journal = Journal.beside(tmp_path)
    journal.record(["acme-created", "acme-never-sent"])
    (kept,) = journal.reconcile({"acme-created", "acme-other"})
    assert kept.client_id == "acme-created"
    assert kept.warning() == (
        f"acme-created was created by an apply that stopped before its secret reached the "
        f"sink ({kept.since}); run `oauth2-sync rotate-secret acme-created` to issue a new one"
    )
    assert [p.client_id for p in journal.pending()] == ["acme-created"]


def test_the_warning_escapes_what_it_shows() -> None:
    pending = Pending("acme-\x1b[31mx", "now\n")
    assert "\x1b" not in pending.warning()
    assert "acme-\\x1b[31mx" in pending.warning()


def test_every_warning_reads_in_full() -> None:
    since = "2026-01-31T12:00:00Z"
    fix = "run `oauth2-sync rotate-secret acme-a` to issue a new one"
    assert Pending("acme-a", since, "create", sink_failed=True).warning() == (
        f"acme-a was created ({since}), but its secret was not delivered (the sink "
        f"failed); {fix}"
    )
    assert Pending("acme-a", since, "rotate", sink_failed=True).warning() == (
        f"acme-a was given a new secret ({since}), but its secret was not delivered (the "
        f"sink failed); {fix}"
    )
    assert Pending("acme-a", since, "rotate").warning() == (
        "the secret of acme-a was being rotated by a rotate-secret that stopped before "
        f"the new one reached the sink ({since}); the old one may no longer work: {fix}"
    )


def test_rotations_and_sink_failures_survive_compaction_line_for_line(tmp_path: Path) -> None:
    journal = Journal.beside(tmp_path)
    with clock.use(lambda: datetime(2026, 1, 31, 12, 0, 0, tzinfo=UTC)):
        journal.record(["acme-a", "acme-b"])
        journal.record(["acme-r"], operation="rotate")
    assert journal.path.read_text().splitlines() == [  # the lines as appended
        '{"pending":"acme-a","since":"2026-01-31T12:00:00Z"}',
        '{"pending":"acme-b","since":"2026-01-31T12:00:00Z"}',
        '{"pending":"acme-r","since":"2026-01-31T12:00:00Z","operation":"rotate"}',
    ]
    journal.undelivered(["acme-b", "acme-unknown"])  # an ID never recorded changes nothing
    journal.record([])  # nothing to note: no line
    since = "2026-01-31T12:00:00Z"
    expected = (
        Pending("acme-a", since),
        Pending("acme-b", since, "create", sink_failed=True),
        Pending("acme-r", since, "rotate"),
    )
    assert journal.pending() == expected
    journal.compact()
    assert journal.path.read_text().splitlines() == [
        f'{{"pending":"acme-a","since":"{since}"}}',
        f'{{"pending":"acme-b","since":"{since}","sink_failed":true}}',
        f'{{"pending":"acme-r","since":"{since}","operation":"rotate"}}',
    ]
    assert journal.pending() == expected


def test_lines_that_are_not_entries_are_ignored(tmp_path: Path) -> None:
    journal = Journal.beside(tmp_path)
    journal.record(["acme-a"])
    with journal.path.open("a") as stream:
        stream.write('{"pending":"acme-t\n[1]\n"text"\n{"pending":"acme-b","since":7,"operation":"other",'
                     '"sink_failed":"yes"}\n{"done":7}\n{"done":"acme-never"}\n{"other":"acme-a"}\n')
    assert journal.pending()[1:] == (Pending("acme-b", ""),)
    assert [p.client_id for p in journal.pending()] == ["acme-a", "acme-b"]


def test_a_journal_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path) -> None:
    journal = Journal.beside(tmp_path)
    journal.record(["acme-a"])
    with journal.path.open("ab") as stream:
        stream.write(b'{"pending":"acme-\xff"}\n')
    with pytest.raises(UsageError) as caught:
        journal.pending()
    assert str(caught.value) == (
        f"{journal.path}: cannot read the pending-secrets journal: 'utf-8' codec can't "
        f"decode byte 0xff in position {journal.path.stat().st_size - 4}: invalid start byte"
    )


def test_links_and_folders_in_the_journal_s_way_are_refused_in_one_line(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / ".oauth2-sync").symlink_to(elsewhere)
    with pytest.raises(UsageError) as caught:
        Journal.beside(root).record(["acme-a"])
    assert str(caught.value) == (
        f"{root / '.oauth2-sync'} is a symbolic link; refusing to keep the pending-secrets "
        "journal where it points: remove the link (a real folder is created)"
    )
    (root / ".oauth2-sync").unlink()
    journal = Journal.beside(root)
    journal.path.parent.mkdir()
    journal.path.symlink_to(elsewhere / "planted")
    with pytest.raises(UsageError) as caught:
        journal.pending()
    assert str(caught.value) == f"{journal.path} is a symbolic link; refusing to follow it: remove it"
    journal.path.unlink()
    lock = journal.path.with_name(journal.path.name + ".lock")
    lock.unlink()  # the file pending() made; a folder in its place
    lock.mkdir()
    with pytest.raises(UsageError) as caught:
        journal.record(["acme-a"])
    assert str(caught.value) == f"{lock}: cannot open the pending-secrets journal: Is a directory"
    outside = Journal(elsewhere / "pending-secrets.jsonl", root)
    with pytest.raises(UsageError) as caught:
        outside.record(["acme-a"])
    assert str(caught.value) == (
        f"{elsewhere} resolves to {elsewhere.resolve()}, outside the settings' folder {root}; "
        "refusing to keep the pending-secrets journal there"
    )


def test_crossing_off_or_failing_without_a_journal_writes_nothing(tmp_path: Path) -> None:
    journal = Journal.beside(tmp_path)
    journal.clear(["acme-a"])
    journal.undelivered(["acme-a"])
    journal.record([])
    journal.compact()
    assert journal.reconcile({"acme-a"}) == ()
    assert not journal.path.parent.exists()


def test_reconcile_logs_the_clients_never_created(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal.beside(tmp_path)
    journal.record(["acme-a", "acme-b"])
    with caplog.at_level(logging.INFO, logger="oauth2_sync.journal"):
        journal.reconcile({"acme-b"})
    assert caplog.messages == [
        "pending secrets of clients that were never created: ['acme-a']"
    ]


# --- apply and rotate-secret keep it ----------------------------------------------------------


class BrokenSink(Sink):
    @property
    def description(self) -> str:
        return "nowhere"

    def deliver(
        self, client_id: str, secret: Secret, registry_client_id: str | None = None
    ) -> None:
        from oauth2_sync.errors import SecretSinkError

        raise SecretSinkError("vault is sealed")


class LosingRegistry(LocalRegistry):
    """Creates ``acme-billing-sync`` and loses the response (as a reset connection
    would); refuses ``acme-ops-cli`` outright (403, nothing created)."""

    def create_client(self, client: Client) -> tuple[RemoteClient, Secret]:
        if client.client_id == "acme-ops-cli":
            raise RegistryError("403 Forbidden: read-only credential", status=403)
        created = super().create_client(client)
        if client.client_id == "acme-billing-sync":
            raise RegistryError("connection reset by peer", status=0)
        return created


def test_apply_crosses_off_delivered_and_uncreated_clients_only(tmp_path: Path) -> None:
    wanted = [
        client("acme-reporting"), client("acme-billing-sync"), client("acme-ops-cli"),
        client("globex-etl"),
    ]
    settings = load_settings(write_repo(tmp_path, wanted))
    registry = LosingRegistry(tmp_path / "registry.db", SEED)
    journal = Journal.beside(tmp_path)
    plan = make_plan(settings, registry)
    check_preconditions(plan, registry, DirectorySink(tmp_path / ".secrets"))

    class Picky(DirectorySink):
        def deliver(
            self, client_id: str, secret: Secret, registry_client_id: str | None = None
        ) -> None:
            if client_id.startswith("globex-"):
                BrokenSink().deliver(client_id, secret)
            super().deliver(client_id, secret, registry_client_id)

    report = apply_plan(plan, registry, Picky(tmp_path / ".secrets"), journal=journal)
    assert [(r.client_id, r.status) for r in report.results] == [
        ("acme-billing-sync", "created-response-lost"),
        ("acme-ops-cli", "failed"),
        ("acme-reporting", "created"),
        ("globex-etl", "created-undelivered"),
    ]
    assert [p.client_id for p in journal.pending()] == ["acme-billing-sync", "globex-etl"]

    from oauth2_sync.apply import rotate_secrets

    rotated = rotate_secrets(
        registry, DirectorySink(tmp_path / ".secrets"), ["acme-billing-sync", "globex-etl"],
        settings.managed_partners, journal=journal,
    )
    assert rotated.ok
    assert journal.pending() == ()
    for client_id in ("acme-billing-sync", "globex-etl"):
        secret = json.loads((tmp_path / ".secrets" / f"{client_id}.json").read_text())
        assert registry.store.check_client_secret(client_id, secret["client_secret"])
    registry.close()


# --- SIGKILL between a create and its sink ------------------------------------------------------

STALLING_SINK = """
import os, sys, time, pathlib
sys.stdin.read()
marker = pathlib.Path(os.environ["STALL_MARKER"])
# Written whole, then renamed: the test reads the marker as soon as it exists.
partial = marker.with_suffix(".partial")
partial.write_text(os.environ["OAUTH2_SYNC_CLIENT_ID"])
partial.replace(marker)
time.sleep(120)
"""


def run(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oauth2_sync", *args], cwd=root, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_a_process_killed_between_create_and_sink_is_recovered(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    users = ("reporting", "billing-sync", "mobile-app", "web-portal", "ops-cli")
    wanted = [client(f"acme-{user}") for user in users] + [client("globex-etl")]
    marker = tmp_path / "stalled"
    sink_command = [sys.executable, "-c", STALLING_SINK]
    registry = {"url": "local:.oauth2-sync/registry.db", "seed": str(SEED)}
    write_repo(root, wanted, extra={"registry": registry, "secrets": {"command": sink_command}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    env.update(NO_COLOR="1", STALL_MARKER=str(marker))
    process = subprocess.Popen(
        [sys.executable, "-m", "oauth2_sync", "apply", "--auto-approve", "--parallelism", "1"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, "apply ended before the sink was reached"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # apply and its sink command, mid-delivery
    process.wait()
    stalled = marker.read_text()

    store = RegistryStore(root / ".oauth2-sync" / "registry.db")
    assert [c["clientId"] for c in store.list_clients()] == [stalled]
    store.close()
    journal = Journal(root / JOURNAL_PATH)
    assert len(journal.pending()) == len(wanted)  # all noted before the first create

    # The rerun, with a sink that works: the stalled client is reported, the rest created.
    write_repo(root, wanted, extra={"registry": registry})  # secrets: directory .secrets
    planned = run(root, "plan", env=env)
    assert planned.returncode == 2, planned.stderr
    warning = (
        f"Warning: {stalled} was created by an apply that stopped before its secret reached "
        f"the sink ("
    )
    assert planned.stderr.startswith(warning)
    assert f"run `oauth2-sync rotate-secret {stalled}` to issue a new one\n" in planned.stderr
    assert "Plan: 5 to add, 0 to change, 0 to destroy." in planned.stdout

    applied = run(root, "apply", "--auto-approve", env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert applied.stderr.startswith(warning)
    assert [p.client_id for p in journal.pending()] == [stalled]
    again = run(root, "plan", env=env)
    assert again.returncode == 0
    assert "No changes." in again.stdout
    assert again.stderr.startswith(warning)  # still pending until a new secret is out

    rotated = run(root, "rotate-secret", stalled, env=env)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert journal.pending() == ()
    assert not journal.path.exists()
    assert run(root, "plan", env=env).stderr == ""
    store = RegistryStore(root / ".oauth2-sync" / "registry.db")
    for item in wanted:
        secret = json.loads((root / ".secrets" / f"{item.client_id}.json").read_text())
        assert store.check_client_secret(item.client_id, secret["client_secret"])
    store.close()


# --- rotate-secret is journaled like a create (issue #12, 4) -----------------------------


def test_a_rotate_secret_killed_mid_rotation_leaves_the_client_pending(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    wanted = [client("acme-reporting"), client("globex-etl")]
    registry = {"url": "local:.oauth2-sync/registry.db", "seed": str(SEED)}
    write_repo(root, wanted, extra={"registry": registry})
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    env.update(NO_COLOR="1", STALL_MARKER=str(tmp_path / "stalled"))
    created = run(root, "apply", "--auto-approve", env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    old = json.loads((root / ".secrets" / "acme-reporting.json").read_text())["client_secret"]

    sink_command = [sys.executable, "-c", STALLING_SINK]
    write_repo(root, wanted, extra={"registry": registry, "secrets": {"command": sink_command}})
    process = subprocess.Popen(
        [sys.executable, "-m", "oauth2_sync", "rotate-secret", "acme-reporting", "globex-etl",
         "--parallelism", "1"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    marker = tmp_path / "stalled"
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, "rotate-secret ended before the sink was reached"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # rotate-secret and its sink, mid-delivery
    process.wait()
    assert marker.read_text() == "acme-reporting"
    store = RegistryStore(root / ".oauth2-sync" / "registry.db")
    assert not store.check_client_secret("acme-reporting", old)  # revoked, new one nowhere
    store.close()
    journal = Journal(root / JOURNAL_PATH)
    (pending,) = journal.pending()
    assert (pending.client_id, pending.operation) == ("acme-reporting", "rotate")

    write_repo(root, wanted, extra={"registry": registry})  # secrets: directory .secrets
    warning = (
        f"Warning: the secret of acme-reporting was being rotated by a rotate-secret that "
        f"stopped before the new one reached the sink ({pending.since}); the old one may no "
        "longer work: run `oauth2-sync rotate-secret acme-reporting` to issue a new one\n"
    )
    planned = run(root, "plan", env=env)
    assert (planned.returncode, planned.stderr) == (0, warning)
    applied = run(root, "apply", "--auto-approve", env=env)
    assert (applied.returncode, applied.stderr) == (0, warning)
    assert journal.pending() == (pending,)  # compaction keeps what kind of stop it was
    rotated = run(root, "rotate-secret", "acme-reporting", env=env)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert journal.pending() == ()
    assert run(root, "plan", env=env).stderr == ""
    store = RegistryStore(root / ".oauth2-sync" / "registry.db")
    new = json.loads((root / ".secrets" / "acme-reporting.json").read_text())["client_secret"]
    assert store.check_client_secret("acme-reporting", new)
    store.close()


class NoNamesSink(DirectorySink):
    """A sink that cannot name ``globex-`` clients (a store with narrower names)."""

    def check_id(self, client_id: str) -> None:
        from oauth2_sync.errors import SecretSinkError

        if client_id.startswith("globex-"):
            raise SecretSinkError(f"client ID {client_id!r} cannot name a secret here")


def test_rotation_asks_the_sink_about_the_id_before_it_revokes_the_secret(
    tmp_path: Path,
) -> None:
    from oauth2_sync.apply import rotate_secrets

    settings = load_settings(write_repo(tmp_path, [client("globex-etl")]))
    registry = LocalRegistry(tmp_path / "registry.db", SEED)
    journal = Journal.beside(tmp_path)
    sink = DirectorySink(tmp_path / ".secrets")
    assert apply_plan(make_plan(settings, registry), registry, sink, journal=journal).ok
    old = json.loads((tmp_path / ".secrets" / "globex-etl.json").read_text())["client_secret"]
    report = rotate_secrets(
        registry, NoNamesSink(tmp_path / ".secrets"), ["globex-etl"],
        settings.managed_partners, journal=journal,
    )
    assert [r.line() for r in report.results] == [
        "globex-etl: failed: client ID 'globex-etl' cannot name a secret here"
    ]
    assert registry.store.check_client_secret("globex-etl", old)  # never rotated
    assert journal.pending() == ()
    registry.close()


# --- the journal is a boundary (issue #12, 6) ------------------------------------------------


def test_a_linked_journal_lock_or_folder_is_refused_before_any_write(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    registry = {"url": "local:registry.db", "seed": str(SEED)}
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    env["NO_COLOR"] = "1"
    cases = {
        "pending-secrets.jsonl": "pending-secrets.jsonl is a symbolic link; refusing to "
        "follow it: remove it",
        "pending-secrets.jsonl.lock": "pending-secrets.jsonl.lock is a symbolic link; "
        "refusing to follow it: remove it",
    }
    for index, (name, message) in enumerate(cases.items()):
        root = tmp_path / f"repo{index}"
        write_repo(root, [client("acme-reporting")], extra={"registry": registry})
        (root / ".oauth2-sync").mkdir(mode=0o700)
        target = outside / f"{name}.{index}"
        target.write_text("")
        (root / ".oauth2-sync" / name).symlink_to(target)
        done = run(root, "apply", "--auto-approve", env=env)
        assert done.returncode == 1
        assert done.stderr == f"Error: .oauth2-sync/{message}\n"
        assert target.read_text() == ""
        store = RegistryStore(root / "registry.db")
        assert store.list_clients() == []  # nothing created
        store.close()

    root = tmp_path / "repo-folder"
    write_repo(root, [client("acme-reporting")], extra={"registry": registry})
    (root / ".oauth2-sync").symlink_to(outside)
    done = run(root, "apply", "--auto-approve", env=env)
    assert (done.returncode, done.stderr) == (
        1,
        "Error: .oauth2-sync is a symbolic link; refusing to keep the "
        "pending-secrets journal where it points: remove the link (a real folder is "
        "created)\n",
    )
    assert sorted(p.name for p in outside.iterdir()) == [
        "pending-secrets.jsonl.0", "pending-secrets.jsonl.lock.1"
    ]


# --- two applies at once: what the other writer created is not "an apply that stopped" ------


def test_creates_met_by_another_apply_are_not_blamed_on_a_stopped_apply(
    tmp_path: Path, start_registry_server: Callable[..., RegistryServer]
) -> None:
    server = start_registry_server()
    wanted = [client(f"acme-race-{i:02}", restrict_to_partner_users=False) for i in range(8)]
    roots = [tmp_path / "first", tmp_path / "second"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    env.update(NO_COLOR="1", **server.env())
    for root in roots:
        write_repo(root, wanted, url=server.base_url)
        planned = run(root, "plan", "--out", "plan.json", env=env)
        assert planned.returncode == 2, planned.stderr
    # Both plans made before either apply: every create meets the other apply.
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "oauth2_sync", "apply", "plan.json", "--parallelism", "4"],
            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for root in roots
    ]
    outputs = [process.communicate(timeout=120) for process in runs]
    met = [
        line for stdout, _ in outputs for line in stdout.splitlines()
        if "(the registry answered 409)" in line
    ]
    created = [
        line for stdout, _ in outputs for line in stdout.splitlines()
        if line.endswith(": created (secret delivered to directory .secrets)")
    ]
    assert len(met) + len(created) == len(wanted) * 2 and len(created) == len(wanted), outputs
    for line in met:
        client_id = line.split(":", 1)[0]
        assert line.startswith(f"{client_id}: already created by oauth2-sync-ci at ")
        assert line.endswith(
            ", since the plan (the registry answered 409); it matches the file, and its "
            "secret went to whoever created it: unless that was an apply delivering to "
            f"this sink, run `oauth2-sync rotate-secret {client_id}`"
        )
    for root in roots:
        again = run(root, "plan", env=env)
        assert (again.returncode, again.stderr) == (0, ""), again.stdout
        assert Journal.beside(root).pending() == ()
