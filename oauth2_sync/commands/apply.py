"""``apply``: make the registry match the files (the workflow is ``workflow.run_apply``)."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from oauth2_sync.commands.base import Context, common_options, exit_with, pass_ctx

if TYPE_CHECKING:  # the library is imported when the command runs, for start-up time
    from oauth2_sync.plan import Plan
    from oauth2_sync.render.report import ProgressLines


@click.command("apply", short_help="Make the registry match the files.")
@click.argument(
    "planfile", required=False, type=click.Path(path_type=Path)  # checked when read
)
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option(
    "--parallelism", type=click.IntRange(1, 64), default=4, show_default=True,
    help="Writes in flight at once.",
)
@click.option(
    "--allow-unsafe", is_flag=True, help="Apply even over the safety limits (this run only).",
)
@click.option(
    "--prune/--no-prune", default=None,
    help="Delete managed clients no file declares (default: the settings; not with "
    "PLANFILE).",
)
@click.option(
    "--target", "targets", multiple=True, metavar="CLIENT_ID",
    help="Apply only this client (repeatable; not with PLANFILE).",
)
@common_options
@pass_ctx
def apply(
    ctx: Context,
    *,
    planfile: Path | None,
    auto_approve: bool,
    parallelism: int,
    allow_unsafe: bool,
    prune: bool | None,
    targets: tuple[str, ...],
) -> None:
    """Make the registry match the files.

    With PLANFILE (from `plan --out`), apply exactly that plan: a client changed since
    is refused and left untouched. Without it, plan, show the plan and ask for
    confirmation (on a terminal; elsewhere pass --auto-approve). Exit 0 when every
    client succeeded, 1 otherwise (clients the registry cannot hold are left out and
    count as failures; the others are applied).
    """
    from oauth2_sync.render.report import render_report
    from oauth2_sync.workflow import ApplyOptions, run_apply

    ui = _TerminalUI(ctx, sys.stdin, sys.stdout, sys.stderr)
    options = ApplyOptions(
        planfile=planfile, auto_approve=auto_approve, parallelism=parallelism,
        allow_unsafe=allow_unsafe, prune=prune, targets=targets,
    )
    options.check()  # before the settings are looked for, as a usage error should be
    outcome = run_apply(ctx.config, options, ui)
    if outcome.cancelled:
        click.echo("\nApply cancelled.", err=True)
    elif outcome.report is None:
        if planfile is not None and not ctx.quiet:
            click.echo("No changes.")
    else:
        render_report(
            outcome.report, outcome.report.summary(), ui.out, ui.err,
            color=ctx.use_color(ui.out), left_out=outcome.plan,
        )
    exit_with(outcome.exit_code)


class _TerminalUI:
    """``workflow.ApplyUI`` on the terminal: the plan, warnings, the prompt, the lines."""

    def __init__(self, ctx: Context, stdin: TextIO, out: TextIO, err: TextIO) -> None:
        self.ctx, self.stdin, self.out, self.err = ctx, stdin, out, err

    def show_plan(self, plan: Plan, *, fresh: bool) -> None:
        from oauth2_sync.render.report import render_errors, render_plan

        if fresh and (plan.has_changes or not self.ctx.quiet):
            render_plan(plan, "text", self.out, self.err, quiet=self.ctx.quiet,
                        color=self.ctx.use_color(self.out))
        else:
            render_errors(plan, self.err)

    def warn(self, line: str) -> None:
        from oauth2_sync.render.report import render_warning

        render_warning(line, self.err)

    def confirm(self) -> bool:
        from oauth2_sync.errors import UsageError

        if not self.stdin.isatty():
            raise UsageError(
                "apply asks for confirmation on a terminal, and there is none: pass "
                "--auto-approve, or apply a saved plan (`plan --out FILE`, then "
                "`apply FILE`)"
            )
        answer: str = click.prompt(
            "\nDo you want to perform these actions?\n"
            "  Only 'yes' will be accepted to approve.\n\n  Enter a value",
            default="", show_default=False,
        )
        return answer.strip() == "yes"

    def progress(self, total: int, label: str) -> AbstractContextManager[ProgressLines]:
        from oauth2_sync.render.report import ProgressLines

        lines = ProgressLines(
            self.out, self.err, quiet=self.ctx.quiet, color=self.ctx.use_color(self.out)
        )
        return lines.showing(total, label)
