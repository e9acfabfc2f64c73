"""The state file of ``rfc7592+`` registries: which registration is which client.

RFC 7591/7592 registries have no list endpoint and choose the client_id themselves, so
oauth2-sync has to remember, for each client it manages, the server's client_id, the
registration client URI and the registration access token. This module keeps that map
in one JSON file:

- written atomically (a temporary file in the same folder, fsync, rename), so a crash
  leaves either the old or the new content, never half a file;
- mode 0600 (its tokens are credentials) in a folder created 0700;
- locked against a second concurrent run with ``fcntl.flock`` on a sibling ``.lock``
  file (the state file itself is replaced on every write, so locking it would lock an
  inode that is about to disappear);
- safe for the threads of one run (apply writes in parallel).

The file names the registry it belongs to; using it with another registry is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oauth2_sync.errors import RegistryError, UsageError
from oauth2_sync.paths import escaping
from oauth2_sync.registry.transport import url_problem
from oauth2_sync.secret import Secret
from oauth2_sync.settings import Settings

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Version of the state document; bumped on any incompatible change."""


@dataclass(frozen=True, slots=True)
class Registration:
    """How to reach one client on the server: its ids and its management credential."""

    client_id: str
    """Our client ID (the one in the client files)."""
    server_client_id: str
    """The client_id the server chose."""
    registration_client_uri: str
    registration_access_token: Secret


