"""Secrets pending delivery: a small journal beside the settings.

A new client's secret exists only in the registry's create response, on its way to the
sink. A process killed between the two (SIGKILL, a lost CI runner, a power cut) leaves
a client whose secret nobody has. So ``apply`` notes every client it is about to create
here before it sends a single create (one ``fsync``), and crosses each off once its
secret is in the sink, or once it is certain that this apply created no client (refused,
or the registry answered 409: another writer made it, and got its secret). What stays
is reported by the next ``plan`` and ``apply`` with the command that recovers it
(``oauth2-sync rotate-secret ID``), and ``rotate-secret`` crosses it off when it has
delivered a new secret. ``rotate-secret`` notes each client the same way before it asks
for a new secret (which revokes the old one), as a rotation.

The journal, its lock and their folder are a boundary: they are opened with
``O_NOFOLLOW``, and a folder that is a symbolic link or resolves outside the settings'
folder is refused, so that a link committed to the repository cannot make a run write
elsewhere.

The file, ``.oauth2-sync/pending-secrets.jsonl`` next to ``oauth2-sync.yaml`` (mode
0600, folder 0700; a ``.lock`` file beside it), holds client IDs and times, never a
secret. It is append-only
JSON lines, so crossing off one of 10,000 creates costs one short write rather than a
rewrite; ``compact`` rewrites it atomically (or removes it) at the end of a run. An
exclusive ``flock`` serialises writers of several processes; a torn last line (a crash
in mid-write) is ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Literal, TextIO

from oauth2_sync import clock
from oauth2_sync.errors import UsageError
from oauth2_sync.paths import escaping
from oauth2_sync.records import NamedTuple
from oauth2_sync.safetext import escape

logger = logging.getLogger(__name__)

JOURNAL_PATH = Path(".oauth2-sync") / "pending-secrets.jsonl"
"""Where the journal lives, relative to the folder of ``oauth2-sync.yaml``."""

PendingOperation = Literal["create", "rotate"]


class Pending(NamedTuple):
    """A client created (or about to be) whose secret has not reached the sink."""

    client_id: str
    since: str
    """When the create (or rotation) was about to be sent (UTC, ISO 8601)."""
    operation: PendingOperation = "create"
    sink_failed: bool = False
    """The secret was issued and the sink refused it (nothing stopped)."""

    def warning(self) -> str:
        """The one line ``plan`` and ``apply`` show for it."""
        client_id, since = escape(self.client_id), escape(self.since)
        if self.sink_failed:
            done = "created" if self.operation == "create" else "given a new secret"
            return (
                f"{client_id} was {done} ({since}), but its secret was not delivered (the "
                f"sink failed); run `oauth2-sync rotate-secret {client_id}` to issue a new one"
            )
        if self.operation == "rotate":
            return (
                f"the secret of {client_id} was being rotated by a rotate-secret that "
                f"stopped before the new one reached the sink ({since}); the old one may "
                f"no longer work: run `oauth2-sync rotate-secret {client_id}` to issue a "
                "new one"
            )
        return (
            f"{client_id} was created by an apply that stopped before its secret "
            f"reached the sink ({since}); run `oauth2-sync rotate-secret {client_id}` "
            "to issue a new one"
        )


class Journal:
    """The pending-secrets file of one configuration. Thread-safe."""

    def __init__(self, path: Path, root: Path | None = None) -> None:
        self.path = path
        self.root = root
        """The settings' folder, which the journal's folder must not leave."""
        self._lock = threading.Lock()

    @classmethod
    def beside(cls, settings_root: Path) -> Journal:
        """The journal of the configuration whose settings are in ``settings_root``."""
        return cls(settings_root / JOURNAL_PATH, settings_root)

    def record(
        self, client_ids: Iterable[str], operation: PendingOperation = "create"
    ) -> None:
        """Note clients about to be created (or rotated); on disk (fsync) before this
        returns."""
        now = clock.timestamp()
        lines = [{"pending": client_id, "since": now} for client_id in client_ids]
        if operation != "create":
            lines = [line | {"operation": operation} for line in lines]
        if lines:
            self._append(lines, durable=True)

    def undelivered(self, client_ids: Iterable[str]) -> None:
        """Note pending clients whose secret the sink refused: they stay pending, and
        their warning says so rather than blame a run that stopped."""
        lines = [{"undelivered": client_id} for client_id in client_ids]
        if lines and os.path.lexists(self.path):
            self._append(lines, durable=True)

    def clear(self, client_ids: Iterable[str]) -> None:
        """Cross clients off: their secret is in the sink, or they were never created.

        Not synced: a crossing-off lost in a crash only makes the next run suggest a
        rotation that was not needed, never hide one that is.
        """
        lines = [{"done": client_id} for client_id in client_ids]
        if lines and os.path.lexists(self.path):
            self._append(lines, durable=False)

    def pending(self) -> tuple[Pending, ...]:
        """The clients still pending, in the order they were recorded."""
        with self._locked(create=False) as exists:
            return tuple(self._replay().values()) if exists else ()

    def reconcile(self, existing: Collection[str]) -> tuple[Pending, ...]:
        """The pending clients that exist in the registry (``existing``: every client ID
        it holds); the others were never created, and are crossed off."""
        pending = self.pending()
        gone = [p.client_id for p in pending if p.client_id not in existing]
        if gone:
            logger.info("pending secrets of clients that were never created: %s", gone)
            self.clear(gone)
        return tuple(p for p in pending if p.client_id in existing)

    def compact(self) -> None:
        """Rewrite the file with only what is pending (atomically), or remove it."""
        with self._locked(create=False) as exists:
            if not exists:
                return
            pending = self._replay()
            if not pending:
                self.path.unlink(missing_ok=True)
                return
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            with _open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) as stream:
                for item in pending.values():
                    entry: dict[str, str | bool] = {"pending": item.client_id, "since": item.since}
                    if item.operation != "create":
                        entry["operation"] = item.operation
                    if item.sink_failed:
                        entry["sink_failed"] = True
                    stream.write(_line(entry))
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(tmp, self.path)

    # --- the file -------------------------------------------------------------------------

    def _append(self, lines: list[dict[str, str]], *, durable: bool) -> None:
        with (
            self._locked(create=True),
            _open_private(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND) as stream,
        ):
            stream.write("".join(_line(line) for line in lines))
            stream.flush()
            if durable:
                os.fsync(stream.fileno())

    def _replay(self) -> dict[str, Pending]:
        pending: dict[str, Pending] = {}
        try:
            with os.fdopen(_open(self.path, os.O_RDONLY), encoding="utf-8") as stream:
                text = stream.read()
        except FileNotFoundError:
            return pending
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"{self.path}: cannot read the pending-secrets journal: {exc}"
            ) from exc
        for raw in text.splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                continue  # a line torn by a crash in mid-write
            if not isinstance(entry, dict):
                continue
            if isinstance(entry.get("pending"), str):
                client_id = entry["pending"]
                since = entry.get("since")
                operation: PendingOperation = (
                    "rotate" if entry.get("operation") == "rotate" else "create"
                )
                pending[client_id] = Pending(
                    client_id, since if isinstance(since, str) else "", operation,
                    entry.get("sink_failed") is True,
                )
            elif entry.get("undelivered") in pending:
                pending[entry["undelivered"]] = pending[entry["undelivered"]]._replace(
                    sink_failed=True
                )
            elif isinstance(entry.get("done"), str):
                pending.pop(entry["done"], None)
        return pending

    @contextlib.contextmanager
    def _locked(self, *, create: bool) -> Iterator[bool]:
        """Hold the thread lock and an exclusive ``flock`` on the journal's lock file;
        yields whether the journal exists. With ``create``, make its folder (0700)."""
        with self._lock:
            if os.path.lexists(self.path.parent):
                self._check_folder()  # before reading through it, too
            if not create and not os.path.lexists(self.path):
                yield False
                return
            # A lock file of its own: compaction replaces the journal, and a lock on a
            # replaced file would not exclude a process that opened the new one.
            lock = self.path.with_name(self.path.name + ".lock")
            outside = escaping(self.path.parent, self.root)
            if outside is not None:
                raise UsageError(f"pending-secrets journal: {outside}") from None
            try:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(
                    f"{self.path}: cannot open the pending-secrets journal: "
                    f"{exc.strerror or exc}"
                ) from exc
            self._check_folder()
            fd = _open(lock, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield os.path.lexists(self.path)
            finally:
                os.close(fd)

    def _check_folder(self) -> None:
        """Refuse a journal folder that is a link, or leads out of the settings' folder."""
        folder = self.path.parent
        if folder.is_symlink():
            raise UsageError(
                f"{folder} is a symbolic link; refusing to keep the pending-secrets "
                "journal where it points: remove the link (a real folder is created)"
            )
        if self.root is not None:
            try:
                folder.resolve().relative_to(self.root.resolve())
            except ValueError as exc:
                raise UsageError(
                    f"{folder} resolves to {folder.resolve()}, outside the settings' folder "
                    f"{self.root}; refusing to keep the pending-secrets journal there"
                ) from exc


def _open(path: Path, flags: int) -> int:
    """``os.open`` that never follows a link (a link in its place is an error line)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if os.path.islink(path):
            raise UsageError(
                f"{path} is a symbolic link; refusing to follow it: remove it"
            ) from exc
        raise UsageError(
            f"{path}: cannot open the pending-secrets journal: {exc.strerror or exc}"
        ) from exc


def _open_private(path: Path, flags: int) -> TextIO:
    return os.fdopen(_open(path, flags), "w", encoding="utf-8")


def _line(entry: Mapping[str, object]) -> str:
    return json.dumps(entry, ensure_ascii=True, separators=(",", ":")) + "\n"

