"""The command line: parse, call the library, render. Nothing else lives here.

Every ``Oauth2SyncError`` is caught once, in ``main``, and printed as one line per
finding; tracebacks only with ``--verbose``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from oauth2_sync import __version__
from oauth2_sync.errors import InputError, Oauth2SyncError

if TYPE_CHECKING:  # the commands import the library lazily, for start-up time
    from oauth2_sync.apply import Report, Result, Stop, StopReason

    Writes = Callable[
        [Callable[[Result], None], Stop, Callable[[StopReason, int], None]], Report
    ]

logger = logging.getLogger(__name__)

FORMATS = ("text", "json", "markdown")


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

    def use_color(self, stream: Any) -> bool:
        """Colour only on a terminal, never with --no-color or NO_COLOR."""
        if self.color is False or os.environ.get("NO_COLOR"):
            return False
        return bool(getattr(stream, "isatty", lambda: False)())


pass_ctx = click.make_pass_decorator(Context)


class _Group(click.Group):
    """A group whose commands' ``Oauth2SyncError`` become one line and exit code 1.

    A usage error exits 1 too, not click's 2: here 2 means "there are changes" (plan)
    or "there is drift", and CI must not mistake a typo for either.
    """

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
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
        except OSError as exc:
            # The last resort: the places that touch files name them better, but no
            # failing disk, folder or device may ever end in a traceback.
            if ctx.obj is not None and ctx.obj.verbose:
                logger.exception("error")
            click.echo(f"Error: {os_error_line(exc)}", err=True)
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


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
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


# --- plan, apply, rotate-secret ------------------------------------------------


@cli.command()
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
    from oauth2_sync.registry import open_registry
    from oauth2_sync.settings import load_settings

    settings = load_settings(ctx.config)
    if out_file is not None:
        planning.check_out_path(out_file)  # before the registry is read: fail fast
    with open_registry(settings) as registry:
        made = planning.make_plan(settings, registry, targets=targets, prune=prune)
    _warn_pending_secrets(settings, made)
    _warn_no_sink(settings, made)
    if out_file is not None:
        planning.save(made, out_file)
    out = sys.stdout
    _show_plan(ctx, made, fmt, out)
    if out_file is not None and not ctx.quiet:
        click.echo(
            f"\nSaved the plan to: {out_file}\n"
            f"To perform exactly these actions, run: oauth2-sync apply {out_file}",
            err=fmt != "text",
        )
    if made.errors:
        raise click.exceptions.Exit(1)
    raise click.exceptions.Exit(2 if made.has_changes else 0)


@cli.command()
@click.argument(
    "planfile", required=False, type=click.Path(path_type=Path)  # checked when read
)
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option(
    "--parallelism", type=click.IntRange(1, 64), default=4, show_default=True,
    help="Writes in flight at once.",
)
@click.option(
    "--allow-unsafe", is_flag=True, help="Apply even over the safety limits (this run only).",
)
@click.option(
    "--prune", is_flag=True, default=False,
    help="Also delete managed clients no file declares (when not applying a plan file).",
)
@click.option(
    "--target", "targets", multiple=True, metavar="CLIENT_ID",
    help="Apply only this client (repeatable; when not applying a plan file).",
)
@common_options
@pass_ctx
def apply(
    ctx: Context,
    *,
    planfile: Path | None,
    auto_approve: bool,
    parallelism: int,
    allow_unsafe: bool,
    prune: bool,
    targets: tuple[str, ...],
) -> None:
    """Make the registry match the files.

    With PLANFILE (from `plan --out`), apply exactly that plan: a client changed since
    is refused and left untouched. Without it, plan, show the plan and ask for
    confirmation (on a terminal; elsewhere pass --auto-approve). Exit 0 when every
    client succeeded, 1 otherwise (clients the registry cannot hold are left out and
    count as failures; the others are applied).
    """
    from oauth2_sync import apply as applying
    from oauth2_sync import plan as planning
    from oauth2_sync.errors import UsageError
    from oauth2_sync.planfile import load_checked as load_checked_plan
    from oauth2_sync.registry import open_registry
    from oauth2_sync.settings import load_settings
    from oauth2_sync.sink import open_sink

    stdin = sys.stdin
    out = sys.stdout
    if planfile is not None and (prune or targets):
        option = "--prune" if prune else "--target"
        raise UsageError(
            f"{option} is decided when planning: make the plan with "
            f"`oauth2-sync plan {option} ... --out FILE`, then apply FILE"
        )
    settings = load_settings(ctx.config)
    sink = open_sink(settings)
    with open_registry(settings) as registry:
        if planfile is not None:
            made = load_checked_plan(planfile, settings, registry)  # re-checked: planfile.py
            _echo_errors(made)
        else:
            made = planning.make_plan(
                settings, registry, targets=targets, prune=True if prune else None
            )
            if made.has_changes or not ctx.quiet:
                # Approved for this run: "apply will refuse this plan" would be untrue.
                shown = dataclasses.replace(made, exceeded=()) if allow_unsafe else made
                _show_plan(ctx, shown, "text", out)
            else:
                _echo_errors(made)
        journal = _warn_pending_secrets(settings, made)
        if not made.has_changes:
            if planfile is not None and not ctx.quiet:
                click.echo("No changes.")
            if made.errors:
                raise click.exceptions.Exit(1)
            return
        applying.check_preconditions(made, registry, sink)
        applying.check_safety(made, settings.safety, allow_unsafe=allow_unsafe)
        if planfile is None and not auto_approve:
            # Asked only now: with nothing to change there is nothing to approve.
            if not stdin.isatty():
                raise UsageError(
                    "apply asks for confirmation on a terminal, and there is none: pass "
                    "--auto-approve, or apply a saved plan (`plan --out FILE`, then "
                    "`apply FILE`)"
                )
            answer = click.prompt(
                "\nDo you want to perform these actions?\n"
                "  Only 'yes' will be accepted to approve.\n\n  Enter a value",
                default="", show_default=False,
            )
            if answer.strip() != "yes":
                click.echo("\nApply cancelled.", err=True)
                raise click.exceptions.Exit(1)
        report = _run_with_progress(
            ctx, len(made.changes), "Applying",
            lambda step, stop, on_stop: applying.apply_plan(
                made, registry, sink, parallelism=parallelism, on_result=step,
                journal=journal, stop=stop, on_stop=on_stop,
            ),
        )
        journal.compact()
    _show_report(ctx, report, report.summary(), left_out=made)


@cli.command("rotate-secret")
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
    from oauth2_sync import apply as applying
    from oauth2_sync.errors import UsageError
    from oauth2_sync.journal import Journal
    from oauth2_sync.registry import open_registry
    from oauth2_sync.settings import load_settings
    from oauth2_sync.sink import open_sink

    settings = load_settings(ctx.config)
    sink = open_sink(settings)
    journal = Journal.beside(settings.root)
    if sink is None:
        raise UsageError(
            "no secret sink is configured (settings: secrets.directory or secrets.command); "
            "refusing to rotate secrets that would be lost"
        )
    applying.check_sink(sink, ())
    with open_registry(settings) as registry:
        report = _run_with_progress(
            ctx, len(set(client_ids)), "Rotating",
            lambda step, stop, on_stop: applying.rotate_secrets(
                registry, sink, client_ids, settings.managed_partners,
                parallelism=parallelism, on_result=step, journal=journal, stop=stop,
                on_stop=on_stop,
            ),
        )
    journal.compact()
    _show_report(ctx, report, report.rotation_summary())


def _warn_pending_secrets(settings: Any, made: Any) -> Any:
    """Warn about clients an earlier apply created without delivering their secrets
    (``journal.py``); returns the configuration's journal."""
    from oauth2_sync.journal import Journal

    journal = Journal.beside(settings.root)
    for pending in journal.reconcile({client_id for client_id, _ in made.versions}):
        click.echo(f"Warning: {pending.warning()}", err=True)
    return journal


