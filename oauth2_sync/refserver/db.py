"""The store's SQLite plumbing: schema, one connection per thread, transactions, clock.

SQLite runs in WAL mode; every write is one ``BEGIN IMMEDIATE`` transaction. The store
is safe to share between threads: each thread gets its own connection.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from oauth2_sync.errors import RegistryError

Clock = Callable[[], float]
"""Seconds since the epoch, as ``time.time`` gives them; tests inject their own."""

SCHEMA_VERSION: Final = 1

_DDL: Final = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS partners (
    id INTEGER PRIMARY KEY,
    subdomain TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS partner_users (
    partner_id INTEGER NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    user_name TEXT NOT NULL,
    PRIMARY KEY (partner_id, user_name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    partner_id INTEGER NOT NULL REFERENCES partners(id),
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    restrict_to_partner_users INTEGER NOT NULL,
    scope TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    access_token_validity INTEGER,
    refresh_token_validity INTEGER,
    secret_hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS api_credentials (
    client_id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    scope TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS api_users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    scope TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    credential TEXT NOT NULL,
    username TEXT,
    scope TEXT NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
"""

_COUNTERS: Final = (
    # The number of clients, and a generation that changes whenever the set of client
    # IDs does: kept by triggers, so that a page costs the same at any size (COUNT(*) and
    # OFFSET walk every row: 30 us a client per listing at 100,000 clients).
    "INSERT OR IGNORE INTO meta SELECT 'client_count', COUNT(*) FROM clients",
    "INSERT OR IGNORE INTO meta VALUES ('client_generation', 0)",
    "CREATE TRIGGER IF NOT EXISTS clients_inserted AFTER INSERT ON clients BEGIN "
    "UPDATE meta SET value = value + 1 WHERE key IN ('client_count', 'client_generation'); "
    "END",
    "CREATE TRIGGER IF NOT EXISTS clients_deleted AFTER DELETE ON clients BEGIN "
    "UPDATE meta SET value = value + (CASE key WHEN 'client_count' THEN -1 ELSE 1 END) "
    "WHERE key IN ('client_count', 'client_generation'); END",
    "CREATE TRIGGER IF NOT EXISTS clients_renamed AFTER UPDATE OF client_id ON clients BEGIN "
    "UPDATE meta SET value = value + 1 WHERE key = 'client_generation'; END",
)
"""Run on every open, in the schema's transaction: a store made before them gains them."""


class StoreBase:
    """Connections, transactions and the schema; the concerns build on it."""

    def __init__(self, path: Path | str, clock: Clock = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        """What expiry and the audit timestamps read the time from."""
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.is_new = self._create_schema(self._conn())
        """Whether this open created the store (so it has no partners yet)."""

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise RegistryError(f"registry store {self.path} is closed")
            try:
                conn = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, timeout=30.0
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error as exc:
                raise RegistryError(f"cannot open registry store {self.path}: {exc}") from exc
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front: two writers never deadlock upgrading.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def _create_schema(self, conn: sqlite3.Connection) -> bool:
        with self._write(conn):
            existing = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
            ).fetchone()
            if existing is None:
                for statement in _DDL.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?), ('last_version', 0)",
                    (SCHEMA_VERSION,),
                )
                self._create_counters(conn)
                return True
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None or row[0] != SCHEMA_VERSION:
                raise RegistryError(
                    f"registry store {self.path} has schema version "
                    f"{row[0] if row else 'unknown'}, expected {SCHEMA_VERSION}"
                )
            self._create_counters(conn)
            return False

    @staticmethod
    def _create_counters(conn: sqlite3.Connection) -> None:
        for statement in _COUNTERS:
            conn.execute(statement)

    def close(self) -> None:
        """Close every connection this store opened (from any thread)."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def _timestamp(self) -> str:
        # The audit fields' form: UTC with milliseconds and a ``Z``.
        moment = datetime.fromtimestamp(self.clock(), UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_secret() -> str:
    """A new client secret: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """``sha256$SALT$DIGEST``: salted SHA-256.

    Enough for a reference server whose secrets are 256 random bits; a production
    registry storing human-chosen passwords would use a slow KDF instead.
    """
    salt = secrets.token_hex(16)
    digest = hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()
    return f"sha256${salt}${digest}"


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches a ``hash_secret`` value (constant-time compare)."""
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "sha256":
        return False
    candidate = hashlib.sha256(f"{salt}:{secret}".encode("utf-8", "replace")).hexdigest()
    return hmac.compare_digest(candidate, digest)


def token_hash(token: str) -> str:
    """The key a token is stored under: its SHA-256, in hex."""
    # Tokens are 256 random bits: an unsalted hash is enough to keep them out of the file.
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()

