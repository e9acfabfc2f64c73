"""``drift``: where the registry differs from the files."""

from __future__ import annotations

import sys

import click

from oauth2_sync.commands.base import FORMATS, Context, common_options, exit_with, pass_ctx


@click.command("drift", short_help="Report where the registry differs from the files.")
@click.option(
    "--format", "fmt", type=click.Choice([*FORMATS, "junit"]), default="text",
    show_default=True, help="Output format (markdown: an issue body; junit: for CI).",
)
@common_options
@pass_ctx
def drift(ctx: Context, fmt: str) -> None:
    """Report where the registry differs from the files, out-of-band edits included.

    Clients changed in the registry, declared but missing from it, and clients of
    managed partners that no file declares; `drift.fields` in the settings decides per
    field whether a difference counts. Exit 0 without drift, 2 with drift, 1 on errors.
    """
    from oauth2_sync import drift as drifting
    from oauth2_sync.registry import open_registry
    from oauth2_sync.render import drift as render
    from oauth2_sync.settings import load_settings

    settings = load_settings(ctx.config)
    with open_registry(settings) as registry:
        report = drifting.make_drift(settings, registry)
    out = sys.stdout
    renderer = {
        "json": render.render_json,
        "markdown": render.render_markdown,
        "junit": render.render_junit,
    }.get(fmt, render.render_text)
    renderer(report, out, color=ctx.use_color(out))
    exit_with(2 if report.has_drift else 0)