def _warn_no_sink(settings: Any, made: Any) -> None:
    """Say at plan time what apply would refuse: creates with no secret sink."""
    creates = made.summary.create
    if creates and not settings.secrets.configured:
        click.echo(
            f"Warning: the plan creates {creates} client{'' if creates == 1 else 's'} but "
            "no secret sink is configured (settings: secrets.directory or "
            "secrets.command); apply will refuse to create them",
            err=True,
        )


def _show_plan(ctx: Context, made: Any, fmt: str, out: Any) -> None:
    from oauth2_sync.render import json as render_json
    from oauth2_sync.render import markdown as render_markdown
    from oauth2_sync.render import text as render_text

    if fmt == "json":
        render_json.render(made, out)
    elif fmt == "markdown":
        render_markdown.render(made, out)
    elif ctx.quiet:
        line = render_text.plan_line(made) if made.has_changes else "No changes."
        click.echo(line)
    else:
        render_text.render(made, out, color=ctx.use_color(out))
        return
    # The text plan lists them; otherwise the output may go to a file or a comment,
    # and the job's log must still say why it failed (or why apply will refuse it).
    _echo_errors(made)
    if made.exceeded:
        click.echo(f"Warning: {render_text.safety_line(made)}", err=True)


def _echo_errors(made: Any) -> None:
    """A plan's errors on stderr, one diagnostic a line."""
    from oauth2_sync.render import escape

    for diagnostic in made.errors:
        click.echo(escape(str(diagnostic)), err=True)


