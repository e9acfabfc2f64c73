"""The command line: parse, call the library, render. Nothing else lives here.

Every ``Oauth2SyncError`` is caught once, in ``main``, and printed as one line per
finding; tracebacks only with ``--verbose``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from oauth2_sync import __version__
from oauth2_sync.errors import InputError, Oauth2SyncError

logger = logging.getLogger(__name__)

FORMATS = ("text", "json", "markdown")


class Context:
    """Options shared by every command."""

    def __init__(self, config: Path, verbose: int, quiet: bool, color: bool | None) -> None:
        self.config = config
        self.verbose = verbose
        self.quiet = quiet
        self.color = color

    def use_color(self, stream: Any) -> bool:
        """Colour only on a terminal, never with --no-color or NO_COLOR."""
        if self.color is False or os.environ.get("NO_COLOR"):
            return False
        return bool(getattr(stream, "isatty", lambda: False)())


pass_ctx = click.make_pass_decorator(Context)


class _Group(click.Group):
    """A group whose commands' ``Oauth2SyncError`` become one line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as exc:
            for diagnostic in exc.diagnostics:
                click.echo(str(diagnostic), err=True)
            ctx.exit(1)
        except Oauth2SyncError as exc:
            if ctx.obj is not None and ctx.obj.verbose:
                logger.exception("error")
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oauth2-sync")
@click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("oauth2-sync.yaml"),
    show_default=True,
    help="The settings file.",
)
@click.option("-v", "--verbose", count=True, help="More detail; tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and results.")
@click.option("--no-color", is_flag=True, help="No colours (NO_COLOR is honoured too).")
@click.pass_context
def cli(ctx: click.Context, config: Path, verbose: int, quiet: bool, no_color: bool) -> None:
    """Manage the OAuth2 clients of a client registry as code."""
    logging.basicConfig(
        level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    ctx.obj = Context(config, verbose, quiet, False if no_color else None)


def _set_common(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    # The common options work after the command name too (`oauth2-sync plan -q`).
    obj = ctx.find_object(Context)
    if obj is None or value is None or value is False or value == 0:
        return
    if param.name == "config":
        obj.config = value
    elif param.name == "verbose":
        obj.verbose = max(obj.verbose, value)
        logging.getLogger().setLevel(logging.DEBUG if obj.verbose > 1 else logging.INFO)
    elif param.name == "quiet":
        obj.quiet = True
    elif param.name == "no_color":
        obj.color = False


def common_options(command: Any) -> Any:
    """Accept --config, -v, -q and --no-color after the command name as well."""
    for decorator in reversed(
        (
            click.option(
                "--config", type=click.Path(path_type=Path, dir_okay=False), default=None,
                expose_value=False, callback=_set_common, help="The settings file.",
            ),
            click.option(
                "-v", "--verbose", count=True, expose_value=False, callback=_set_common,
                help="More detail; tracebacks on errors.",
            ),
            click.option(
                "-q", "--quiet", is_flag=True, default=False, expose_value=False,
                callback=_set_common, help="Only errors and results.",
            ),
            click.option(
                "--no-color", is_flag=True, default=False, expose_value=False,
                callback=_set_common, help="No colours (NO_COLOR is honoured too).",
            ),
        )
    ):
        command = decorator(command)
    return command


# --- validate ---------------------------------------------------------------


@cli.command()
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
    from oauth2_sync.render import diagnostics as render
    from oauth2_sync.settings import load_settings

    try:
        settings = load_settings(ctx.config)
        result = validation.validate(settings, list(paths) or None)
        found, files, clients = result.diagnostics, len(result.files), len(result.clients)
    except InputError as exc:
        found, files, clients = exc.diagnostics, 1, 0
    if ctx.quiet:
        found = tuple(d for d in found if d.severity == "error")
    out = click.get_text_stream("stdout")
    if fmt == "json":
        render.render_json(found, files, clients, out)
    elif fmt == "github":
        render.render_github(found, files, clients, out)
    else:
        render.render_text(found, files, clients, out, color=ctx.use_color(out))
    if any(d.severity == "error" for d in found):
        raise click.exceptions.Exit(1)


# --- schema -----------------------------------------------------------------


@cli.command()
@click.argument("name", type=click.Choice(["clients", "settings"]), default="clients")
def schema(name: str) -> None:
    """Print the JSON Schema of client files or of the settings, for editors and tools."""
    from importlib import resources

    text = resources.files("oauth2_sync").joinpath(f"schemas/{name}.schema.json").read_text("utf-8")
    click.echo(text, nl=False)


def main() -> None:
    """Entry point of the console script."""
    cli(prog_name="oauth2-sync")
