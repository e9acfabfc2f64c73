"""Applying plans to the embedded registry (a real SQLite store), with injected faults."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from support.configrepo import client, write_repo

from oauth2_sync.apply import (
    Report,
    Result,
    Stop,
    apply_plan,
    check_preconditions,
    check_safety,
    rotate_secrets,
    secret_creates,
)
from oauth2_sync.errors import (
    RegistryError,
    RegistryUnavailableError,
    SafetyLimitError,
    SecretSinkError,
    UsageError,
)
from oauth2_sync.journal import Journal
from oauth2_sync.model import Client
from oauth2_sync.plan import Plan, make_plan, safety_violations
from oauth2_sync.registry.base import RemoteClient
from oauth2_sync.registry.local import LocalRegistry
from oauth2_sync.secret import Secret
from oauth2_sync.settings import Safety, Settings, load_settings
from oauth2_sync.sink import DirectorySink, Sink

SEED = Path(__file__).parents[1] / "examples" / "registry-seed.yaml"
REPORTING = client("acme-reporting", access_token_ttl=43200)
BILLING = client("acme-billing-sync", scopes=("read", "write"))
ETL = client("globex-etl")
LEGACY = client("umbrella-legacy")


class Env:
    """A config repository, its embedded registry and its secret directory."""

    def __init__(self, root: Path, desired: Sequence[Client], **extra: object) -> None:
        self.root = root
        self.settings = self.write(desired, **extra)
        self.registry = LocalRegistry(root / "registry.db", SEED)
        self.sink = DirectorySink(root / ".secrets")

    def write(self, desired: Sequence[Client], **extra: object) -> Settings:
        self.settings = load_settings(write_repo(self.root, desired, extra=extra))
        return self.settings

    def plan(self, **kwargs: object) -> Plan:
        return make_plan(self.settings, self.registry, **kwargs)  # type: ignore[arg-type]

    def apply(self, plan: Plan, **kwargs: object) -> Report:
        check_preconditions(plan, self.registry, self.sink)
        return apply_plan(plan, self.registry, self.sink, **kwargs)  # type: ignore[arg-type]

    def secret(self, client_id: str) -> str:
        data = json.loads((self.root / ".secrets" / f"{client_id}.json").read_text())
        assert data["client_id"] == client_id
        secret: str = data["client_secret"]
        return secret

    def clients(self) -> dict[str, Client]:
        return {rc.client.client_id: rc.client for rc in self.registry.list_clients()}


@pytest.fixture
def env(tmp_path: Path) -> Env:
    e = Env(tmp_path, [REPORTING, BILLING, ETL])
    e.registry.create_client(LEGACY)
    return e


def statuses(report: Report) -> list[tuple[str, str]]:
    return [(r.client_id, r.status) for r in report.results]


def test_apply_creates_delivers_secrets_and_converges(env: Env) -> None:
    report = env.apply(env.plan())
    assert report.ok
    assert [r.line() for r in report.results] == [
        f"{cid}: created (secret delivered to directory {env.root / '.secrets'})"
        for cid in ("acme-billing-sync", "acme-reporting", "globex-etl")
    ]
    assert report.summary() == "Apply complete: 3 created, 0 updated, 0 deleted."
    for cid in ("acme-billing-sync", "acme-reporting", "globex-etl"):
        assert env.registry.store.check_client_secret(cid, env.secret(cid))
    again = env.plan()
    assert not again.has_changes
    assert (again.no_op, again.unmanaged) == (3, 1)


def test_an_edited_field_is_the_only_change_and_apply_makes_it_so(env: Env) -> None:
    env.apply(env.plan())
    edited = REPORTING._replace(email="reports@acme.example")
    env.write([edited, BILLING, ETL])
    plan = env.plan()
    (change,) = plan.changes
    assert [(f.field, f.before, f.after) for f in change.fields] == [
        ("email", "team@acme.example", "reports@acme.example"),
    ]
    report = env.apply(plan)
    assert [r.line() for r in report.results] == ["acme-reporting: updated (email)"]
    assert env.clients()["acme-reporting"] == edited
    assert not env.plan().has_changes


def test_a_client_changed_since_the_plan_is_refused_and_the_others_proceed(env: Env) -> None:
    env.apply(env.plan())
    env.write([
        REPORTING._replace(name="Reports v2"),
        BILLING._replace(name="Billing v2"),
        ETL,
    ])
    plan = env.plan()
    current = env.registry.get_client("acme-reporting")
    assert current is not None
    out_of_band = current.client._replace(email="oob@acme.example")
    env.registry.replace_client(out_of_band, current.version)
    report = env.apply(plan)
    assert statuses(report) == [("acme-billing-sync", "updated"), ("acme-reporting", "stale")]
    assert report.results[1].line() == (
        f"acme-reporting: refused: changed in the registry since the plan (version "
        f"{current.version} no longer current); left untouched, run plan again"
    )
    assert not report.ok
    assert report.summary() == (
        "Apply finished with problems: 0 created, 1 updated, 0 deleted; "
        "1 refused (changed since the plan)."
    )
    assert env.clients()["acme-reporting"] == out_of_band
    assert env.clients()["acme-billing-sync"].name == "Billing v2"


def test_prune_deletes_managed_clients_only(env: Env) -> None:
    env.apply(env.plan())
    env.write([REPORTING])
    plan = env.plan(prune=True)
    assert [(c.action, c.client_id) for c in plan.changes] == [
        ("delete", "acme-billing-sync"), ("delete", "globex-etl"),
    ]
    report = env.apply(plan)
    assert statuses(report) == [("acme-billing-sync", "deleted"), ("globex-etl", "deleted")]
    assert sorted(env.clients()) == ["acme-reporting", "umbrella-legacy"]
    assert not env.plan(prune=True).has_changes


def test_a_delete_of_a_client_already_gone_counts_as_done(env: Env) -> None:
    env.apply(env.plan())
    env.write([REPORTING, BILLING])
    plan = env.plan(prune=True)
    env.registry.delete_client("globex-etl", None)
    report = env.apply(plan)
    assert statuses(report) == [("globex-etl", "already-deleted")]
    assert report.ok


def test_one_failure_does_not_stop_the_others(env: Env) -> None:
    env.apply(env.plan())
    env.write([
        REPORTING._replace(name="R2"), BILLING._replace(name="B2"),
        ETL._replace(name="E2"),
    ])
    plan = env.plan()
    env.registry.delete_client("acme-billing-sync", None)
    report = env.apply(plan, parallelism=2)
    assert statuses(report) == [
        ("acme-billing-sync", "failed"), ("acme-reporting", "updated"), ("globex-etl", "updated"),
    ]
    assert report.results[0].message == (
        "failed: the client no longer exists in the registry; run plan again"
    )


class LosingRegistry(LocalRegistry):
    """Creates the client, then loses the response (as a reset connection would)."""

    creates = 0

    def create_client(self, client: Client) -> tuple[RemoteClient, Secret]:
        self.creates += 1
        super().create_client(client)
        raise RegistryError("connection reset by peer", status=0)


class FailingRegistry(LocalRegistry):
    """Never reaches the store: the connection fails before the request is sent."""

    def create_client(self, client: Client) -> tuple[RemoteClient, Secret]:
        raise RegistryError("connection refused", status=0)


def test_a_create_whose_response_was_lost_is_read_back_not_repeated(tmp_path: Path) -> None:
    env = Env(tmp_path, [REPORTING])
    env.registry = LosingRegistry(tmp_path / "registry.db", SEED)
    report = env.apply(env.plan())
    assert statuses(report) == [("acme-reporting", "created-response-lost")]
    assert report.results[0].message == (
        "created (response was lost); its secret may not have reached the sink: "
        "run `oauth2-sync rotate-secret acme-reporting`"
    )
    assert env.registry.creates == 1
    assert list(env.clients()) == ["acme-reporting"]
    assert not report.ok
    assert report.summary().endswith("; 1 created without a confirmed secret.")
    assert not env.plan().has_changes


def test_a_create_that_failed_before_reaching_the_registry_is_reported(tmp_path: Path) -> None:
    env = Env(tmp_path, [REPORTING])
    env.registry = FailingRegistry(tmp_path / "registry.db", SEED)
    report = env.apply(env.plan())
    assert [r.line() for r in report.results] == ["acme-reporting: failed: connection refused"]
    assert env.clients() == {}


def test_a_create_that_meets_an_existing_client_never_creates_twice(env: Env) -> None:
    plan = env.plan()
    env.registry.create_client(REPORTING)
    env.registry.create_client(ETL._replace(name="Someone else's"))
    report = env.apply(plan)
    assert statuses(report) == [
        ("acme-billing-sync", "created"),
        ("acme-reporting", "created-response-lost"),
        ("globex-etl", "failed"),
    ]
    assert report.results[2].message == (
        "failed: the client already exists in the registry and differs from the file "
        "(created outside this plan?); run plan again"
    )
    assert env.clients()["globex-etl"].name == "Someone else's"


class BrokenSink(Sink):
    @property
    def description(self) -> str:
        return "nowhere"

    def deliver(
        self, client_id: str, secret: Secret, registry_client_id: str | None = None
    ) -> None:
        raise SecretSinkError(f"vault is sealed (secret of {client_id})")


def test_a_secret_that_cannot_be_delivered_fails_the_client_and_says_how_to_recover(
    env: Env,
) -> None:
    report = apply_plan(env.plan(targets=["globex-etl"]), env.registry, BrokenSink())
    assert [r.line() for r in report.results] == [
        "globex-etl: created, but its secret was not delivered (vault is sealed (secret of "
        "globex-etl)); run `oauth2-sync rotate-secret globex-etl` to issue a new one"
    ]
    assert not report.ok


def test_creates_without_a_sink_are_refused_before_any_write(env: Env) -> None:
    plan = env.plan()
    with pytest.raises(UsageError) as caught:
        check_preconditions(plan, env.registry, None)
    assert str(caught.value) == (
        "the plan creates 3 clients but no secret sink is configured (settings: "
        "secrets.directory or secrets.command); refusing to create clients whose secrets "
        "would be lost"
    )


def test_a_plan_for_another_registry_is_refused(env: Env, tmp_path: Path) -> None:
    plan = env.plan()._replace(registry="local:/elsewhere.db")
    with pytest.raises(UsageError) as caught:
        check_preconditions(plan, env.registry, env.sink)
    assert str(caught.value) == (
        f"the plan was made against local:/elsewhere.db, but the settings point at "
        f"{env.registry.url}"
    )


def counts_plan(creates: int, updates: int, deletes: int, managed: int) -> Plan:
    from oauth2_sync.plan import Change

    changes = (
        [Change("create", f"acme-c{i}", after=client(f"acme-c{i}")) for i in range(creates)]
        + [Change("update", f"acme-u{i}", before=client(f"acme-u{i}"),
                  after=client(f"acme-u{i}", name="x"), version="1") for i in range(updates)]
        + [Change("delete", f"acme-d{i}", before=client(f"acme-d{i}"), version="1")
           for i in range(deletes)]
    )
    return Plan("local:x", tuple(changes), 0, 0, managed, ())


@pytest.mark.parametrize(
    ("creates", "updates", "deletes", "managed", "expected"),
    [
        (5, 5, 1, 100, []),
        (6, 5, 0, 100, ["creates+updates: 11 exceeds 10 (safety.max_changes)"]),
        (0, 0, 3, 100, ["deletes: 3 exceeds 2 (safety.max_deletes)"]),
        (2, 1, 0, 10, [
            "creates+updates as a share of the 10 managed clients: 3 (30.0%) exceeds 20% "
            "(safety.max_changes_percent)",
        ]),
        (0, 0, 2, 15, [
            "deletes as a share of the 15 managed clients: 2 (13.3%) exceeds 10% "
            "(safety.max_deletes_percent)",
        ]),
        # Below min_managed_clients only the counts apply.
        (3, 0, 1, 9, []),
        (3, 0, 1, 0, []),
    ],
)
def test_safety_limits(
    creates: int, updates: int, deletes: int, managed: int, expected: list[str]
) -> None:
    safety = Safety(max_changes=10, max_changes_percent=20, max_deletes=2,
                    max_deletes_percent=10, min_managed_clients=10)
    found = safety_violations(counts_plan(creates, updates, deletes, managed), safety)
    assert [str(v) for v in found] == expected


def test_over_a_limit_apply_refuses_naming_the_figures_setting_and_flag() -> None:
    plan = counts_plan(120, 0, 6, 1000)
    with pytest.raises(SafetyLimitError) as caught:
        check_safety(plan, Safety())
    assert str(caught.value) == (
        "the plan exceeds the safety limits: creates+updates: 120 exceeds 100 "
        "(safety.max_changes); deletes: 6 exceeds 5 (safety.max_deletes). Raise the limit "
        "in the settings, or pass --allow-unsafe for this run"
    )
    check_safety(plan, Safety(), allow_unsafe=True)


def test_results_are_sorted_and_reported_as_they_finish(env: Env) -> None:
    seen: list[Result] = []
    report = env.apply(env.plan(), parallelism=3, on_result=seen.append)
    assert sorted(seen, key=lambda r: r.client_id) == list(report.results)
    with pytest.raises(UsageError):
        apply_plan(env.plan(), env.registry, env.sink, parallelism=0)


def test_rotate_secret_delivers_a_new_secret_for_managed_clients_only(env: Env) -> None:
    env.apply(env.plan())
    first = env.secret("globex-etl")
    report = rotate_secrets(
        env.registry, env.sink, ["globex-etl", "umbrella-legacy", "acme-nope", "globex-etl"],
        env.settings.managed_partners,
    )
    assert [r.line() for r in report.results] == [
        "acme-nope: failed: no such client in the registry",
        f"globex-etl: new secret delivered to directory {env.root / '.secrets'}",
        "umbrella-legacy: refused: partner umbrella is outside the managed scope",
    ]
    assert report.rotation_summary() == "Rotated 1 secret; 2 failed."
    second = env.secret("globex-etl")
    assert second != first
    assert env.registry.store.check_client_secret("globex-etl", second)
    assert not env.registry.store.check_client_secret("globex-etl", first)


def test_a_public_create_needs_no_sink_and_no_secret_reaches_it(env: Env) -> None:
    plan = env.plan()
    public = plan._replace(changes=tuple(
        c._replace(after=c.after._replace(token_endpoint_auth_method="none"))
        if c.client_id == "globex-etl" and c.after else c
        for c in plan.changes
    ))
    assert secret_creates(public) == ["acme-billing-sync", "acme-reporting"]
    only_public = public._replace(changes=tuple(c for c in public.changes if c.client_id == "globex-etl")
    )
    check_preconditions(only_public, env.registry, None)  # nothing to deliver: no sink needed
    # Even where the registry issued a secret (as Canaille does), none reaches the sink.
    report = env.apply(public)
    assert statuses(report) == [
        ("acme-billing-sync", "created"), ("acme-reporting", "created"), ("globex-etl", "created"),
    ]
    assert [r.message for r in report.results if r.client_id == "globex-etl"] == [
        "created (public client: no secret)"
    ]
    assert sorted(p.name for p in (env.root / ".secrets").iterdir()) == [
        "acme-billing-sync.json", "acme-reporting.json"
    ]


# Every field of each result (mutation survivors, docs/development/testing.md): the
# operation and the message as well as the status.


def full(report: Report) -> list[tuple[str, str, str, str]]:
    return [(r.client_id, r.operation, r.status, r.message) for r in report.results]


def test_each_kind_of_write_reports_its_operation_status_and_message(env: Env) -> None:
    delivered = f"created (secret delivered to directory {env.root / '.secrets'})"
    assert full(env.apply(env.plan())) == [
        ("acme-billing-sync", "create", "created", delivered),
        ("acme-reporting", "create", "created", delivered),
        ("globex-etl", "create", "created", delivered),
    ]
    env.write([REPORTING._replace(name="R2", email="r2@acme.example"), BILLING])
    assert full(env.apply(env.plan(prune=True))) == [
        ("acme-reporting", "update", "updated", "updated (name, email)"),
        ("globex-etl", "delete", "deleted", "deleted"),
    ]


def test_writes_that_meet_a_registry_changed_since_the_plan(env: Env) -> None:
    env.apply(env.plan())
    renamed = REPORTING._replace(name="R2")
    env.write([renamed])
    plan = env.plan(prune=True)  # update acme-reporting, delete the other two
    billing = env.registry.get_client("acme-billing-sync")
    assert billing is not None
    env.registry.replace_client(BILLING._replace(name="B2"), billing.version)
    env.registry.delete_client("globex-etl", None)
    reporting = env.registry.get_client("acme-reporting")
    assert reporting is not None
    env.registry.replace_client(renamed, reporting.version)  # someone else made the update
    now = env.registry.get_client("acme-reporting")
    assert now is not None and now.version != reporting.version
    assert full(env.apply(plan)) == [
        (
            "acme-billing-sync", "delete", "stale",
            f"refused: changed in the registry since the plan (version {billing.version} no "
            "longer current); left untouched, run plan again",
        ),
        (
            "acme-reporting", "update", "already-updated",
            f"already as planned: updated by {now.updated_by} at {now.updated_at} (version "
            f"{now.version}), since the plan; nothing to do",
        ),
        ("globex-etl", "delete", "already-deleted", "already deleted"),
    ]
    assert sorted(env.clients()) == ["acme-billing-sync", "acme-reporting", "umbrella-legacy"]


def test_an_update_stale_or_gone_names_its_operation(env: Env) -> None:
    env.apply(env.plan())
    env.write([REPORTING._replace(name="R2"), ETL._replace(name="E2")])
    plan = env.plan()
    reporting = env.registry.get_client("acme-reporting")
    assert reporting is not None
    env.registry.replace_client(REPORTING._replace(name="R3"), reporting.version)
    env.registry.delete_client("globex-etl", None)
    assert full(env.apply(plan)) == [
        (
            "acme-reporting", "update", "stale",
            f"refused: changed in the registry since the plan (version {reporting.version} no "
            "longer current); left untouched, run plan again",
        ),
        (
            "globex-etl", "update", "failed",
            "failed: the client no longer exists in the registry; run plan again",
        ),
    ]


def test_a_public_client_made_confidential_asks_for_a_new_secret(env: Env) -> None:
    env.apply(env.plan())
    env.write([ETL._replace(name="E2")])
    plan = env.plan()
    # The reference registry holds no public clients: the plan says it was one.
    was_public = plan._replace(changes=tuple(
        c._replace(before=c.before._replace(token_endpoint_auth_method="none"))
        if c.before else c
        for c in plan.changes
    ))
    assert full(env.apply(was_public)) == [(
        "globex-etl", "update", "updated",
        "updated (name); it is confidential again and nobody holds a current secret: run "
        "`oauth2-sync rotate-secret globex-etl`",
    )]
    env.write([ETL._replace(name="E3")])  # confidential before and after
    assert full(env.apply(env.plan())) == [("globex-etl", "update", "updated", "updated (name)")]


class RefusingRotation(LocalRegistry):
    """Answers a rotation with the HTTP status it is given."""

    status = 400

    def rotate_secret(self, client_id: str) -> Secret:
        raise RegistryError(f"rotation refused with {self.status}", status=self.status)


def _pending(journal: Journal) -> list[tuple[str, str, bool]]:
    return [(p.client_id, p.operation, p.sink_failed) for p in journal.pending()]


def test_rotate_reports_its_operation_and_status_for_every_client(env: Env) -> None:
    env.apply(env.plan())
    report = rotate_secrets(
        env.registry, env.sink, ["globex-etl", "umbrella-legacy", "acme-nope"],
        env.settings.managed_partners,
    )
    assert full(report) == [
        ("acme-nope", "rotate-secret", "failed", "failed: no such client in the registry"),
        (
            "globex-etl", "rotate-secret", "rotated",
            f"new secret delivered to directory {env.root / '.secrets'}",
        ),
        (
            "umbrella-legacy", "rotate-secret", "failed",
            "refused: partner umbrella is outside the managed scope",
        ),
    ]


def test_a_rotation_the_sink_refuses_stays_pending_in_the_journal(env: Env) -> None:
    env.apply(env.plan())
    journal = Journal.beside(env.root)
    report = rotate_secrets(
        env.registry, BrokenSink(), ["globex-etl"], env.settings.managed_partners,
        journal=journal,
    )
    assert full(report) == [(
        "globex-etl", "rotate-secret", "failed",
        "secret rotated, but the new one was not delivered (vault is sealed (secret of "
        "globex-etl)); the old one no longer works: rotate again once the sink works",
    )]
    assert _pending(journal) == [("globex-etl", "rotate", True)]
    rotate_secrets(env.registry, env.sink, ["globex-etl"], env.settings.managed_partners,
                   journal=journal)
    assert _pending(journal) == []


@pytest.mark.parametrize(
    ("status", "pending"), [(0, True), (400, False), (499, False), (500, True)]
)
def test_a_rotation_refused_with_a_4xx_is_crossed_off_others_stay_pending(
    tmp_path: Path, status: int, pending: bool
) -> None:
    # A 4xx: the registry refused, the old secret still works. Otherwise it may have
    # rotated: the client stays pending.
    env = Env(tmp_path, [ETL])
    env.apply(env.plan())
    registry = RefusingRotation(tmp_path / "registry.db", SEED)
    registry.status = status
    journal = Journal.beside(env.root)
    report = rotate_secrets(
        registry, env.sink, ["globex-etl"], env.settings.managed_partners, journal=journal
    )
    assert full(report) == [(
        "globex-etl", "rotate-secret", "failed", f"failed: rotation refused with {status}",
    )]
    assert _pending(journal) == ([("globex-etl", "rotate", False)] if pending else [])


class Faulty(LocalRegistry):
    """Raises ``fault`` from the write named by ``on`` (after making it, with ``made``)."""

    fault: Exception = RegistryError("no response", status=0)
    on = "delete_client"
    made = False

    def create_client(self, client: Client) -> tuple[RemoteClient, Secret]:
        if self.on != "create_client":
            return super().create_client(client)
        if self.made:
            super().create_client(client)
        raise self.fault

    def replace_client(self, client: Client, version: str | None) -> RemoteClient:
        if self.on == "replace_client":
            raise self.fault
        return super().replace_client(client, version)

    def delete_client(self, client_id: str, version: str | None) -> None:
        if self.on == "delete_client":
            raise self.fault
        super().delete_client(client_id, version)


def _faulty(env: Env, on: str, fault: Exception, *, made: bool = False) -> Faulty:
    registry = Faulty(env.root / "registry.db", SEED)
    registry.on, registry.fault, registry.made = on, fault, made
    env.registry = registry
    return registry


def test_a_surprise_fails_its_client_only_and_names_its_type(env: Env) -> None:
    env.apply(env.plan())
    env.write([REPORTING._replace(name="R2")])
    plan = env.plan(prune=True)
    _faulty(env, "delete_client", KeyError("acme-billing-sync"))
    assert full(env.apply(plan, parallelism=1)) == [
        (
            "acme-billing-sync", "delete", "failed",
            "failed: unexpected KeyError (run with -vv for details)",
        ),
        ("acme-reporting", "update", "updated", "updated (name)"),
        (
            "globex-etl", "delete", "failed",
            "failed: unexpected KeyError (run with -vv for details)",
        ),
    ]


def test_an_unavailable_registry_stops_the_writes_not_yet_started(env: Env) -> None:
    env.apply(env.plan())
    env.write([REPORTING._replace(name="R2"), ETL._replace(name="E2")])
    plan = env.plan(prune=True)  # delete acme-billing-sync first, then the two updates
    _faulty(env, "delete_client", RegistryUnavailableError("the registry is down", status=503))
    assert full(env.apply(plan, parallelism=1)) == [
        ("acme-billing-sync", "delete", "failed", "failed: the registry is down"),
        ("acme-reporting", "update", "not-attempted", "not attempted"),
        ("globex-etl", "update", "not-attempted", "not attempted"),
    ]


@pytest.mark.parametrize(
    ("status", "read_back"), [(0, True), (499, False), (500, True), (501, True)]
)
def test_a_create_refused_is_crossed_off_one_that_may_have_happened_is_read_back(
    tmp_path: Path, status: int, read_back: bool
) -> None:
    env = Env(tmp_path, [ETL])
    plan = env.plan()
    _faulty(env, "create_client", RegistryError(f"answered {status}", status=status), made=True)
    journal = Journal.beside(env.root)
    report = env.apply(plan, journal=journal)
    if read_back:  # it did happen: not repeated, and the secret may be lost
        assert full(report) == [(
            "globex-etl", "create", "created-response-lost",
            "created (response was lost); its secret may not have reached the sink: run "
            "`oauth2-sync rotate-secret globex-etl`",
        )]
        assert [p.client_id for p in journal.pending()] == ["globex-etl"]
    else:
        assert full(report) == [("globex-etl", "create", "failed", f"failed: answered {status}")]
        assert journal.pending() == ()


def test_a_create_whose_secret_is_not_delivered_stays_pending(env: Env) -> None:
    journal = Journal.beside(env.root)
    report = apply_plan(env.plan(targets=["globex-etl"]), env.registry, BrokenSink(),
                        journal=journal)
    assert full(report) == [(
        "globex-etl", "create", "created-undelivered",
        "created, but its secret was not delivered (vault is sealed (secret of globex-etl)); "
        "run `oauth2-sync rotate-secret globex-etl` to issue a new one",
    )]
    assert [(p.client_id, p.sink_failed) for p in journal.pending()] == [("globex-etl", True)]


class Anonymous(LocalRegistry):
    """Tells only some of who changed a client and when."""

    by: str | None = None
    at: str | None = None

    def get_client(self, client_id: str) -> RemoteClient | None:
        found = super().get_client(client_id)
        if found is None:
            return None
        return found._replace(updated_by=self.by, updated_at=self.at)


@pytest.mark.parametrize(
    ("by", "at", "shown"),
    [
        ("ci", "2026-01-05T09:12:44Z", "by ci at 2026-01-05T09:12:44Z"),
        ("ci", None, "by ci"),
        (None, "2026-01-05T09:12:44Z", "at 2026-01-05T09:12:44Z"),
        (None, None, "by another writer"),
    ],
)
def test_an_update_made_by_another_writer_names_whom_and_when_as_far_as_known(
    env: Env, by: str | None, at: str | None, shown: str
) -> None:
    env.apply(env.plan())
    renamed = ETL._replace(name="E2")
    env.write([renamed])
    plan = env.plan()
    current = env.registry.get_client("globex-etl")
    assert current is not None
    version = env.registry.replace_client(renamed, current.version).version
    registry = Anonymous(env.root / "registry.db", SEED)
    registry.by, registry.at = by, at
    env.registry = registry
    assert full(env.apply(plan)) == [(
        "globex-etl", "update", "already-updated",
        f"already as planned: updated {shown} (version {version}), since the plan; nothing to do",
    )]


def test_allowed_unsafe_limits_are_logged_as_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    check_safety(counts_plan(120, 0, 6, 1000), Safety(), allow_unsafe=True)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [(
        "WARNING",
        "safety limits exceeded, allowed by --allow-unsafe: creates+updates: 120 exceeds 100 "
        "(safety.max_changes); deletes: 6 exceeds 5 (safety.max_deletes)",
    )]


def test_a_create_that_meets_a_client_made_since_the_plan_says_who_has_its_secret(
    env: Env,
) -> None:
    plan = env.plan(targets=["acme-reporting", "globex-etl"])
    made = env.registry.create_client(REPORTING)[0]
    env.registry.create_client(ETL._replace(name="Someone else's"))
    journal = Journal.beside(env.root)
    assert full(env.apply(plan, journal=journal)) == [
        (
            "acme-reporting", "create", "created-response-lost",
            f"already created by {made.updated_by} at {made.updated_at}, since the plan (the "
            "registry answered 409); it matches the file, and its secret went to whoever "
            "created it: unless that was an apply delivering to this sink, run `oauth2-sync "
            "rotate-secret acme-reporting`",
        ),
        (
            "globex-etl", "create", "failed",
            "failed: the client already exists in the registry and differs from the file "
            "(created outside this plan?); run plan again",
        ),
    ]
    assert journal.pending() == ()  # this run created nothing: no secret of it is missing


def test_a_create_that_never_reached_the_registry_is_crossed_off(tmp_path: Path) -> None:
    env = Env(tmp_path, [REPORTING])
    env.registry = FailingRegistry(tmp_path / "registry.db", SEED)
    journal = Journal.beside(env.root)
    assert full(env.apply(env.plan(), journal=journal)) == [
        ("acme-reporting", "create", "failed", "failed: connection refused"),
    ]
    assert journal.pending() == ()


def _public_creates(plan: Plan) -> Plan:
    """``plan``'s creates as public clients (the reference registry holds none itself)."""
    return plan._replace(changes=tuple(
        c._replace(after=c.after._replace(token_endpoint_auth_method="none"))
        for c in plan.changes if c.after
    ))


