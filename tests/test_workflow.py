"""``workflow.run_apply`` and ``run_rotate`` called as a library, with a recording UI:
the apply workflow no longer needs the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.configrepo import client, write_repo

from oauth2_sync.apply import Result, StopReason
from oauth2_sync.errors import UsageError
from oauth2_sync.plan import Plan
from oauth2_sync.workflow import ApplyOptions, exit_code, no_sink_warning, run_apply, run_rotate

SEED = Path(__file__).parents[1] / "examples" / "registry-seed.yaml"
CLIENTS = [client("acme-reporting"), client("globex-etl")]


class Recorder:
    """An ``ApplyUI`` that keeps what it was shown and answers the prompt as told."""

    def __init__(self, *, approve: bool = True) -> None:
        self.approve = approve
        self.events: list[str] = []
        self.results: list[Result] = []

    def show_plan(self, plan: Plan, *, fresh: bool) -> None:
        self.events.append(f"plan fresh={fresh} changes={len(plan.changes)}")

    def warn(self, line: str) -> None:
        self.events.append(f"warning {line}")

    def confirm(self) -> bool:
        self.events.append("confirm")
        return self.approve

    @contextmanager
    def progress(self, total: int, label: str) -> Iterator[Recorder]:
        self.events.append(f"{label} {total}")
        yield self

    def step(self, result: Result) -> None:
        self.results.append(result)

    def stopping(self, reason: StopReason, in_flight: int) -> None:
        self.events.append(f"stopping {reason} {in_flight}")


def settings_file(root: Path) -> Path:
    return write_repo(root, CLIENTS, extra={"registry": {"url": "local:registry.db", "seed": str(SEED)}})


def test_fresh_plan_approved_applies_and_converges(tmp_path: Path) -> None:
    config = settings_file(tmp_path)
    ui = Recorder()
    outcome = run_apply(config, ApplyOptions(), ui)
    assert ui.events == ["plan fresh=True changes=2", "confirm", "Applying 2"]
    assert outcome.report is not None and outcome.report.ok
    assert [r.status for r in ui.results] == ["created", "created"]
    assert outcome.exit_code == 0
    secret = json.loads((tmp_path / ".secrets" / "acme-reporting.json").read_text())
    assert secret["client_id"] == "acme-reporting"
    # Converged: the next run shows an empty plan, asks nothing, writes nothing.
    again = Recorder()
    outcome = run_apply(config, ApplyOptions(), again)
    assert again.events == ["plan fresh=True changes=0"]
    assert outcome.report is None and outcome.exit_code == 0


def test_not_approved_writes_nothing(tmp_path: Path) -> None:
    config = settings_file(tmp_path)
    outcome = run_apply(config, ApplyOptions(), Recorder(approve=False))
    assert outcome.cancelled and outcome.report is None and outcome.exit_code == 1
    assert not list((tmp_path / ".secrets").glob("*.json"))


def test_auto_approve_asks_nothing(tmp_path: Path) -> None:
    ui = Recorder(approve=False)
    outcome = run_apply(settings_file(tmp_path), ApplyOptions(auto_approve=True), ui)
    assert "confirm" not in ui.events
    assert outcome.report is not None and exit_code(outcome.report, outcome.plan) == 0


def test_plan_file_options_refused_before_the_settings_are_read(tmp_path: Path) -> None:
    options = ApplyOptions(planfile=tmp_path / "plan.json", targets=("acme-reporting",))
    with pytest.raises(UsageError, match="--target is decided when planning"):
        run_apply(tmp_path / "missing.yaml", options, Recorder())


def test_rotate_reports_each_client(tmp_path: Path) -> None:
    config = settings_file(tmp_path)
    run_apply(config, ApplyOptions(auto_approve=True), Recorder())
    ui = Recorder()
    report = run_rotate(config, ("acme-reporting",), 2, ui.progress)
    assert ui.events == ["Rotating 1"]
    assert [(r.client_id, r.status) for r in report.results] == [("acme-reporting", "rotated")]
    assert exit_code(report) == 0


def test_no_sink_warning_names_the_creates(tmp_path: Path) -> None:
    from oauth2_sync.plan import make_plan
    from oauth2_sync.registry import open_registry
    from oauth2_sync.settings import load_settings

    config = write_repo(
        tmp_path, CLIENTS,
        extra={"registry": {"url": "local:registry.db", "seed": str(SEED)}, "secrets": {}},
    )
    settings = load_settings(config)
    with open_registry(settings) as registry:
        made = make_plan(settings, registry)
    assert no_sink_warning(settings, made) == (
        "the plan creates 2 clients but no secret sink is configured (settings: "
        "secrets.directory or secrets.command); apply will refuse to create them"
    )


def test_no_prune_overrides_the_settings_as_plan_does(tmp_path: Path) -> None:
    extra = {
        "registry": {"url": "local:registry.db", "seed": str(SEED)}, "prune": True,
        "safety": {"max_deletes": 5, "max_deletes_percent": 100},
    }
    config = write_repo(tmp_path, CLIENTS, extra=extra)
    run_apply(config, ApplyOptions(auto_approve=True), Recorder())
    write_repo(tmp_path, CLIENTS[:1], extra=extra)  # globex-etl is no longer declared
    kept = Recorder()
    outcome = run_apply(config, ApplyOptions(auto_approve=True, prune=False), kept)
    assert kept.events == ["plan fresh=True changes=0"] and outcome.exit_code == 0
    pruned = Recorder()
    outcome = run_apply(config, ApplyOptions(auto_approve=True), pruned)  # the settings: prune
    assert pruned.events == ["plan fresh=True changes=1", "Applying 1"]
    assert [(r.client_id, r.status) for r in pruned.results] == [("globex-etl", "deleted")]


@pytest.mark.parametrize("prune", [True, False])
def test_prune_either_way_is_refused_with_a_plan_file(tmp_path: Path, prune: bool) -> None:
    options = ApplyOptions(planfile=tmp_path / "plan.json", prune=prune)
    option = "--prune" if prune else "--no-prune"
    with pytest.raises(UsageError) as caught:
        run_apply(tmp_path / "missing.yaml", options, Recorder())
    assert str(caught.value) == (
        f"{option} is decided when planning: make the plan with "
        f"`oauth2-sync plan {option} ... --out FILE`, then apply FILE"
    )
