"""``plan``: read the registry and show what apply would do."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from oauth2_sync.commands.base import FORMATS, Context, common_options, exit_with, pass_ctx


@click.command("plan", short_help="Read the registry and show what apply would do.")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
    help="Output format (markdown: a pull-request comment).",
)
@click.option(
    "--out", "out_file", type=click.Path(path_type=Path), default=None,
    help="Save the plan to FILE (a regular file), for `apply FILE`.",
)
@click.option(
    "--target", "targets", multiple=True, metavar="CLIENT_ID",
    help="Plan only this client (repeatable).",
)
@click.option(
    "--prune/--no-prune", default=None,
    help="Plan deletes of managed clients no file declares (default: the settings).",
)
@common_options
@pass_ctx
def plan(
    ctx: Context, fmt: str, out_file: Path | None, targets: tuple[str, ...], prune: bool | None
) -> None:
    """Read the registry and show what apply would do.

    Exit 0 when there are no changes, 2 when there are, 1 on errors (including clients
    the registry cannot hold, which are left out of the plan).
    """
    from oauth2_sync import plan as planning
    from oauth2_sync import workflow
    from oauth2_sync.registry import open_registry
    from oauth2_sync.render.report import render_plan, render_warning
    from oauth2_sync.settings import load_settings

    settings = load_settings(ctx.config)
    if out_file is not None:
        from oauth2_sync import plandoc  # a plan's document: only a saved plan needs it

        plandoc.check_out_path(out_file)  # before the registry is read: fail fast
    with open_registry(settings) as registry:
        made = planning.make_plan(
            settings, registry, targets=targets, prune=prune,
            digests=out_file is not None or fmt == "json",  # what a saved plan records
        )
    out, err = sys.stdout, sys.stderr
    _, pending = workflow.pending_secrets(settings, made)
    no_sink = workflow.no_sink_warning(settings, made)
    for line in [item.warning() for item in pending] + ([no_sink] if no_sink else []):
        render_warning(line, err)
    if out_file is not None:
        from oauth2_sync import plandoc

        plandoc.save(made, out_file)
    render_plan(made, fmt, out, err, quiet=ctx.quiet, color=ctx.use_color(out))
    if out_file is not None and not ctx.quiet:
        click.echo(
            f"\nSaved the plan to: {out_file}\n"
            f"To perform exactly these actions, run: oauth2-sync apply {out_file}",
            err=fmt != "text",
        )
    exit_with(1 if made.errors else 2 if made.has_changes else 0)
