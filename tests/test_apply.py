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
    apply_plan,
    check_preconditions,
    check_safety,
    rotate_secrets,
    secret_creates,
)
from oauth2_sync.errors import RegistryError, SafetyLimitError, SecretSinkError, UsageError
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
