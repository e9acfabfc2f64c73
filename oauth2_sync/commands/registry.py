"""``registry serve``: the reference registry server."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from oauth2_sync.commands.base import Context, log_options, pass_ctx


@click.group("registry", short_help="Run the reference registry server.")
def registry() -> None:
    """The reference registry server: the registry API that the HTTP adapter speaks.

    For trying oauth2-sync out, tests and benchmarks; its store is one SQLite file.
    """


@registry.command(
    "serve", short_help="Serve the registry API over HTTP until SIGINT or SIGTERM.",
)
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
@log_options
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

    Prints `registry listening on URL` to stderr once it accepts requests, then one
    line per request (method, path, status, time; -q: none). It reads no settings file.
    """
    from oauth2_sync.errors import UsageError
    from oauth2_sync.refserver.server import ServerConfig, run

    if ctx.config_given:
        raise UsageError(
            "registry serve reads no settings file: leave out --config (its options are "
            "--db, --seed, --host, --port, ...)"
        )
    if not ctx.verbose:  # -v and -vv already log at INFO or DEBUG
        level = logging.WARNING if ctx.quiet else logging.INFO
        logging.getLogger("oauth2_sync.refserver").setLevel(level)

    config = ServerConfig(
        db=db, host=host, port=port, seed=seed, token_ttl=token_ttl, rate_limit=rate_limit,
        latency=latency_ms / 1000,
    )
    run(config, lambda url: click.echo(f"registry listening on {url}", err=True))