class StateFile:
    """The state of one ``rfc7592+`` registry, held open (and locked) until ``close``.

    ``registry`` is the registry URL the state belongs to. Opening takes the lock without
    waiting: a second run fails at once with a clear error instead of hanging.
    """

    def __init__(self, path: Path, registry: str, root: Path | None = None) -> None:
        self.path = path
        self.registry = registry
        self.root = root  # the settings' folder: the state file's folder stays inside
        self._mutex = threading.Lock()
        self._lock_fd: int | None = None
        self._entries: dict[str, Registration] = {}
        self._acquire()
        try:
            self._entries = self._read()
        except BaseException:
            self.close()
            raise

    # --- reading --------------------------------------------------------------------

    def get(self, client_id: str) -> Registration | None:
        """The registration of one of our clients, if the state knows it."""
        with self._mutex:
            return self._entries.get(client_id)

    def entries(self) -> list[Registration]:
        """Every registration, sorted by our client ID."""
        with self._mutex:
            return [self._entries[k] for k in sorted(self._entries)]

    def __len__(self) -> int:
        with self._mutex:
            return len(self._entries)

    # --- writing --------------------------------------------------------------------

    def put(self, registration: Registration) -> None:
        """Record (or replace) a registration and write the file before returning."""
        self._check_open()
        with self._mutex:
            entries = dict(self._entries)
            entries[registration.client_id] = registration
            self._write(entries)
            self._entries = entries

    def remove(self, client_id: str) -> bool:
        """Forget a registration and write the file; ``False`` if it was not known."""
        self._check_open()
        with self._mutex:
            if client_id not in self._entries:
                return False
            entries = dict(self._entries)
            del entries[client_id]
            self._write(entries)
            self._entries = entries
            return True

    def close(self) -> None:
        """Release the lock. The file is always up to date; there is nothing to flush."""
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> StateFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ------------------------------------------------------------------

    @property
    def lock_path(self) -> Path:
        """The sibling file that ``flock`` holds."""
        return self.path.with_name(self.path.name + ".lock")

    def _check_open(self) -> None:
        if self._lock_fd is None:
            raise RegistryError(f"{self.path}: the state file is closed")

    def _acquire(self) -> None:
        outside = escaping(self.path.parent, self.root)
        if outside is not None:
            raise RegistryError(f"registry.state_file: {outside}") from None
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise RegistryError(
                f"{self.path}: cannot create the state file's lock: {exc.strerror}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise RegistryError(
                f"{self.path}: the state file is locked by another oauth2-sync run; "
                "wait for it to finish"
            ) from exc
        except OSError as exc:
            os.close(fd)
            raise RegistryError(f"{self.path}: cannot lock the state file: {exc.strerror}") from exc
        self._lock_fd = fd

    def _read(self) -> dict[str, Registration]:
        try:
            with self.path.open("rb") as stream:
                mode = os.fstat(stream.fileno()).st_mode
                raw = stream.read()
        except FileNotFoundError:
            logger.info("no state file at %s yet: starting empty", self.path)
            return {}
        except OSError as exc:
            raise RegistryError(f"{self.path}: cannot read the state file: {exc.strerror}") from exc
        if stat.S_IMODE(mode) & 0o077:
            # Tighten rather than refuse: the next write recreates it 0600 anyway.
            logger.warning("%s: state file was readable by others; setting mode 0600", self.path)
            with contextlib.suppress(OSError):
                os.chmod(self.path, 0o600)
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            # from None: the cause quotes the file, which holds registration access tokens.
            raise RegistryError(f"{self.path}: the state file is not valid JSON") from None
        return self._parse(data)

    def _parse(self, data: Any) -> dict[str, Registration]:
        bad = f"{self.path}: not an oauth2-sync rfc7592 state file"
        if not isinstance(data, dict) or not isinstance(data.get("clients"), dict):
            raise RegistryError(bad)
        if data.get("format_version") != FORMAT_VERSION:
            raise RegistryError(
                f"{self.path}: state format_version {data.get('format_version')!r} is not "
                f"supported (this oauth2-sync reads {FORMAT_VERSION})"
            )
        if data.get("registry") != self.registry:
            raise RegistryError(
                f"{self.path}: the state file belongs to the registry "
                f"{data.get('registry')!r}, not {self.registry!r}; point registry.state_file "
                "at another file, or edit its \"registry\" if the server moved"
            )
        entries: dict[str, Registration] = {}
        for client_id, item in data["clients"].items():
            fields = ("client_id", "registration_client_uri", "registration_access_token")
            if not isinstance(item, dict) or not all(
                isinstance(item.get(f), str) and item.get(f) for f in fields
            ):
                raise RegistryError(f"{bad} (entry {client_id!r} is malformed)") from None
            _check_uri(self.path, client_id, item["registration_client_uri"])
            entries[client_id] = Registration(
                client_id=client_id,
                server_client_id=item["client_id"],
                registration_client_uri=item["registration_client_uri"],
                registration_access_token=Secret(item["registration_access_token"]),
            )
        return entries

    def _document(self, entries: dict[str, Registration]) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "registry": self.registry,
            "clients": {
                cid: {
                    "client_id": reg.server_client_id,
                    "registration_client_uri": reg.registration_client_uri,
                    "registration_access_token": reg.registration_access_token.reveal(),
                }
                for cid, reg in sorted(entries.items())
            },
        }

    def _write(self, entries: dict[str, Registration]) -> None:
        text = json.dumps(self._document(entries), indent=2, ensure_ascii=True) + "\n"
        try:
            # mkstemp creates the file 0600, so the tokens are never readable by others,
            # not even for an instant.
            fd, tmp = tempfile.mkstemp(
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
            )
        except OSError as exc:
            raise RegistryError(f"{self.path}: cannot write the state file: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise RegistryError(f"{self.path}: cannot write the state file: {exc.strerror}") from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk.
    with contextlib.suppress(OSError), _opened(folder) as fd:
        os.fsync(fd)


@contextlib.contextmanager
def _opened(folder: Path) -> Iterator[int]:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


def _check_uri(path: Path, client_id: str, uri: str) -> None:
    """The URL check of every URL a credential goes to, on a URL read from the state
    file (which anyone with write access to the repository could have edited)."""
    problem = url_problem(uri)
    if problem is None:
        return
    kind, detail = problem
    why = {
        "plain-http": f"plain http to {detail} (https only, http for loopback hosts)",
        "scheme": f"its scheme {detail!r} is not http or https",
    }.get(kind, detail)
    # The URL itself is not shown: its user info may hold a password.
    raise RegistryError(
        f"{path}: the registration client URI of {client_id!r} is refused: {why}; "
        "correct or remove its entry in the state file"
    ) from None


# --- forget: rebuilding the state --------------------------------------------------------

SCHEME_PREFIX = "rfc7592+"


def forget(settings: Settings, client_id: str) -> bool:
    """Remove a client's registration from the state file without touching the server.

    For a client deleted on the server (or lost in a restart): the next apply creates it
    again. ``False`` when the state did not know it.
    """
    require_rfc7592(settings, "forget")
    state_file = settings.registry.state_file
    if state_file is None:
        raise UsageError("an rfc7592 registry needs registry.state_file")
    with StateFile(state_file, settings.registry.url, settings.root) as state:
        return state.remove(client_id)


def require_rfc7592(settings: Settings, command: str) -> None:
    """Refuse a command meant for an rfc7592+ registry when the settings name another."""
    if not settings.registry.url.startswith(SCHEME_PREFIX):
        raise UsageError(
            f"{command} works with rfc7592+ registries only, not {settings.registry.url}"
        )
