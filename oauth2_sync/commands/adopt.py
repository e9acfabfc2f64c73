"""``adopt``: record an existing registration of an rfc7592+ registry."""

from __future__ import annotations

import os
from pathlib import Path

import click

from oauth2_sync.commands.base import Context, common_options, pass_ctx


@click.command("adopt", short_help="Record an existing rfc7592+ registration in the state file.")
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
    from oauth2_sync.registry.base import Secret
    from oauth2_sync.registry.rfc7592 import REGISTRATION_ACCESS_TOKEN_ENV
    from oauth2_sync.registry.rfc7592 import adopt as adopt_registration
    from oauth2_sync.settings import load_settings

    if registration_access_token_file is not None:
        token = _read_token(registration_access_token_file)
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


def _read_token(path: Path) -> str:
    from oauth2_sync.errors import UsageError
    from oauth2_sync.loader import open_regular

    try:
        with open_regular(path) as stream:  # a FIFO must not hang
            return stream.read().decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        # from None: a UnicodeDecodeError carries the bytes read, which are the token.
        raise UsageError(
            f"{path}: cannot read the registration access "
            f"token: {getattr(exc, 'strerror', None) or 'not UTF-8 text'}"
        ) from None
