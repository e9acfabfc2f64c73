"""``fmt``: rewrite client files in normal form."""

from __future__ import annotations

from pathlib import Path

import click

from oauth2_sync.commands.base import Context, common_options, exit_with, pass_ctx


@click.command("fmt")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a file is not formatted.")
@click.option("--diff", "show_diff", is_flag=True, help="Show what would change as a diff.")
@common_options
@pass_ctx
def fmt_command(ctx: Context, paths: tuple[Path, ...], check: bool, show_diff: bool) -> None:
    """Rewrite client files in normal form, keeping comments and layout.

    Keys in schema order, sets sorted; values keep their spelling. PATHS are client
    files or folders; by default those the settings name. Lists the files it changed
    (with --check: that it would change). Exit 0, or 1 on errors and, with --check,
    when a file is not formatted.
    """
    from oauth2_sync import fmt
    from oauth2_sync.settings import load_settings
    from oauth2_sync.validation import expand_paths

    files = expand_paths(paths) if paths else load_settings(ctx.config).client_files()
    report = fmt.format_paths(files, write=not check)
    for diagnostic in report.diagnostics:
        click.echo(str(diagnostic), err=True)
    for result in report.changed:
        click.echo(result.display)
        if show_diff:
            click.echo(result.diff(), nl=False)
    exit_with(1 if report.diagnostics or (check and report.changed) else 0)
