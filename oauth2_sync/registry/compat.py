"""What real RFC 7591/7592 servers do that the RFCs do not lead one to expect, answered
in one place so that the rfc7592 adapter stays the standard's.

Each function names the server that made it necessary (docs/how-to/servers/):

- ``refused_token``: RFC 7592 §3 answers a bad registration access token with 401;
  Canaille (on Authlib) answers 400 ``access_denied``, for a wrong token, a missing one,
  and the token of a client deleted since.
- ``update_body``: RFC 7592 §2.2 makes an update a full replacement of what the server
  returned; Canaille returns ``null`` for fields it has no value for (``jwks``,
  ``logo_uri``...) and refuses its own answer sent back (``invalid_client_metadata``:
  ``Invalid claim: 'jwks'``). RFC 7592 treats an omitted field as null, so null fields
  are left out.
- ``initial_access_token``: RFC 7591 §3 lets an initial access token register any
  number of clients; Canaille's register exactly one (its ``sub`` becomes the
  client_id), so a command mints one per create.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any

import requests

from oauth2_sync.errors import RegistryError
from oauth2_sync.secret import Secret

logger = logging.getLogger(__name__)

MINT_TIMEOUT = 60.0
"""Seconds the initial-access-token command may take (Canaille's: about 2 to 6 s)."""


def refused_token(response: requests.Response) -> bool:
    """Whether the server refused the bearer token of a registration call: RFC 7592's
    401, or the 400 ``access_denied`` of servers built on Authlib (Canaille)."""
    if response.status_code == 401:
        return True
    if response.status_code != 400:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("error") == "access_denied"


def update_body(
    current: Mapping[str, Any], sent: Mapping[str, Any], *, server_client_id: str,
    managed: Iterable[str], server_owned: Iterable[str],
) -> dict[str, Any]:
    """The body of an RFC 7592 update: what the server holds, without what it owns
    (``server_owned``), our ``managed`` fields replaced by ``sent``, and no null field
    (RFC 7592 §2.2: an omitted field is null; Canaille refuses an explicit null ``jwks``).

    Every managed standard field is in ``sent`` (empty lists included), so a server that
    merges an update into the registration (Canaille) ends with the same client as one
    that replaces it.
    """
    dropped = {*managed, *server_owned}
    update = {k: v for k, v in current.items() if k not in dropped and v is not None}
    update.update(sent)
    update["client_id"] = server_client_id
    return update


def initial_access_token(
    static: Secret | None, command: tuple[str, ...] | None, *, client_id: str
) -> Secret | None:
    """The initial access token for one create: a fresh one from ``command`` when the
    settings name one (``registry.auth.initial_access_token_command``), else ``static``.

    The command (its path resolved against the settings' folder) runs in the current
    folder and gets the client ID in ``OAUTH2_SYNC_CLIENT_ID``; its standard output,
    stripped, is the token. Neither its output nor its error stream is ever shown: both
    may hold the token. A failure is a ``RegistryError`` naming the setting.
    """
    if command is None:
        return static
    what = f"creating client {client_id}: the initial access token command {command[0]}"
    try:
        done = subprocess.run(
            command, env={**os.environ, "OAUTH2_SYNC_CLIENT_ID": client_id},
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=MINT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RegistryError(
            f"{what} took more than {MINT_TIMEOUT:g} s; check "
            "registry.auth.initial_access_token_command"
        ) from None  # from None: the exception holds the command's output
    except OSError as exc:
        raise RegistryError(
            f"{what} could not run ({exc.strerror}); check "
            "registry.auth.initial_access_token_command"
        ) from None
    token = done.stdout.strip()
    if done.returncode != 0 or not token or len(token.split()) != 1:
        problem = (f"exited with status {done.returncode}" if done.returncode != 0
                   else "printed no single token")
        raise RegistryError(
            f"{what} {problem}; run it by hand to see why, and check "
            "registry.auth.initial_access_token_command"
        )
    logger.debug("minted an initial access token for %s", client_id)
    return Secret(token)
