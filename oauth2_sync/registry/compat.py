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
import re
import subprocess
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final

import requests

from oauth2_sync.errors import RegistryError
from oauth2_sync.secret import Secret

logger = logging.getLogger(__name__)

MINT_TIMEOUT = 60.0
"""Seconds the initial-access-token command may take (Canaille's: about 2 to 6 s)."""
MAX_TOKEN = 16 * 1024
"""Bytes of a minted token: more is no token (a JWT of Canaille's is under 1 KiB)."""
_TOKEN = re.compile(rb"[\x21-\x7e]+")
"""A token is visible ASCII: it goes into an HTTP header, where a control character would
make requests refuse it with an error that quotes the header (and so the token)."""


REFUSED_ERRORS: Final = frozenset({"access_denied", "invalid_token", "invalid_client"})
"""The OAuth ``error`` codes of a 400 that mean the token was refused (Canaille answers
400 ``access_denied`` for a missing, wrong or deleted client's token)."""


def refused_token(response: requests.Response) -> bool:
    """Whether the server refused the bearer token of a registration call: RFC 7592's
    401, a 403, or a 400 whose ``error`` is one of ``REFUSED_ERRORS`` (servers built on
    Authlib, such as Canaille, answer 400 ``access_denied``)."""
    if response.status_code in (401, 403):
        return True
    if response.status_code != 400:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("error") in REFUSED_ERRORS


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
    static: Secret | None, command: tuple[str, ...] | None, *, client_id: str,
    withheld: Collection[str] = (),
) -> Secret | None:
    """The initial access token for one create: a fresh one from ``command`` when the
    settings name one (``registry.auth.initial_access_token_command``), else ``static``.

    The command (its path resolved against the settings' folder) runs in the current
    folder and gets the client ID in ``OAUTH2_SYNC_CLIENT_ID``, and the environment
    without the ``withheld`` variables (the registry's credentials, as the secret sink
    command); its standard output, stripped, is the token: one word of visible ASCII, at
    most ``MAX_TOKEN`` bytes, in any encoding that is no token. Neither its output nor its
    error stream is ever shown: both may hold the token. A failure is a
    ``RegistryError`` naming the setting.
    """
    if command is None:
        return static
    what = f"creating client {client_id}: the initial access token command {command[0]}"
    env = {k: v for k, v in os.environ.items() if k not in withheld}
    env["OAUTH2_SYNC_CLIENT_ID"] = client_id
    try:
        # Bytes, not text: output that is not UTF-8 is no token, not a UnicodeDecodeError.
        done = subprocess.run(
            command, env=env, stdin=subprocess.DEVNULL, capture_output=True,
            timeout=MINT_TIMEOUT, check=False,
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
    if done.returncode != 0 or len(token) > MAX_TOKEN or not _TOKEN.fullmatch(token):
        problem = (f"exited with status {done.returncode}" if done.returncode != 0
                   else "printed no single token")
        raise RegistryError(
            f"{what} {problem}; run it by hand to see why, and check "
            "registry.auth.initial_access_token_command"
        )
    logger.debug("minted an initial access token for %s", client_id)
    return Secret(token.decode("ascii"))
