"""``rotate-secret``: new secrets for managed clients, delivered to the sink."""

from __future__ import annotations

import sys

import click

from oauth2_sync.commands.base import Context, common_options, exit_with, pass_ctx


@click.command("rotate-secret", short_help="Issue new secrets and deliver them to the secret sink.")
@click.argument("client_ids", nargs=-1, required=True, metavar="CLIENT_ID...")
@click.option(
    "--parallelism", type=click.IntRange(1, 64), default=4, show_default=True,
    help="Rotations in flight at once.",
)
@common_options
@pass_ctx
def rotate_secret(ctx: Context, client_ids: tuple[str, ...], parallelism: int) -> None:
    """Issue new secrets for managed clients and deliver them to the secret sink.

    The old secret of each client stops working. Exit 0 when every rotation was
    delivered, 1 otherwise.
    """
    from oauth2_sync.render.report import ProgressLines, render_report
    from oauth2_sync.workflow import exit_code, run_rotate

    out, err = sys.stdout, sys.stderr
    color = ctx.use_color(out)
    lines = ProgressLines(out, err, quiet=ctx.quiet, color=color)
    report = run_rotate(ctx.config, client_ids, parallelism, lines.showing)
    render_report(report, report.rotation_summary(), out, err, color=color)
    exit_with(exit_code(report))
