"""Where new client secrets go (``secrets`` in the settings).

A secret is shown by the registry once, when a client is created or its secret
rotated. It goes to a sink and nowhere else: never to stdout, stderr, logs, plan
files or exception messages.

- ``DirectorySink``: one JSON file per client, ``{"client_id", "registry_client_id",
  "client_secret"}``, mode 0600, written atomically (temporary file + ``os.replace``)
  in a directory created with mode 0700.
- ``CommandSink``: runs an argument list (no shell) per secret; the same JSON arrives
  on stdin, the client ID also in ``OAUTH2_SYNC_CLIENT_ID`` and the registry's in
  ``OAUTH2_SYNC_REGISTRY_CLIENT_ID``, and the registry's creation time of the client,
  when it has one, as ``"created_at"`` and in ``OAUTH2_SYNC_CLIENT_CREATED_AT``. Its output is captured, never shown; a failure
  is reported with the exit status and a bounded excerpt of its stderr (the last line,
  at most 200 characters) in which the secret in any usual encoding and every long
  high-entropy token are masked (``redact``); an excerpt that still holds a piece of the
  secret (6 characters or more, ``leaks``) is withheld altogether.

Both are checked before the first write (``preflight``): a secret folder that is a
symbolic link, lies outside the settings' folder, or is group- or world-writable is
refused (as ssh refuses a loose key file), as is a command that does not exist or is
not executable. ``check_id`` says, before a secret is issued, whether the sink can
store a client's secret at all.

``client_id`` is ours (the name in the files); ``registry_client_id`` is the one an
application authenticates with. They differ on a standard OAuth server, which picks
its own (docs/how-to/standard-servers.md); the key is always there, so that an
application reads one key whatever the registry.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import re
import shutil
import stat
import subprocess
import tempfile
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from pathlib import Path

from oauth2_sync.errors import SecretSinkError
from oauth2_sync.paths import escaping
from oauth2_sync.secret import Secret
from oauth2_sync.settings import Settings

logger = logging.getLogger(__name__)

COMMAND_TIMEOUT = 60.0
"""Seconds a sink command may take for one secret."""
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_TOKEN = re.compile(r"[A-Za-z0-9+/=_.~%:-]{16,}")
"""A run of characters a secret or an encoding of one (base64, base64url, hex, URL
encoding) is made of, long enough to be one."""
EXCERPT = 200
_WORD = r"(?:[A-Z]?[a-z]+|[A-Z]+[0-9]?)"
_WORDS = re.compile(rf"{_WORD}(?:[-_.:/]{_WORD})*")
"""Upper-case words joined by underscores, or plain words: never a token."""
FRAGMENT = 6
"""The shortest piece of a secret (or of an encoding of it) that withholds an excerpt."""
WITHHELD = "(output withheld: it may contain the secret)"
_SEPARATORS = re.compile(r"[\s'\"`,;:\[\](){}|<>.-]+")
"""The most characters of a failing command's output a message shows."""


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

    def deliver_created(
        self, client_id: str, secret: Secret, registry_client_id: str | None,
        created_at: str | None,
    ) -> None:
        """``deliver``, with the registry's creation time of the client (``created_at``,
        when it has one): what tells this registration from an earlier one of the same
        name. Sinks that have no use for it deliver as usual."""
        self.deliver(client_id, secret, registry_client_id)

    def check_id(self, client_id: str) -> None:
        """``SecretSinkError`` when the sink could never store this client's secret;
        asked before a secret is issued, so that none is issued in vain."""
        # Every sink hands the ID on in text (a file name, JSON, an environment variable).
        if not client_id or "\x00" in client_id:
            raise SecretSinkError(f"client ID {client_id!r} cannot be handed to a sink")

    def preflight(self) -> None:  # noqa: B027 -- a sink with nothing to check
        """``SecretSinkError`` when the sink cannot work at all; checked before the
        first write of a run."""


def payload(
    client_id: str, secret: Secret, registry_client_id: str | None = None,
    created_at: str | None = None,
) -> str:
    """The JSON both sinks hand over: ``{"client_id", "registry_client_id",
    "client_secret"}``, the registry's client_id being ours when it has none of its own;
    with ``"created_at"`` too when the command sink knows it."""
    data = {
        "client_id": client_id,
        "registry_client_id": registry_client_id or client_id,
        "client_secret": secret.reveal(),
    }
    if created_at:
        data["created_at"] = created_at
    return json.dumps(data)