class NamingRegistry(LosingRegistry):
    """Loses the create's response; holds public clients and names its clients itself (as
    a standard server does)."""

    def get_client(self, client_id: str) -> RemoteClient | None:
        found = super().get_client(client_id)
        if found is None:
            return None
        public = found.client._replace(token_endpoint_auth_method="none")
        return found._replace(client=public, registry_client_id="s6BhdRkqt3")


def test_a_public_create_whose_response_was_lost_names_the_registry_client_id(
    tmp_path: Path,
) -> None:
    public = _public_creates(Env(tmp_path, [ETL]).plan())
    registry = NamingRegistry(tmp_path / "registry.db", SEED)
    assert full(apply_plan(public, registry, None)) == [(
        "globex-etl", "create", "created",
        "created (public client: no secret; the registry's client_id is s6BhdRkqt3)",
    )]


class ReadOnly(LocalRegistry):
    def check_can_write(self) -> None:
        raise RegistryError("the token cannot write (scope read)", status=403)


class ClosedSink(DirectorySink):
    def preflight(self) -> None:
        raise SecretSinkError("the secrets folder is not writable")


@pytest.mark.parametrize("kind", ["create", "update", "delete"])
def test_a_read_only_credential_is_refused_before_any_kind_of_write(env: Env, kind: str) -> None:
    env.apply(env.plan())
    read_only = ReadOnly(env.root / "registry.db", SEED)
    check_preconditions(env.plan(prune=True), read_only, env.sink)  # nothing to write
    if kind == "create":
        env.registry.delete_client("globex-etl", None)
    else:
        env.write([REPORTING._replace(name="R2"), BILLING, ETL] if kind == "update"
                  else [REPORTING, BILLING])
    plan = env.plan(prune=True)
    assert [c.action for c in plan.changes] == [kind]
    with pytest.raises(RegistryError, match=r"^the token cannot write \(scope read\)$"):
        check_preconditions(plan, read_only, env.sink)


