"""``validate``: check client files and the settings offline."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from oauth2_sync.commands.base import Context, common_options, exit_with, pass_ctx


@click.command("validate", short_help="Check client files and the settings offline.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text",
    show_default=True, help="Output format.",
)
@common_options
@pass_ctx
def validate(ctx: Context, paths: tuple[Path, ...], fmt: str) -> None:
    """Check client files and the settings offline (no registry call).

    PATHS are client files or folders; by default those the settings name.
    Exit 0 when there are no errors (warnings allowed), 1 otherwise.
    """
    from oauth2_sync import validation
    from oauth2_sync.errors import InputError
    from oauth2_sync.render import diagnostics as render
    from oauth2_sync.settings import load_settings

    try:
        settings = load_settings(ctx.config)
        result = validation.validate(settings, list(paths) or None)
        found, files, clients = result.diagnostics, len(result.files), len(result.clients)
    except InputError as exc:
        found, files, clients = exc.diagnostics, 1, 0
    out = sys.stdout
    # --quiet shortens what people read; the JSON document stays whole (it is data).
    if fmt == "json":
        render.render_json(found, files, clients, out)
    elif fmt == "github":
        render.render_github(found, files, clients, out, quiet=ctx.quiet)
    else:
        render.render_text(
            found, files, clients, out, color=ctx.use_color(out), quiet=ctx.quiet
        )
    exit_with(1 if any(d.severity == "error" for d in found) else 0)
