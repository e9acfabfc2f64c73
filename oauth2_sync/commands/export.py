"""``export``: client files for what the registry holds."""

from __future__ import annotations

from pathlib import Path

import click

from oauth2_sync.commands.base import Context, common_options, exit_with, pass_ctx


@click.command("export")
@click.option(
    "--partner", "partners", multiple=True, metavar="PARTNER",
    help="Export only this partner's clients (repeatable).",
)
@click.option(
    "--client-id", "client_ids", multiple=True, metavar="CLIENT_ID",
    help="Export only this client (repeatable).",
)
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), default=None,  # checked by export
    help="Write below this folder (default: the folder of the settings).",
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option(
    "--include-declared", is_flag=True,
    help="Also export clients that a file of the configuration already declares.",
)
@common_options
@pass_ctx
def export(
    ctx: Context,
    *,
    partners: tuple[str, ...],
    client_ids: tuple[str, ...],
    out_dir: Path | None,
    force: bool,
    include_declared: bool,
) -> None:
    """Write client files for what the registry holds, to adopt clients into the repo.

    One file per client, named after it, in the folder of the team that manages its
    partner. Clients already declared are skipped; existing files are kept unless
    --force; no secret is ever written. Exit 0, or 1 if a client could not be written.
    """
    from oauth2_sync import export as exporting
    from oauth2_sync.registry import open_registry
    from oauth2_sync.settings import load_settings

    settings = load_settings(ctx.config)
    with open_registry(settings) as registry:
        report = exporting.export(
            settings, registry, partners=partners, client_ids=client_ids, out=out_dir,
            force=force, include_declared=include_declared,
        )
    for line in exporting.report_lines(report, quiet=ctx.quiet, verbose=ctx.verbose):
        click.echo(line.text, err=line.error)
    exit_with(1 if report.failed else 0)
