"""The group, the options every command shares, and the single error edge.

Every ``Oauth2SyncError`` is caught once, in ``Group.invoke``, and printed as one line
per finding; tracebacks only with ``--verbose``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, NoReturn, TypeVar

import click

from oauth2_sync import __version__
from oauth2_sync.errors import InputError, Oauth2SyncError

logger = logging.getLogger("oauth2_sync.cli")  # the name the logs have always carried

FORMATS = ("text", "json", "markdown")

F = TypeVar("F", bound=Callable[..., object])


class Context:
    """Options shared by every command."""

    def __init__(self, config: Path | None, verbose: int, quiet: bool, color: bool | None) -> None:
        self._config = config
        self.verbose = verbose
        self.quiet = quiet
        self.color = color

    @property
    def config(self) -> Path:
        """The settings file: ``--config`` as given, else found as git finds its config
        (this folder or the nearest above it); found when a command first needs it."""
        if self._config is None:
            from oauth2_sync.errors import UsageError
            from oauth2_sync.settings import find_settings

            try:
                here = Path.cwd()
            except OSError as exc:  # the working folder was deleted under us
                raise UsageError(
                    f"cannot read the current folder ({exc.strerror}); run oauth2-sync from "
                    "an existing folder or pass --config FILE"
                ) from exc
            self._config = find_settings(here)
        return self._config

    @config.setter
    def config(self, value: Path) -> None:
        self._config = value

    @property
    def config_given(self) -> bool:
        """Whether ``--config`` was given (before a command that reads no settings)."""
        return self._config is not None

    def use_color(self, stream: IO[str]) -> bool:
        """Colour only on a terminal, never with --no-color or NO_COLOR."""
        if self.color is False or os.environ.get("NO_COLOR"):
            return False
        return bool(getattr(stream, "isatty", lambda: False)())


pass_ctx = click.make_pass_decorator(Context)


def exit_with(code: int) -> None:
    """End the command with ``code`` unless it is 0 (click's way, so tests see it)."""
    if code:
        raise click.exceptions.Exit(code)


class Group(click.Group):
    """A group whose commands' ``Oauth2SyncError`` become one line and exit code 1.

    A usage error exits 1 too, not click's 2: here 2 means "there are changes" (plan)
    or "there is drift", and CI must not mistake a typo for either.
    """

    def main(  # type: ignore[override]  # one signature for click's two overloads
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: object,
    ) -> object:
        """Run the group; outside tests, exit with the command's code."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            exc.show()
            sys.exit(1)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> object:
        """Invoke the command; turn the library's errors into one line and exit 1."""
        try:
            return super().invoke(ctx)
        except InputError as exc:
            from oauth2_sync.render.common import line

            for diagnostic in exc.diagnostics:
                click.echo(line(diagnostic), err=True)
            ctx.exit(1)
        except Oauth2SyncError as exc:
            _fail(ctx, f"Error: {exc}")
        except OSError as exc:
            # The last resort: the places that touch files name them better, but no
            # failing disk, folder or device may ever end in a traceback.
            _fail(ctx, f"Error: {os_error_line(exc)}")


def _fail(ctx: click.Context, line: str) -> NoReturn:
    if ctx.obj is not None and ctx.obj.verbose:
        logger.exception("error")
    click.echo(line, err=True)
    ctx.exit(1)


def os_error_line(exc: OSError) -> str:
    """``PATH: cause; what to check`` for an ``OSError`` nothing else caught."""
    cause = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is None:
        # Most often the output itself: stdout on a full disk or a closed pipe.
        return f"{cause}; check where the output goes, free space, and the folders in use"
    where = _path_text(exc.filename)
    if exc.filename2 is not None:
        where += f" -> {_path_text(exc.filename2)}"
    return f"{where}: {cause}; check that the path exists, is of the right type and is writable"


def _path_text(name: object) -> str:
    # An OSError's filename is text, bytes, or (for some calls) a file descriptor.
    return os.fsdecode(name) if isinstance(name, (str, bytes)) else str(name)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oauth2-sync")
@click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path),  # a folder or FIFO is refused in one line, by the loader
    default=None,
    help="The settings file. Default: oauth2-sync.yaml in this folder or the nearest "
    "folder above it.",
)
@click.option("-v", "--verbose", count=True, help="More detail; tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and results.")
@click.option("--no-color", is_flag=True, help="No colours (NO_COLOR is honoured too).")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, verbose: int, quiet: bool, no_color: bool) -> None:
    """Manage the OAuth2 clients of a client registry as code."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogFormatter())
    logging.basicConfig(
        level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
        handlers=[handler],
    )
    ctx.obj = Context(config, verbose, quiet, False if no_color else None)


class LogFormatter(logging.Formatter):
    """``Warning: message`` for warnings, as every other warning the commands print;
    ``LEVEL logger: message`` for the rest (details shown with -v, and errors)."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """One record, in the style of its level."""
        if record.levelno == logging.WARNING and not record.exc_info:
            return f"Warning: {record.getMessage()}"
        return super().format(record)


def _set_common(ctx: click.Context, param: click.Parameter, value: Path | int | bool | None) -> None:
    # The common options work after the command name too (`oauth2-sync plan -q`).
    obj = ctx.find_object(Context)
    if obj is None or value is None or value is False or value == 0:
        return
    if param.name == "config" and isinstance(value, Path):
        obj.config = value
    elif param.name == "verbose" and isinstance(value, int):
        obj.verbose = max(obj.verbose, value)
        logging.getLogger().setLevel(logging.DEBUG if obj.verbose > 1 else logging.INFO)
    elif param.name == "quiet":
        obj.quiet = True
    elif param.name == "no_color":
        obj.color = False


_COMMON = (
    click.option(
        "--config", type=click.Path(path_type=Path), default=None,
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


def common_options(command: F) -> F:
    """Accept --config, -v, -q and --no-color after the command name as well."""
    for decorator in reversed(_COMMON):
        command = decorator(command)
    return command


def log_options(command: F) -> F:
    """Accept -v and -q after the command name: for a command that reads no settings and
    prints no colour (``registry serve``), which offers no option it would ignore."""
    for decorator in reversed(_COMMON[1:3]):
        command = decorator(command)
    return command
