"""The workflows of ``apply`` and ``rotate-secret``, for the command line and for
library callers alike.

``run_apply`` picks a plan file or a fresh plan, reconciles the journal, checks the
preconditions and the safety limits, asks for approval, runs the writes with stop and
interrupt handling, and compacts the journal. What is shown and asked goes through an
``ApplyUI``, so this module prints nothing itself.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Protocol, TypeAlias

from oauth2_sync.errors import UsageError
from oauth2_sync.records import NamedTuple

if TYPE_CHECKING:
    # Only the runs that write need the apply machinery at run time: plan, which uses
    # this module's warnings, does not import it (#14, fixed cost of a plan).
    from oauth2_sync.apply import Report, Result, Stop, StopReason
    from oauth2_sync.journal import Journal, Pending
    from oauth2_sync.plan import Plan
    from oauth2_sync.registry.base import Registry
    from oauth2_sync.settings import Settings

Writes: TypeAlias = (
    "Callable[[Callable[[Result], None], Stop, Callable[[StopReason, int], None]], Report]"
)
"""Runs the writes: ``(on_result, stop, on_stop) -> Report``."""

EXIT_CODES: dict[StopReason, int] = {"SIGINT": 128 + 2, "SIGTERM": 128 + 15}
"""The exit code after an interrupted run, as shells report a death by the signal: 128
and its number (POSIX's SIGINT and SIGTERM; ``signal`` is imported only by an apply)."""


class Progress(Protocol):
    """Where a run reports each finished client and a stop."""

    def step(self, result: Result) -> None:
        """One client finished."""

    def stopping(self, reason: StopReason, in_flight: int) -> None:
        """The run starts no new write; ``in_flight`` are still running."""


ProgressFactory = Callable[[int, str], AbstractContextManager[Progress]]
"""``(total, label)`` -> a context that shows the progress of ``total`` writes."""


class ApplyUI(Protocol):
    """What ``run_apply`` shows and asks while it runs."""

    def show_plan(self, plan: Plan, *, fresh: bool) -> None:
        """A plan about to be applied: ``fresh`` when just made, else read from a file."""

    def warn(self, line: str) -> None:
        """A warning line (without the ``Warning: `` prefix)."""

    def confirm(self) -> bool:
        """Whether the user approves the plan shown (only asked without --auto-approve)."""

    def progress(self, total: int, label: str) -> AbstractContextManager[Progress]:
        """Show the progress of ``total`` writes."""


class ApplyOptions(NamedTuple):
    """What ``apply`` was asked to do (its command-line options)."""

    planfile: Path | None = None
    auto_approve: bool = False
    parallelism: int = 4
    allow_unsafe: bool = False
    prune: bool | None = None
    """``--prune``/``--no-prune``; ``None``: as the settings say."""
    targets: tuple[str, ...] = ()

    def check(self) -> None:
        """Refuse what only planning decides when a plan file is given."""
        if self.planfile is not None and (self.prune is not None or self.targets):
            option = (
                "--target" if self.prune is None else "--prune" if self.prune else "--no-prune"
            )
            raise UsageError(
                f"{option} is decided when planning: make the plan with "
                f"`oauth2-sync plan {option} ... --out FILE`, then apply FILE"
            )


class ApplyOutcome(NamedTuple):
    """The end of ``run_apply``: the plan, and the report unless nothing ran."""

    plan: Plan
    report: Report | None = None
    cancelled: bool = False
    """The user did not approve the plan; nothing was written."""

    @property
    def exit_code(self) -> int:
        """0 when every client succeeded; 130/143 after SIGINT/SIGTERM; 1 otherwise."""
        if self.cancelled:
            return 1
        if self.report is None:
            return 1 if self.plan.errors else 0
        return exit_code(self.report, self.plan)


def exit_code(report: Report, left_out: Plan | None = None) -> int:
    """130/143 after SIGINT/SIGTERM, 1 on any problem (a failed client, or clients a
    plan ``left_out``), else 0."""
    if report.stopped is not None and report.stopped in EXIT_CODES:
        return EXIT_CODES[report.stopped]
    if not report.ok or (left_out is not None and bool(left_out.errors)):
        return 1
    return 0


def pending_secrets(settings: Settings, plan: Plan) -> tuple[Journal, tuple[Pending, ...]]:
    """The configuration's journal, and the clients an earlier apply created without
    delivering their secrets (``journal.py``) that still exist."""
    from oauth2_sync.journal import Journal

    journal = Journal.beside(settings.root)
    return journal, journal.reconcile({client_id for client_id, _ in plan.versions})


def no_sink_warning(settings: Settings, plan: Plan) -> str | None:
    """What apply would refuse, said at plan time: creates with no secret sink."""
    from oauth2_sync.plandata import secret_creates

    creates = len(secret_creates(plan))
    if creates and not settings.secrets.configured:
        return (
            f"the plan creates {creates} client{'' if creates == 1 else 's'} but "
            "no secret sink is configured (settings: secrets.directory or "
            "secrets.command); apply will refuse to create them"
        )
    return None


def run_apply(config: Path, options: ApplyOptions, ui: ApplyUI) -> ApplyOutcome:
    """Make the registry match the files of the settings ``config``, or apply exactly
    the plan file ``options.planfile``. Raises ``Oauth2SyncError`` before any write
    when the run cannot start (a usage error, unmet preconditions, safety limits)."""
    from oauth2_sync import apply as applying
    from oauth2_sync.registry import open_registry
    from oauth2_sync.settings import load_settings
    from oauth2_sync.sink import open_sink

    options.check()
    settings = load_settings(config)
    sink = open_sink(settings)
    with open_registry(settings) as registry:
        made = _plan_to_apply(settings, registry, options, ui)
        journal, pending = pending_secrets(settings, made)
        for item in pending:
            ui.warn(item.warning())
        if not made.has_changes:
            return ApplyOutcome(made)
        applying.check_preconditions(made, registry, sink)
        applying.check_safety(made, settings.safety, allow_unsafe=options.allow_unsafe)
        # Asked only now: with nothing to change there is nothing to approve.
        if options.planfile is None and not options.auto_approve and not ui.confirm():
            return ApplyOutcome(made, cancelled=True)
        report = run_writes(
            ui.progress, len(made.changes), "Applying",
            lambda step, stop, on_stop: applying.apply_plan(
                made, registry, sink, parallelism=options.parallelism, on_result=step,
                journal=journal, stop=stop, on_stop=on_stop,
            ),
        )
        journal.compact()
    return ApplyOutcome(made, report)


def _plan_to_apply(
    settings: Settings, registry: Registry, options: ApplyOptions, ui: ApplyUI
) -> Plan:
    from oauth2_sync import plan as planning
    from oauth2_sync.planfile import load_checked

    if options.planfile is not None:
        made = load_checked(options.planfile, settings, registry)  # re-checked: planfile.py
        ui.show_plan(made, fresh=False)
        return made
    made = planning.make_plan(
        settings, registry, targets=options.targets, prune=options.prune
    )
    # Approved for this run: "apply will refuse this plan" would be untrue.
    ui.show_plan(made._replace(exceeded=()) if options.allow_unsafe else made,
                 fresh=True)
    return made


def run_rotate(
    config: Path, client_ids: tuple[str, ...], parallelism: int, progress: ProgressFactory
) -> Report:
    """Issue new secrets for the managed clients ``client_ids`` and deliver them to the
    secret sink; refuses without a sink, since the new secrets would be lost."""
    from oauth2_sync import apply as applying
    from oauth2_sync.journal import Journal
    from oauth2_sync.registry import open_registry
    from oauth2_sync.settings import load_settings
    from oauth2_sync.sink import open_sink

    settings = load_settings(config)
    sink = open_sink(settings)
    journal = Journal.beside(settings.root)
    if sink is None:
        raise UsageError(
            "no secret sink is configured (settings: secrets.directory or secrets.command); "
            "refusing to rotate secrets that would be lost"
        )
    applying.check_sink(sink, ())
    with open_registry(settings) as registry:
        report = run_writes(
            progress, len(set(client_ids)), "Rotating",
            lambda step, stop, on_stop: applying.rotate_secrets(
                registry, sink, client_ids, settings.managed_partners,
                parallelism=parallelism, on_result=step, journal=journal, stop=stop,
                on_stop=on_stop,
            ),
        )
    journal.compact()
    return report


def run_writes(progress: ProgressFactory, total: int, label: str, writes: Writes) -> Report:
    """Run ``writes`` under ``progress``, stopping on SIGINT or SIGTERM (see
    ``stopping_on_signals``)."""
    from oauth2_sync.apply import Stop

    stop = Stop()
    with stopping_on_signals(stop), progress(total, label) as shown:
        return writes(shown.step, stop, shown.stopping)


@contextlib.contextmanager
def stopping_on_signals(stop: Stop) -> Iterator[None]:
    """SIGINT and SIGTERM ask ``stop`` for no new writes, as Terraform does on Ctrl-C
    (CI runners send these on cancel and timeout); a second one exits at once."""
    import signal  # only writes need it; its enums cost every plan's start-up (#14)

    received: list[int] = []

    def handle(signum: int, _frame: FrameType | None) -> None:
        if received:
            stop.abandon()
            # os.write, not a stream: the interrupted code may be inside a write to
            # the same stream, and exiting now must not wait for anything.
            os.write(2, (
                f"Interrupt received again: exiting now, without waiting for the "
                f"{stop.in_flight} in flight; run plan to see what they did\n"
            ).encode())
            os._exit(128 + signum)
        received.append(signum)
        stop.request("SIGTERM" if signum == signal.SIGTERM else "SIGINT")

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (a test runner's worker, say)
        return
    previous = {number: signal.signal(number, handle) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