def test_a_sink_that_cannot_work_is_refused_only_when_something_is_created(env: Env) -> None:
    closed = ClosedSink(env.root / ".secrets")
    with pytest.raises(UsageError) as caught:
        check_preconditions(env.plan(), env.registry, closed)
    assert str(caught.value) == "the secrets folder is not writable; nothing was changed"
    env.apply(env.plan())
    env.write([REPORTING._replace(name="R2")])
    check_preconditions(env.plan(), env.registry, closed)  # an update needs no sink


@pytest.mark.parametrize(("targets", "shown"), [(["globex-etl"], "1 client"), (None, "3 clients")])
def test_creates_without_a_sink_are_counted(env: Env, targets: list[str] | None, shown: str) -> None:
    with pytest.raises(UsageError) as caught:
        plan = env.plan(targets=targets) if targets else env.plan()
        check_preconditions(plan, env.registry, None)
    assert str(caught.value).startswith(f"the plan creates {shown} but no secret sink")


def test_a_stop_before_the_first_write_attempts_nothing_and_crosses_creates_off(
    env: Env,
) -> None:
    env.write([REPORTING, BILLING._replace(name="B2")])
    env.registry.create_client(BILLING)
    plan = env.plan()  # create acme-reporting, update acme-billing-sync
    journal = Journal.beside(env.root)
    stop, stops = Stop(), list[tuple[str, int]]()
    stop.request("SIGINT")
    report = env.apply(plan, journal=journal, stop=stop,
                       on_stop=lambda reason, running: stops.append((reason, running)))
    assert full(report) == [
        ("acme-billing-sync", "update", "not-attempted", "not attempted"),
        ("acme-reporting", "create", "not-attempted", "not attempted"),
    ]
    assert stops == [("SIGINT", 0)]
    assert journal.pending() == ()