def _run_with_progress(ctx: Context, total: int, label: str, run: Writes) -> Report:
    """Run the writes, streaming each client's result line to stdout as it finishes
    (with a bar on stderr on a terminal), stopping on SIGINT or SIGTERM (see
    ``_stopping_on_signals``)."""
    from oauth2_sync.apply import Stop

    err = sys.stderr
    color = ctx.use_color(sys.stdout)
    stop = Stop()
    bar: Any = None

    def clear_bar() -> None:
        # The bar owns the terminal's last line: clear it before a line of our own.
        if bar is not None:
            err.write("\r\033[K")
            err.flush()

    def step(result: Result) -> None:
        if not (ctx.quiet and result.ok):
            clear_bar()
            line = result.line()
            click.echo(click.style(line, fg="red") if color and not result.ok else line)
        if bar is not None:
            bar.update(1)

    def on_stop(reason: StopReason, in_flight: int) -> None:
        clear_bar()
        why = "Registry unavailable" if reason == "registry-unavailable" else "Interrupt received"
        click.echo(f"{why}, stopping: no new writes; waiting for {in_flight} in flight", err=True)

    with _stopping_on_signals(stop):
        if not err.isatty() or total < 2:
            return run(step, stop, on_stop)
        with click.progressbar(length=total, label=label, file=err) as bar:
            return run(step, stop, on_stop)


