"""Where new client secrets go (``secrets`` in the settings).

A secret is shown by the registry once, when a client is created or its secret
rotated. It goes to a sink and nowhere else: never to stdout, stderr, logs, plan
files or exception messages.

- ``DirectorySink``: one JSON file per client, ``{"client_id", "registry_client_id",
  "client_secret"}``, mode 0600, written atomically (temporary file + ``os.replace``)
  in a directory created with mode 0700.
- ``CommandSink``: runs an argument list (no shell) per secret; the same JSON arrives
  on stdin, the client ID also in ``OAUTH2_SYNC_CLIENT_ID`` and the registry's in
  ``OAUTH2_SYNC_REGISTRY_CLIENT_ID``. Its output is captured, never shown; a failure
  is reported with the exit status and the last line of its stderr, the secret masked.

``client_id`` is ours (the name in the files); ``registry_client_id`` is the one an
application authenticates with. They differ on a standard OAuth server, which picks
its own (README, "Standard OAuth servers"); the key is always there, so that an
application reads one key whatever the registry.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import subprocess
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from pathlib import Path

from oauth2_sync.errors import SecretSinkError
from oauth2_sync.registry.base import Secret
from oauth2_sync.settings import Settings

logger = logging.getLogger(__name__)

COMMAND_TIMEOUT = 60.0
"""Seconds a sink command may take for one secret."""
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class Sink(ABC):
    """A destination for new client secrets. ``deliver`` may be called from several threads."""

    @property
    @abstractmethod
    def description(self) -> str:
        """Where secrets go, for messages (never the secret)."""

    @abstractmethod
    def deliver(
        self, client_id: str, secret: Secret, registry_client_id: str | None = None
    ) -> None:
        """Hand over one client's secret; ``SecretSinkError`` when it could not be stored.

        ``registry_client_id`` is the client_id the registry issued, when it is not
        ``client_id`` (``RemoteClient.registry_client_id``).
        """


def payload(client_id: str, secret: Secret, registry_client_id: str | None = None) -> str:
    """The JSON both sinks hand over: ``{"client_id", "registry_client_id",
    "client_secret"}``, the registry's client_id being ours when it has none of its own."""
    return json.dumps({
        "client_id": client_id,
        "registry_client_id": registry_client_id or client_id,
        "client_secret": secret.reveal(),
    })


class DirectorySink(Sink):
    """One ``<client_id>.json`` file per client, mode 0600, in a directory of mode 0700."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def description(self) -> str:
        return f"directory {self.directory}"

    def file_for(self, client_id: str) -> Path:
        """The file that holds a client's secret."""
        return self.directory / f"{_checked_id(client_id)}.json"

    def deliver(
        self, client_id: str, secret: Secret, registry_client_id: str | None = None
    ) -> None:
        target = self.file_for(client_id)
        try:
            self._ensure_directory()
            # mkstemp creates the file 0600 before a byte of the secret is written.
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{client_id}.", suffix=".tmp")
        except OSError as exc:
            raise SecretSinkError(
                f"cannot write the secret of {client_id} to {self.directory}: {exc.strerror}"
            ) from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                stream.write(payload(client_id, secret, registry_client_id) + "\n")
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise SecretSinkError(
                f"cannot write the secret of {client_id} to {target}: {exc.strerror}"
            ) from None
        logger.debug("secret of %s written to %s", client_id, target)

    def _ensure_directory(self) -> None:
        if not self.directory.is_dir():
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            return
        mode = stat.S_IMODE(self.directory.stat().st_mode)
        if mode & 0o077:
            logger.warning(
                "secret directory %s is accessible to other users (mode %03o); "
                "0700 is recommended", self.directory, mode,
            )


class CommandSink(Sink):
    """Runs ``argv`` once per secret, the JSON payload on its stdin.

    ``withheld`` names environment variables the command must not inherit: the
    registry credentials of this run are no business of a secret store.
    """

    def __init__(self, argv: Sequence[str], withheld: Collection[str] = ()) -> None:
        if not argv:
            raise ValueError("a sink command needs at least the program")
        self.argv = tuple(argv)
        self.withheld = frozenset(withheld)

    @property
    def description(self) -> str:
        return f"command {self.argv[0]}"

    def deliver(
        self, client_id: str, secret: Secret, registry_client_id: str | None = None
    ) -> None:
        env = {k: v for k, v in os.environ.items() if k not in self.withheld}
        env["OAUTH2_SYNC_CLIENT_ID"] = client_id
        env["OAUTH2_SYNC_REGISTRY_CLIENT_ID"] = registry_client_id or client_id
        try:
            done = subprocess.run(
                self.argv, input=payload(client_id, secret, registry_client_id), env=env, capture_output=True,
                text=True, timeout=COMMAND_TIMEOUT, check=False,
            )
        except FileNotFoundError:
            raise SecretSinkError(
                f"secret command {self.argv[0]} not found (secret of {client_id})"
            ) from None
        except subprocess.TimeoutExpired:
            raise SecretSinkError(
                f"secret command {self.argv[0]} took longer than {COMMAND_TIMEOUT:g} s "
                f"(secret of {client_id})"
            ) from None
        except OSError as exc:
            raise SecretSinkError(
                f"cannot run secret command {self.argv[0]}: {exc.strerror} "
                f"(secret of {client_id})"
            ) from None
        if done.returncode != 0:
            detail = _last_line(done.stderr, secret)
            raise SecretSinkError(
                f"secret command {self.argv[0]} exited with status {done.returncode} "
                f"(secret of {client_id})" + (f": {detail}" if detail else "")
            ) from None
        logger.debug("secret of %s handed to %s", client_id, self.argv[0])


def open_sink(settings: Settings) -> Sink | None:
    """The sink the settings configure, or ``None`` when there is none."""
    if settings.secrets.directory is not None:
        return DirectorySink(settings.secrets.directory)
    if settings.secrets.command is not None:
        auth = settings.registry.auth
        withheld = {
            auth.client_id_env, auth.client_secret_env, auth.username_env, auth.password_env,
            auth.initial_access_token_env, "OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN",
        }
        return CommandSink(settings.secrets.command, withheld)
    return None


def _checked_id(client_id: str) -> str:
    # The name becomes a file name: no separators, no dot files, no traversal.
    if not _SAFE_ID.match(client_id):
        raise SecretSinkError(
            f"client ID {client_id!r} cannot name a secret file "
            "(letters, digits, '.', '_' and '-' only, not starting with '.')"
        ) from None
    return client_id


def _last_line(text: str, secret: Secret) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1].replace(secret.reveal(), "***") if secret.reveal() else lines[-1]
    last = "".join(c if c.isprintable() else "?" for c in last)
    return last[:200]