def test_a_stop_before_the_first_rotation_attempts_none(env: Env) -> None:
    env.apply(env.plan())
    stop, stops = Stop(), list[tuple[str, int]]()
    stop.request("SIGTERM")
    report = rotate_secrets(
        env.registry, env.sink, ["globex-etl"], env.settings.managed_partners, stop=stop,
        on_stop=lambda reason, running: stops.append((reason, running)),
    )
    assert full(report) == [("globex-etl", "rotate-secret", "not-attempted", "not attempted")]
    assert stops == [("SIGTERM", 0)]


class UnavailableRotation(LocalRegistry):
    def rotate_secret(self, client_id: str) -> Secret:
        raise RegistryUnavailableError("the registry is down", status=503)


def test_an_unavailable_registry_stops_the_rotations_not_yet_started(env: Env) -> None:
    env.apply(env.plan())
    seen: list[Result] = []
    report = rotate_secrets(
        UnavailableRotation(env.root / "registry.db", SEED), env.sink,
        ["acme-reporting", "globex-etl"], env.settings.managed_partners, parallelism=1,
        on_result=seen.append,
    )
    assert full(report) == [
        ("acme-reporting", "rotate-secret", "failed", "failed: the registry is down"),
        ("globex-etl", "rotate-secret", "not-attempted", "not attempted"),
    ]
    assert seen == list(report.results[:1])
    assert report.stopped == "registry-unavailable"


