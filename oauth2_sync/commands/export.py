"""``export``: client files for what the registry holds."""

from __future__ import annotations

from pathlib import Path

import click

from oauth2_sync.commands.base import Context, common_options, exit_with, pass_ctx


@click.command("export", short_help="Write client files for clients the registry holds.")
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
@click.option(
    "--list-created", is_flag=True,
    help="Write no file: print each managed client of the registry and its creation "
    "time (client_id, a tab, createdAt), one a line, for ci/store-secret --audit.",
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
    list_created: bool,
) -> None:
    """Write client files for what the registry holds, to adopt clients into the repo.

    One file per client, named after it, in the folder of the team that manages its
    partner. Clients already declared are skipped; existing files are kept unless
    --force; no secret is ever written. Exit 0, or 1 if a client could not be written.
    """
    from oauth2_sync import export as exporting
    from oauth2_sync.registry import open_registry
    from oauth2_sync.render import escape
    from oauth2_sync.settings import load_settings

    settings = load_settings(ctx.config)
    with open_registry(settings) as registry:
        if list_created:
            for client_id, created_at in exporting.creation_list(settings, registry):
                click.echo(f"{escape(client_id)}\t{escape(created_at)}")
            return
        report = exporting.export(
            settings, registry, partners=partners, client_ids=client_ids, out=out_dir,
            force=force, include_declared=include_declared,
        )
    for line in exporting.report_lines(report, quiet=ctx.quiet, verbose=ctx.verbose):
        click.echo(line.text, err=line.error)
    exit_with(1 if report.failed else 0)
