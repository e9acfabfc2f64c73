"""``registry serve``: the reference registry server."""

from __future__ import annotations

from pathlib import Path

import click

from oauth2_sync.commands.base import Context, common_options, pass_ctx


@click.group("registry")
def registry() -> None:
    """The reference registry server (SPEC section 3)."""


@registry.command("serve")
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