class RecordingSink(Sink):
    """Keeps what each delivery was told, secrets aside."""

    def __init__(self) -> None:
        self.told: list[tuple[str, str | None, str | None]] = []

    @property
    def description(self) -> str:
        return "a list"

    def deliver(
        self, client_id: str, secret: Secret, registry_client_id: str | None = None
    ) -> None:
        raise AssertionError("apply hands the creation time on: deliver_created")

    def deliver_created(
        self, client_id: str, secret: Secret, registry_client_id: str | None,
        created_at: str | None,
    ) -> None:
        self.told.append((client_id, registry_client_id, created_at))


class NamingOnCreate(LocalRegistry):
    """Names each client it creates or holds itself, as a standard server does."""

    def create_client(self, client: Client) -> tuple[RemoteClient, Secret]:
        made, secret = super().create_client(client)
        return made._replace(registry_client_id=f"reg-{client.client_id}"), secret

    def get_client(self, client_id: str) -> RemoteClient | None:
        found = super().get_client(client_id)
        return found._replace(registry_client_id=f"reg-{client_id}") if found else None


def test_the_sink_is_told_the_registry_client_id_and_creation_time(tmp_path: Path) -> None:
    env = Env(tmp_path, [ETL])
    env.registry = NamingOnCreate(tmp_path / "registry.db", SEED)
    sink = RecordingSink()
    assert full(apply_plan(env.plan(), env.registry, sink)) == [
        ("globex-etl", "create", "created", "created (secret delivered to a list)"),
    ]
    made = env.registry.get_client("globex-etl")
    assert made is not None and made.created_at
    report = rotate_secrets(env.registry, sink, ["globex-etl"], env.settings.managed_partners)
    assert full(report) == [
        ("globex-etl", "rotate-secret", "rotated", "new secret delivered to a list"),
    ]
    assert sink.told == [("globex-etl", "reg-globex-etl", made.created_at)] * 2


def test_a_public_create_names_the_client_id_the_registry_picked(tmp_path: Path) -> None:
    public = _public_creates(Env(tmp_path, [ETL]).plan())
    registry = NamingOnCreate(tmp_path / "registry.db", SEED)
    assert full(apply_plan(public, registry, None)) == [(
        "globex-etl", "create", "created",
        "created (public client: no secret; the registry's client_id is reg-globex-etl)",
    )]