@contextlib.contextmanager
def _stopping_on_signals(stop: Stop) -> Iterator[None]:
    """SIGINT and SIGTERM ask ``stop`` for no new writes, as Terraform does on Ctrl-C
    (CI runners send these on cancel and timeout); a second one exits at once."""
    received: list[int] = []

    def handle(signum: int, _frame: Any) -> None:
        if received:
            stop.abandon()
            # os.write, not click.echo: the interrupted code may be inside a write to
            # the same stream, and exiting now must not wait for anything.
            os.write(2, (
                f"Interrupt received again: exiting now, without waiting for the "
                f"{stop.in_flight} in flight; run plan to see what they did\n"
            ).encode())
            os._exit(128 + signum)
        received.append(signum)
        stop.request("SIGTERM" if signum == signal.SIGTERM else "SIGINT")

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (a test runner's worker, say)
        return
    previous = {number: signal.signal(number, handle) for number in _STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_EXIT_CODES = {"SIGINT": 128 + signal.SIGINT, "SIGTERM": 128 + signal.SIGTERM}
NOT_ATTEMPTED_SHOWN = 50
"""At most this many not-attempted clients are named on their line."""


def _show_report(ctx: Context, report: Any, summary: str, *, left_out: Any = None) -> None:
    """After the streamed result lines: the clients not attempted, the summary, and
    the exit code (130/143 after SIGINT/SIGTERM, 1 on any problem)."""
    from oauth2_sync.render.text import errors_line

    out = sys.stdout
    color = ctx.use_color(out)
    skipped = report.not_attempted
    if skipped:
        names = ", ".join(skipped[:NOT_ATTEMPTED_SHOWN])
        more = len(skipped) - NOT_ATTEMPTED_SHOWN
        names += f", and {more} more (run plan to see them)" if more > 0 else ""
        line = f"{len(skipped)} not attempted: {names}"
        click.echo(click.style(line, fg="red") if color else line)
    click.echo(click.style(summary, bold=True) if color else summary)
    plan_failed = left_out is not None and bool(left_out.errors)
    if plan_failed:
        line = f"Error: {errors_line(left_out)}"
        click.echo(click.style(line, fg="red") if color else line)
    if report.stopped == "registry-unavailable":
        command = "apply" if left_out is not None else "rotate-secret"
        click.echo(
            f"Error: the registry became unavailable, so {command} started no more writes; "
            "run it again once the registry answers (plan shows what is left)",
            err=True,
        )
    if report.stopped in _EXIT_CODES:
        raise click.exceptions.Exit(_EXIT_CODES[report.stopped])
    if not report.ok or plan_failed:
        raise click.exceptions.Exit(1)


# --- registry ---------------------------------------------------------------


@cli.group()
def registry() -> None:
    """The reference registry server (SPEC section 3)."""


@registry.command()
@click.option(
    "--db", type=click.Path(path_type=Path, dir_okay=False), required=True,
    help="The SQLite store (created when missing).",
)
@click.option(
    "--seed", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
    help="A seed file: partners, users, API credentials (applied on every start).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--token-ttl", type=click.IntRange(1), default=3600, show_default=True,
    help="Lifetime of issued access tokens, in seconds.",
)
@click.option(
    "--rate-limit", type=click.FloatRange(min=0, min_open=True), default=None,
    help="Requests per second per API credential before 429 (default: no limit).",
)
@click.option(
    "--latency-ms", type=click.IntRange(0, 60_000), default=0, show_default=True,
    help="Milliseconds added before every answer, as across a network (for benchmarks).",
)
@common_options
@pass_ctx
def serve(
    ctx: Context,
    *,
    db: Path,
    seed: Path | None,
    host: str,
    port: int,
    token_ttl: int,
    rate_limit: float | None,
    latency_ms: int,
) -> None:
    """Serve the registry API over HTTP until SIGINT or SIGTERM.

    Prints `registry listening on URL` to stderr once it accepts requests.
    """
    from oauth2_sync.refserver.server import ServerConfig, run

    config = ServerConfig(
        db=db, host=host, port=port, seed=seed, token_ttl=token_ttl, rate_limit=rate_limit,
        latency=latency_ms / 1000,
    )
    run(config, lambda url: click.echo(f"registry listening on {url}", err=True))


# --- adopt, forget (rfc7592 registries) ---------------------------------------


@cli.command()
@click.argument("client_id")
@click.option(
    "--registration-client-uri", required=True, metavar="URI",
    help="The client's registration client URI (RFC 7592).",
)
@click.option(
    "--registration-access-token-file", type=click.Path(path_type=Path, dir_okay=False),
    default=None, metavar="FILE",
    help="Read the registration access token from FILE instead of "
    "OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN.",
)
@common_options
@pass_ctx
def adopt(
    ctx: Context, client_id: str, registration_client_uri: str,
    registration_access_token_file: Path | None,
) -> None:
    """Record an existing registration of an rfc7592+ registry in the state file.

    For a lost state file, or a registration access token rotated elsewhere. The token
    comes from OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN (or --registration-access-token-file),
    never from the command line; it is checked by reading the client before it is
    recorded.
    """
    from oauth2_sync.errors import UsageError
    from oauth2_sync.loader import open_regular
    from oauth2_sync.registry.base import Secret
    from oauth2_sync.registry.rfc7592 import REGISTRATION_ACCESS_TOKEN_ENV
    from oauth2_sync.registry.rfc7592 import adopt as adopt_registration
    from oauth2_sync.settings import load_settings

    if registration_access_token_file is not None:
        try:
            with open_regular(registration_access_token_file) as stream:  # a FIFO must not hang
                token = stream.read().decode("utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(
                f"{registration_access_token_file}: cannot read the registration access "
                f"token: {getattr(exc, 'strerror', None) or 'not UTF-8 text'}"
            ) from None
    else:
        token = os.environ.get(REGISTRATION_ACCESS_TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(
            f"adopt needs the client's registration access token in "
            f"{REGISTRATION_ACCESS_TOKEN_ENV} (or --registration-access-token-file)"
        )
    settings = load_settings(ctx.config)
    remote = adopt_registration(settings, client_id, registration_client_uri, Secret(token))
    if not ctx.quiet:
        click.echo(f"Adopted {client_id} (partner {remote.client.partner}).")


@cli.command()
@click.argument("client_id")
@common_options
@pass_ctx
def forget(ctx: Context, client_id: str) -> None:
    """Remove a client from the state file of an rfc7592+ registry, not from the server.

    For a client deleted on the server or lost in a server restart: the next apply
    creates it again. Exit 1 when the state does not know it.
    """
    from oauth2_sync.errors import UsageError
    from oauth2_sync.registry.rfc7592 import forget as forget_registration
    from oauth2_sync.settings import load_settings

    settings = load_settings(ctx.config)
    if not forget_registration(settings, client_id):
        raise UsageError(f"the state file does not know {client_id}")
    if not ctx.quiet:
        click.echo(f"Forgot {client_id}; the next apply creates it again.")


# --- fmt, drift, export -------------------------------------------------------


@cli.command("fmt")
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
    if report.diagnostics or (check and report.changed):
        raise click.exceptions.Exit(1)


@cli.command()
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
    raise click.exceptions.Exit(2 if report.has_drift else 0)


@cli.command()
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
    from oauth2_sync.render import escape
    from oauth2_sync.settings import load_settings

    settings = load_settings(ctx.config)
    with open_registry(settings) as registry:
        report = exporting.export(
            settings, registry, partners=partners, client_ids=client_ids, out=out_dir,
            force=force, include_declared=include_declared,
        )
    counts = dict.fromkeys(("written", "overwritten", "declared", "exists", "refused"), 0)
    for item in report.items:
        counts[item.status] += 1
        shown = escape(item.client_id)
        if item.status in ("written", "overwritten") and not ctx.quiet:
            verb = "Wrote" if item.status == "written" else "Overwrote"
            click.echo(f"{verb} {item.path} ({shown})")
        elif item.status == "declared" and ctx.verbose:
            click.echo(f"Skipped {shown}: {escape(item.reason)}")
        elif item.failed:
            where = f" ({item.path})" if item.path else ""
            click.echo(f"Error: {shown}{where}: {item.reason}", err=True)
    if not ctx.quiet:
        click.echo(
            f"Exported {counts['written'] + counts['overwritten']} of {len(report.items)} "
            f"clients to {report.out}: {counts['written']} new, {counts['overwritten']} "
            f"overwritten, {counts['declared']} already declared (skipped), "
            f"{counts['exists'] + counts['refused']} failed."
        )
    if report.failed:
        raise click.exceptions.Exit(1)


def main() -> None:
    """Entry point of the console script."""
    cli(prog_name="oauth2-sync")
