"""``fmt``: rewrite client files in normal form, with black's words for ``--check`` and
``--diff``. The file lines and the summary go to stdout, or with ``--diff`` to stderr so
that stdout is a patch (ruff format's choice); errors alone go to stderr, one line each."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from oauth2_sync.commands.base import Context, common_options, exit_with, pass_ctx

if TYPE_CHECKING:  # the library is imported when the command runs, for start-up time
    from oauth2_sync.fmt import FmtReport


@click.command("fmt", short_help="Rewrite client files in normal form, keeping comments.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@click.option(
    "--check", is_flag=True,
    help="Write nothing; say which files would be reformatted; exit 1 if any would.",
)
@click.option(
    "--diff", "show_diff", is_flag=True,
    help="Write nothing; print a unified diff per file that would be reformatted.",
)
@common_options
@pass_ctx
def fmt_command(ctx: Context, paths: tuple[Path, ...], check: bool, show_diff: bool) -> None:
    """Rewrite client files in normal form, keeping comments and layout.

    Keys in schema order, sets sorted; values keep their spelling. PATHS are client
    files or folders; by default those the settings name. Says `reformatted FILE` for
    each file it rewrote (with --check or --diff, `would reformat FILE`, and writes
    nothing), then a summary; --diff prints the diffs instead, the rest on stderr.
    Exit 0, or 1 on errors and, with --check, when a file would be reformatted.
    """
    from oauth2_sync import fmt
    from oauth2_sync.settings import load_settings
    from oauth2_sync.sources import expand_paths

    files = expand_paths(paths) if paths else load_settings(ctx.config).client_files()
    dry = check or show_diff
    report = fmt.format_paths(files, write=not dry)
    for diagnostic in report.diagnostics:
        click.echo(str(diagnostic), err=True)
    for result in report.changed:
        if show_diff:
            click.echo(result.diff(), nl=False)
        if not ctx.quiet:
            verb = "would reformat" if dry else "reformatted"
            click.echo(f"{verb} {result.display}", err=show_diff)
    if not ctx.quiet:
        click.echo(summary(report, dry=dry), err=show_diff)
    exit_with(1 if report.diagnostics or (check and report.changed) else 0)


def summary(report: FmtReport, *, dry: bool) -> str:
    """black's summary: ``1 file reformatted, 2 files left unchanged.`` (with ``dry``:
    ``would be reformatted``, ``would be left unchanged``), and the files that failed."""
    changed = len(report.changed)
    unchanged = len(report.files) - changed
    failed = len({d.file for d in report.diagnostics})
    would = "would be " if dry else ""
    parts = [
        f"{_files(changed)} {would}reformatted" if changed else "",
        f"{_files(unchanged)} {would}left unchanged" if unchanged else "",
        f"{_files(failed)} failed to reformat" if failed else "",
    ]
    text = ", ".join(part for part in parts if part)
    return f"{text}." if text else "No client files to format."


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"
