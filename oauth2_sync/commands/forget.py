"""``forget``: remove a client from the state file of an rfc7592+ registry."""

from __future__ import annotations

import click

from oauth2_sync.commands.base import Context, common_options, pass_ctx


@click.command("forget", short_help="Remove a client from the state file of an rfc7592+ registry.")
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