class DirectorySink(Sink):
    """One ``<client_id>.json`` file per client, mode 0600, in a directory of mode 0700.

    ``root`` is the settings' folder: the directory must stay inside it.
    """

    def __init__(self, directory: Path, root: Path | None = None) -> None:
        self.directory = directory
        self.root = root

    @property
    def description(self) -> str:
        return f"directory {self.directory}"

    def file_for(self, client_id: str) -> Path:
        """The file that holds a client's secret."""
        return self.directory / f"{_checked_id(client_id)}.json"

    def check_id(self, client_id: str) -> None:
        _checked_id(client_id)

    def preflight(self) -> None:
        self._ensure_directory(None)
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise SecretSinkError(
                f"secret folder {self.directory} is not writable by this user; "
                "check its owner and mode"
            )

    def deliver(
        self, client_id: str, secret: Secret, registry_client_id: str | None = None
    ) -> None:
        target = self.file_for(client_id)
        self._ensure_directory(client_id)
        try:
            # mkstemp creates the file 0600 (O_EXCL: never through a link) before a
            # byte of the secret is written.
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{client_id}.", suffix=".tmp")
        except OSError as exc:
            raise SecretSinkError(
                f"cannot write the secret of {client_id} to {self.directory}: {exc.strerror}"
            ) from exc
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                stream.write(payload(client_id, secret, registry_client_id) + "\n")
                stream.flush()
                os.fsync(stream.fileno())
            # A link planted at the target is replaced, not followed.
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise SecretSinkError(
                f"cannot write the secret of {client_id} to {target}: {exc.strerror}"
            ) from exc
        logger.debug("secret of %s written to %s", client_id, target)

    def _ensure_directory(self, client_id: str | None) -> None:
        """Create the folder (0700), or refuse one that others could reach secrets in."""
        folder = self.directory
        # Before mkdir creates anything through a linked parent; an existing folder (or
        # a link in its place) gets the checks below.
        if self.root is not None and not os.path.lexists(folder) and escaping(folder, self.root):
            raise SecretSinkError(
                f"secret folder {folder} resolves to {folder.resolve()}, outside the "
                f"settings' folder {self.root.resolve()}; a linked parent folder?"
            ) from None
        try:
            if not folder.is_symlink() and not folder.exists():
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = folder.lstat()
        except OSError as exc:
            if client_id is not None:
                raise SecretSinkError(
                    f"cannot write the secret of {client_id} to {folder}: {exc.strerror}"
                ) from exc
            raise SecretSinkError(
                f"cannot create the secret folder {folder}: {exc.strerror}; check that "
                "its parent is a writable folder"
            ) from exc
        if stat.S_ISLNK(info.st_mode):
            raise SecretSinkError(
                f"secret folder {folder} is a symbolic link; refusing to write secrets "
                "where it points: make it a real folder (mkdir -m 700)"
            )
        if not stat.S_ISDIR(info.st_mode):
            raise SecretSinkError(f"secret folder {folder} is not a folder")
        if self.root is not None and not _inside(folder, self.root):
            raise SecretSinkError(
                f"secret folder {folder} resolves to {folder.resolve()}, outside the "
                f"settings' folder {self.root.resolve()}; a linked parent folder?"
            )
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o022:
            raise SecretSinkError(
                f"secret folder {folder} is writable by other users (mode {mode:04o}); "
                f"run `chmod 700 {folder}`"
            )
        if mode & 0o077:
            logger.warning(
                "secret directory %s is accessible to other users (mode %03o); "
                "0700 is recommended", folder, mode,
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

    def deliver_created(
        self, client_id: str, secret: Secret, registry_client_id: str | None,
        created_at: str | None,
    ) -> None:
        self.deliver(client_id, secret, registry_client_id, created_at)

    def deliver(
        self, client_id: str, secret: Secret, registry_client_id: str | None = None,
        created_at: str | None = None,
    ) -> None:
        env = {k: v for k, v in os.environ.items() if k not in self.withheld}
        env["OAUTH2_SYNC_CLIENT_ID"] = client_id
        env["OAUTH2_SYNC_REGISTRY_CLIENT_ID"] = registry_client_id or client_id
        env.pop("OAUTH2_SYNC_CLIENT_CREATED_AT", None)
        if created_at:
            env["OAUTH2_SYNC_CLIENT_CREATED_AT"] = created_at
        data = payload(client_id, secret, registry_client_id, created_at)
        try:
            done = subprocess.run(
                self.argv, input=data, env=env, capture_output=True,
                text=True, timeout=COMMAND_TIMEOUT, check=False,
            )
        except FileNotFoundError as exc:
            raise SecretSinkError(
                f"secret command {self.argv[0]} not found (secret of {client_id})"
            ) from exc
        except subprocess.TimeoutExpired:
            # from None: the timeout carries the command's output, which may echo the secret.
            raise SecretSinkError(
                f"secret command {self.argv[0]} took longer than {COMMAND_TIMEOUT:g} s "
                f"(secret of {client_id})"
            ) from None
        except OSError as exc:
            raise SecretSinkError(
                f"cannot run secret command {self.argv[0]}: {exc.strerror} "
                f"(secret of {client_id})"
            ) from exc
        if done.returncode != 0:
            detail = excerpt(done.stderr, secret)
            raise SecretSinkError(
                f"secret command {self.argv[0]} exited with status {done.returncode} "
                f"(secret of {client_id})" + (f": {detail}" if detail else "")
            )
        logger.debug("secret of %s handed to %s", client_id, self.argv[0])

    def preflight(self) -> None:
        program = self.argv[0]
        if "/" not in program:
            if shutil.which(program) is None:
                raise SecretSinkError(
                    f"secret command {program} not found on PATH; check secrets.command "
                    "in the settings"
                )
            return
        path = Path(program)
        if not path.is_file():
            raise SecretSinkError(
                f"secret command {program} not found; check secrets.command in the settings"
            )
        if not os.access(path, os.X_OK):
            raise SecretSinkError(
                f"secret command {program} is not executable; run `chmod +x {program}`"
            )


def open_sink(settings: Settings) -> Sink | None:
    """The sink the settings configure, or ``None`` when there is none."""
    if settings.secrets.directory is not None:
        return DirectorySink(settings.secrets.directory, settings.root)
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
        )
    return client_id


