"""What ``plan``, ``apply`` and ``rotate-secret`` print around the plan itself: the
plan in the chosen format with its errors and warnings, the streamed result lines with
a progress bar, and the closing report. Renderers take the data and the stream(s).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

import click

from oauth2_sync.render import text as render_text
from oauth2_sync.render.common import line as diagnostic_line

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

    from oauth2_sync.apply import Report, Result, StopReason
    from oauth2_sync.plan import Plan

NOT_ATTEMPTED_SHOWN = 50
"""At most this many not-attempted clients are named on their line."""


def render_plan(
    plan: Plan, fmt: str, out: TextIO, err: TextIO, *, quiet: bool = False, color: bool = False
) -> None:
    """The plan on ``out`` in ``fmt`` (text, json or markdown; one line with ``quiet``
    text); outside the full text plan, its errors and safety warning on ``err``."""
    if fmt == "json":
        from oauth2_sync.render import json as render_json  # with the plan's document

        render_json.render(plan, out)
    elif fmt == "markdown":
        # Imported here: html and the comment's renderer are for pull requests only.
        from oauth2_sync.render import markdown as render_markdown

        render_markdown.render(plan, out)
    elif quiet:
        click.echo(render_text.plan_line(plan) if plan.has_changes else "No changes.", file=out)
    else:
        render_text.render(plan, out, color=color)
        return
    # The text plan lists them; otherwise the output may go to a file or a comment,
    # and the job's log must still say why it failed (or why apply will refuse it).
    render_errors(plan, err)
    if plan.exceeded:
        click.echo(f"Warning: {render_text.safety_line(plan)}", file=err)


def render_errors(plan: Plan, err: TextIO) -> None:
    """A plan's errors, one diagnostic a line."""
    for diagnostic in plan.errors:
        click.echo(diagnostic_line(diagnostic), file=err)


def render_warning(line: str, err: TextIO) -> None:
    """One ``Warning: ...`` line."""
    click.echo(f"Warning: {line}", file=err)


def render_report(
    report: Report, summary: str, out: TextIO, err: TextIO, *,
    color: bool = False, left_out: Plan | None = None,
) -> None:
    """After the streamed result lines: the clients not attempted, the summary, the
    clients the plan ``left_out`` (apply only) and why a run stopped early."""
    skipped = report.not_attempted
    if skipped:
        names = ", ".join(skipped[:NOT_ATTEMPTED_SHOWN])
        more = len(skipped) - NOT_ATTEMPTED_SHOWN
        names += f", and {more} more (run plan to see them)" if more > 0 else ""
        _line(f"{len(skipped)} not attempted: {names}", out, color=color, fg="red")
    click.echo(click.style(summary, bold=True) if color else summary, file=out)
    if left_out is not None and left_out.errors:
        _line(f"Error: {render_text.errors_line(left_out)}", out, color=color, fg="red")
    if report.stopped == "registry-unavailable":
        command = "apply" if left_out is not None else "rotate-secret"
        click.echo(
            f"Error: the registry became unavailable, so {command} started no more writes; "
            "run it again once the registry answers (plan shows what is left)",
            file=err,
        )


def _line(text: str, out: TextIO, *, color: bool, fg: str) -> None:
    click.echo(click.style(text, fg=fg) if color else text, file=out)


class ProgressLines:
    """Each client's result line on ``out`` as it finishes, and a bar on ``err`` when
    it is a terminal; with ``quiet``, only the lines of clients that need attention."""

    def __init__(self, out: TextIO, err: TextIO, *, quiet: bool, color: bool) -> None:
        self.out, self.err, self.quiet, self.color = out, err, quiet, color
        self._bar: ProgressBar[int] | None = None

    @contextmanager
    def showing(self, total: int, label: str) -> Iterator[ProgressLines]:
        """Show the progress of ``total`` writes (a bar only for two or more)."""
        if not self.err.isatty() or total < 2:
            yield self
            return
        with click.progressbar(length=total, label=label, file=self.err) as bar:
            self._bar = bar
            try:
                yield self
            finally:
                self._bar = None

    def _clear_bar(self) -> None:
        # The bar owns the terminal's last line: clear it before a line of our own.
        if self._bar is not None:
            self.err.write("\r\033[K")
            self.err.flush()

    def step(self, result: Result) -> None:
        """One client finished: its line, and the bar one step on."""
        if not (self.quiet and result.ok):
            self._clear_bar()
            line = result.line()
            click.echo(
                click.style(line, fg="red") if self.color and not result.ok else line,
                file=self.out,
            )
        if self._bar is not None:
            self._bar.update(1)

    def stopping(self, reason: StopReason, in_flight: int) -> None:
        """The run starts no new write: say why and what it waits for."""
        self._clear_bar()
        why = "Registry unavailable" if reason == "registry-unavailable" else "Interrupt received"
        click.echo(
            f"{why}, stopping: no new writes; waiting for {in_flight} in flight", file=self.err
        )