def _inside(folder: Path, root: Path) -> bool:
    try:
        folder.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def encodings(value: str) -> set[str]:
    """The spellings of ``value`` a program is likely to print: as is, reversed, JSON-
    escaped, URL-encoded, base64 and base64url (with and without padding), hex."""
    raw = value.encode("utf-8")
    b64 = base64.b64encode(raw).decode("ascii")
    url64 = base64.urlsafe_b64encode(raw).decode("ascii")
    found = {
        value, value[::-1], json.dumps(value)[1:-1], urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value), b64, b64.rstrip("="), url64, url64.rstrip("="),
        raw.hex(), raw.hex().upper(),
    }
    return {f for f in found if f}


def _high_entropy(token: str) -> bool:
    # Letters and digits mixed, or many distinct symbols: what secrets, keys and their
    # encodings look like, and words seldom do. An upper-case identifier
    # (OAUTH2_SYNC_SECRET_STORE) or plain words are not tokens.
    if _WORDS.fullmatch(token.strip(":.-")):
        return False
    if re.search(r"[0-9]", token) and re.search(r"[A-Za-z]", token):
        return True
    counts = {c: token.count(c) for c in set(token)}
    entropy = -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())
    return entropy >= 4.0


def redact(text: str, secret: Secret) -> str:
    """``text`` with ``secret`` masked in every spelling ``encodings`` knows, and every
    long high-entropy token masked, whatever it encodes."""
    value = secret.reveal()
    if value:
        for spelling in sorted(encodings(value), key=len, reverse=True):
            text = text.replace(spelling, "***")
    return _TOKEN.sub(lambda m: "***" if _high_entropy(m.group()) else m.group(), text)


def _pieces(value: str) -> set[str]:
    """Every ``FRAGMENT``-character piece of ``value`` and of its encodings (also
    the hex of byte-swapped pairs, as ``od -x`` prints), separators removed."""
    raw = value.encode("utf-8")
    swapped = b"".join(raw[i:i + 2][::-1] for i in range(0, len(raw), 2))
    spellings = encodings(value) | {swapped.hex(), swapped.hex().upper()}
    found: set[str] = set()
    for spelling in spellings:
        flat = _SEPARATORS.sub("", spelling)
        found.update(flat[i:i + FRAGMENT] for i in range(len(flat) - FRAGMENT + 1))
    return found


def leaks(text: str, secret: Secret) -> bool:
    """Whether ``text`` holds a piece of ``secret`` (``FRAGMENT`` characters or more of
    it or of an encoding of it), separators, whitespace, quotes and commas ignored."""
    value = secret.reveal()
    if len(value) < FRAGMENT:
        return bool(value) and value in text
    flat = _SEPARATORS.sub("", text)
    pieces = _pieces(value)
    return any(flat[i:i + FRAGMENT] in pieces for i in range(len(flat) - FRAGMENT + 1))


def excerpt(text: str, secret: Secret) -> str:
    """The last non-blank line of a command's output, redacted, printable, at most
    ``EXCERPT`` characters; empty when there is none, ``WITHHELD`` when it still holds
    a piece of the secret once redacted (``leaks``)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    # Redacted before it is cut, so that no cut leaves a tail of a secret unmasked.
    last = redact(lines[-1], secret)
    if leaks(last, secret):
        return WITHHELD
    last = "".join(c if c.isprintable() else "?" for c in last)
    return last[:EXCERPT]
