"""The registry's store: partners, clients, API credentials and tokens in SQLite.

One store serves two masters: the reference server (``registry serve``) and the
embedded ``local:PATH`` adapter. Both see clients exactly as the wire does (camelCase
mappings, ``redirectUri`` as one comma-separated string), so the registry's rules are
enforced once, here, whichever way a write arrives.

SQLite runs in WAL mode; every write is one ``BEGIN IMMEDIATE`` transaction, and every
write to a client takes the next value of one store-wide counter as the client's
``version``. A store-wide counter (rather than one per client) means a version is never
reused, even when a client is deleted and created again, so a stale ``If-Match`` can
never match by accident.

The store is safe to share between threads: each thread gets its own connection.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeGuard

from oauth2_sync.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    RegistryError,
    UsageError,
)
from oauth2_sync.loader import load_file
from oauth2_sync.registry.base import Secret

logger = logging.getLogger(__name__)

WireClient = dict[str, Any]
"""A client as the API sends it (camelCase keys; see ``schemas/registry-api.openapi.yaml``)."""

SCHEMA_VERSION: Final = 1
MAX_INT: Final = 2**31 - 1
"""Largest lifetime or id the registry accepts (and SQLite can always bind)."""
SCOPES: Final = ("read", "write")
GRANT_TYPES: Final = ("authorization_code", "implicit", "password", "refresh_token")
REDIRECT_GRANTS: Final = frozenset({"implicit", "authorization_code"})
DEFAULT_SCOPE: Final = ("read",)
DEFAULT_GRANTS: Final = ("password", "refresh_token")

CLIENT_ID_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]*")
SUBDOMAIN_RE: Final = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
EMAIL_RE: Final = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+")
NON_BLANK_RE: Final = re.compile(r"\S")
CLIENT_ID_MAX, NAME_MAX, EMAIL_MAX, REDIRECT_MAX, REDIRECT_ITEM_MAX = 100, 200, 254, 20000, 2000

_WRITABLE: Final = frozenset(
    {
        "clientId", "name", "email", "partnerId", "restrictToPartnerUsers", "scope",
        "grantTypes", "redirectUri", "accessTokenValiditySeconds",
        "refreshTokenValiditySeconds",
    }
)
_READ_ONLY: Final = frozenset({"version", "createdAt", "updatedAt", "updatedBy", "clientSecret"})
"""Sent back by clients that PUT what they read; accepted and ignored."""

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
_BOUNDARIES_MAX: Final = 4096

_CLIENT_COLUMNS: Final = (
    "client_id, partner_id, name, email, restrict_to_partner_users, scope, grant_types, "
    "redirect_uri, access_token_validity, refresh_token_validity, version, created_at, "
    "updated_at, updated_by"
)


@dataclass(frozen=True, slots=True)
class PartnerRecord:
    """A partner as stored: numeric id, subdomain, display name and user names (sorted)."""

    id: int
    subdomain: str
    name: str
    users: tuple[str, ...]

    def to_wire(self) -> dict[str, Any]:
        """The partner as ``GET /v1/partners`` shows it."""
        return {"id": self.id, "subdomain": self.subdomain, "name": self.name,
                "users": list(self.users)}


@dataclass(frozen=True, slots=True)
class ApiCredential:
    """An API client that may call the registry: its id, secret and scope (``read``...)."""

    client_id: str
    secret: Secret
    scope: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ApiUser:
    """A resource owner for the password grant: user name, password and scope."""

    username: str
    password: Secret
    scope: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Seed:
    """What a seed file declares (see ``oauth2_sync.registry.seed``)."""

    partners: tuple[PartnerRecord, ...]
    credentials: tuple[ApiCredential, ...] = ()
    users: tuple[ApiUser, ...] = ()


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly issued access token (and refresh token, for the password grant)."""

    access_token: str
    expires_in: int
    scope: tuple[str, ...]
    refresh_token: str | None = None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """Who a valid token belongs to and what it may do."""

    credential: str
    scope: tuple[str, ...]
    username: str | None = None


class RegistryStore:
    """The SQLite store. Thread-safe: one connection per thread, opened on first use."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._boundaries: dict[tuple[int, int, int], str] = {}
        """(generation, page size, page) -> the last client ID before that page."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.is_new = self._create_schema(self._conn())
        """Whether this open created the store (so it has no partners yet)."""

    # --- connections and transactions -------------------------------------

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
                raise RegistryError(f"cannot open registry store {self.path}: {exc}") from None
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

    # --- partners, credentials and seeding ---------------------------------

    def apply_seed(self, seed: Seed) -> None:
        """Insert or update the seed's partners, users and credentials (idempotent)."""
        conn = self._conn()
        with self._write(conn):
            for partner in seed.partners:
                conn.execute(
                    "INSERT INTO partners (id, subdomain, name) VALUES (?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET subdomain=excluded.subdomain, "
                    "name=excluded.name",
                    (partner.id, partner.subdomain, partner.name),
                )
                conn.execute("DELETE FROM partner_users WHERE partner_id=?", (partner.id,))
                conn.executemany(
                    "INSERT INTO partner_users VALUES (?, ?)",
                    [(partner.id, user) for user in sorted(set(partner.users))],
                )
            for cred in seed.credentials:
                conn.execute(
                    "INSERT INTO api_credentials VALUES (?, ?, ?) ON CONFLICT(client_id) "
                    "DO UPDATE SET secret_hash=excluded.secret_hash, scope=excluded.scope",
                    (cred.client_id, hash_secret(cred.secret.reveal()), " ".join(sorted(cred.scope))),
                )
            for user in seed.users:
                conn.execute(
                    "INSERT INTO api_users VALUES (?, ?, ?) ON CONFLICT(username) "
                    "DO UPDATE SET password_hash=excluded.password_hash, scope=excluded.scope",
                    (user.username, hash_secret(user.password.reveal()), " ".join(sorted(user.scope))),
                )
        logger.info(
            "seeded %s: %d partners, %d API credentials, %d users",
            self.path, len(seed.partners), len(seed.credentials), len(seed.users),
        )

    def list_partners(self) -> list[PartnerRecord]:
        """Every partner with its users, by id."""
        with self._read() as conn:
            users: dict[int, list[str]] = {}
            for partner_id, user in conn.execute(
                "SELECT partner_id, user_name FROM partner_users ORDER BY partner_id, user_name"
            ):
                users.setdefault(partner_id, []).append(user)
            return [
                PartnerRecord(pid, subdomain, name, tuple(users.get(pid, ())))
                for pid, subdomain, name in conn.execute(
                    "SELECT id, subdomain, name FROM partners ORDER BY id"
                )
            ]

    # --- clients: reads -----------------------------------------------------

    def count_clients(self) -> int:
        """How many clients the store holds."""
        row = self._conn().execute("SELECT value FROM meta WHERE key='client_count'").fetchone()
        return int(row[0])

    def list_clients(self) -> list[WireClient]:
        """Every client, by client ID."""
        rows = self._conn().execute(
            f"SELECT {_CLIENT_COLUMNS} FROM clients ORDER BY client_id"
        )
        return [_row_to_wire(row) for row in rows]

    def page_clients(self, page: int, page_size: int) -> tuple[int, list[WireClient]]:
        """One page (numbered from 0) of clients by client ID, and the total count."""
        # One read transaction: the count, the generation and the page come from the same
        # snapshot. A reader going through the pages in turn finds where each page starts
        # (the last ID of the page before, noted for this generation) and reads it from
        # there; any other page is found by OFFSET, which walks the rows before it.
        with self._read() as conn:
            counters = dict(conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('client_count', 'client_generation')"
            ).fetchall())
            total, generation = int(counters["client_count"]), int(counters["client_generation"])
            after = self._boundaries.get((generation, page_size, page)) if page else None
            if after is not None:
                rows = conn.execute(
                    f"SELECT {_CLIENT_COLUMNS} FROM clients WHERE client_id > ? "
                    "ORDER BY client_id LIMIT ?",
                    (after, page_size),
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_CLIENT_COLUMNS} FROM clients ORDER BY client_id LIMIT ? OFFSET ?",
                    (page_size, page * page_size),
                ).fetchall()
        if len(rows) == page_size:
            with self._lock:
                if len(self._boundaries) >= _BOUNDARIES_MAX:
                    self._boundaries.clear()
                self._boundaries[(generation, page_size, page + 1)] = rows[-1][0]
        return total, [_row_to_wire(row) for row in rows]

    def get_client(self, client_id: str) -> WireClient | None:
        """One client, or ``None``."""
        row = self._conn().execute(
            f"SELECT {_CLIENT_COLUMNS} FROM clients WHERE client_id=?",
            (client_id,),
        ).fetchone()
        return None if row is None else _row_to_wire(row)

    def check_client_secret(self, client_id: str, secret: str) -> bool:
        """Whether ``secret`` is the current secret of the client."""
        row = self._conn().execute(
            "SELECT secret_hash FROM clients WHERE client_id=?", (client_id,)
        ).fetchone()
        return row is not None and verify_secret(secret, row[0])

    # --- clients: writes ----------------------------------------------------

    def create_client(self, body: Mapping[str, Any], actor: str) -> tuple[WireClient, str]:
        """Create a client from a wire body; returns it and its new secret.

        Raises ``RegistryError`` (400, with ``fields``) for an invalid body and
        ``ConflictError`` when the client ID exists.
        """
        values, problems = _check_body(body, None)
        secret = new_secret()
        conn = self._conn()
        with self._write(conn):
            self._check_partner(conn, values, problems)
            if conn.execute(
                "SELECT 1 FROM clients WHERE client_id=?", (values["clientId"],)
            ).fetchone():
                raise ConflictError(
                    f"client {values['clientId']} already exists", status=409
                )
            version = self._next_version(conn)
            now = _now()
            conn.execute(
                "INSERT INTO clients VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*_columns(values), hash_secret(secret), version, now, now, actor),
            )
        return _wire(values, version, now, now, actor), secret

    def replace_client(
        self,
        client_id: str,
        body: Mapping[str, Any],
        expected: Collection[str] | None,
        actor: str,
    ) -> WireClient:
        """Replace a client whole.

        ``expected`` holds the versions (as strings) the caller accepts, from
        ``If-Match``; ``None`` writes unconditionally. Raises ``NotFoundError``,
        ``PreconditionFailedError`` or ``RegistryError`` (400).
        """
        values, problems = _check_body(body, client_id)
        conn = self._conn()
        with self._write(conn):
            if problems:
                # A bad body is a 400 whatever the client's state (never a 404 or 412).
                self._check_partner(conn, values, problems)
            row = self._current(conn, client_id, expected)
            self._check_partner(conn, values, problems)
            version = self._next_version(conn)
            now = _now()
            conn.execute(
                "UPDATE clients SET partner_id=?, name=?, email=?, "
                "restrict_to_partner_users=?, scope=?, grant_types=?, redirect_uri=?, "
                "access_token_validity=?, refresh_token_validity=?, version=?, "
                "updated_at=?, updated_by=? WHERE client_id=?",
                (*_columns(values)[1:], version, now, actor, client_id),
            )
        return _wire(values, version, row[1], now, actor)

    def delete_client(self, client_id: str, expected: Collection[str] | None) -> None:
        """Delete a client; ``expected`` as for ``replace_client``."""
        conn = self._conn()
        with self._write(conn):
            self._current(conn, client_id, expected)
            conn.execute("DELETE FROM clients WHERE client_id=?", (client_id,))

    def rotate_secret(self, client_id: str, actor: str) -> tuple[WireClient, str]:
        """Give a client a new secret (the old one stops working); bumps its version."""
        secret = new_secret()
        conn = self._conn()
        with self._write(conn):
            self._current(conn, client_id, None)
            version = self._next_version(conn)
            conn.execute(
                "UPDATE clients SET secret_hash=?, version=?, updated_at=?, updated_by=? "
                "WHERE client_id=?",
                (hash_secret(secret), version, _now(), actor, client_id),
            )
            row = conn.execute(
                f"SELECT {_CLIENT_COLUMNS} FROM clients WHERE client_id=?",
                (client_id,),
            ).fetchone()
        return _row_to_wire(row), secret

    def bulk_create(self, bodies: Sequence[Mapping[str, Any]], actor: str) -> None:
        """Create many clients in one transaction (benchmarks and tests); secrets discarded."""
        values = [validate_client_body(body) for body in bodies]
        conn = self._conn()
        with self._write(conn):
            for value in values:
                self._check_partner(conn, value, {})
            now = _now()
            first = self._next_version(conn, len(values))
            conn.executemany(
                "INSERT INTO clients VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (*_columns(v), hash_secret(new_secret()), first + i, now, now, actor)
                    for i, v in enumerate(values)
                ],
            )

    def _current(
        self, conn: sqlite3.Connection, client_id: str, expected: Collection[str] | None
    ) -> tuple[int, str]:
        row = conn.execute(
            "SELECT version, created_at FROM clients WHERE client_id=?", (client_id,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"client {client_id} does not exist", status=404)
        if expected is not None and str(row[0]) not in expected:
            raise PreconditionFailedError(
                f"client {client_id} is at version {row[0]}, not "
                f"{', '.join(sorted(expected)) or 'the one given'}",
                status=412,
            )
        return int(row[0]), str(row[1])

    def _check_partner(
        self, conn: sqlite3.Connection, values: Mapping[str, Any], problems: dict[str, str]
    ) -> None:
        # The one rule that needs the store; reported together with the others.
        if "partnerId" not in problems:
            row = conn.execute(
                "SELECT subdomain FROM partners WHERE id=?", (values["partnerId"],)
            ).fetchone()
            if row is None:
                problems["partnerId"] = f"partner {values['partnerId']} does not exist"
            elif "clientId" not in problems:
                prefix = f"{row[0]}-"
                client_id: str = values["clientId"]
                if not client_id.startswith(prefix) or len(client_id) == len(prefix):
                    problems["clientId"] = f"must be '{prefix}' followed by a user name"
        if problems:
            _invalid(problems)

    def _next_version(self, conn: sqlite3.Connection, count: int = 1) -> int:
        row = conn.execute(
            "UPDATE meta SET value = value + ? WHERE key='last_version' RETURNING value",
            (count,),
        ).fetchone()
        return int(row[0]) - count + 1

    # --- API credentials and tokens -----------------------------------------

    def authenticate_credential(self, client_id: str, secret: str) -> tuple[str, ...] | None:
        """The scope of an API credential whose secret matches, else ``None``."""
        row = self._conn().execute(
            "SELECT secret_hash, scope FROM api_credentials WHERE client_id=?", (client_id,)
        ).fetchone()
        if row is None or not verify_secret(secret, row[0]):
            return None
        return tuple(str(row[1]).split())

    def authenticate_user(self, username: str, password: str) -> tuple[str, ...] | None:
        """The scope of a password-grant user whose password matches, else ``None``."""
        row = self._conn().execute(
            "SELECT password_hash, scope FROM api_users WHERE username=?", (username,)
        ).fetchone()
        if row is None or not verify_secret(password, row[0]):
            return None
        return tuple(str(row[1]).split())

    def issue_token(
        self,
        info: TokenInfo,
        ttl: int,
        refresh_ttl: int | None = None,
    ) -> IssuedToken:
        """Issue an access token (and a refresh token when ``refresh_ttl`` is given)."""
        access = secrets.token_urlsafe(32)
        refresh = secrets.token_urlsafe(32) if refresh_ttl is not None else None
        now = time.time()
        conn = self._conn()
        with self._write(conn):
            conn.execute("DELETE FROM tokens WHERE expires_at < ?", (now,))
            rows = [(_token_hash(access), "access", now + ttl)]
            if refresh is not None and refresh_ttl is not None:
                rows.append((_token_hash(refresh), "refresh", now + refresh_ttl))
            conn.executemany(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (digest, kind, info.credential, info.username, " ".join(info.scope), until)
                    for digest, kind, until in rows
                ],
            )
        return IssuedToken(access, ttl, info.scope, refresh)

    def check_token(self, token: str) -> TokenInfo | None:
        """Who an unexpired access token belongs to, else ``None``."""
        row = self._conn().execute(
            "SELECT credential, scope, username, expires_at FROM tokens "
            "WHERE token_hash=? AND kind='access'",
            (_token_hash(token),),
        ).fetchone()
        if row is None or row[3] < time.time():
            return None
        return TokenInfo(row[0], tuple(str(row[1]).split()), row[2])

    def redeem_refresh_token(self, token: str, credential: str) -> TokenInfo | None:
        """Consume a refresh token issued to ``credential``; ``None`` if invalid.

        Refresh tokens are single-use: the caller issues a new pair.
        """
        digest = _token_hash(token)
        conn = self._conn()
        with self._write(conn):
            row = conn.execute(
                "SELECT credential, scope, username, expires_at FROM tokens "
                "WHERE token_hash=? AND kind='refresh'",
                (digest,),
            ).fetchone()
            if row is None or row[0] != credential or row[3] < time.time():
                return None
            conn.execute("DELETE FROM tokens WHERE token_hash=?", (digest,))
        return TokenInfo(row[0], tuple(str(row[1]).split()), row[2])


# --- validation ---------------------------------------------------------------


def validate_client_body(
    body: Any, *, path_client_id: str | None = None
) -> dict[str, Any]:
    """Check a wire body against the registry's rules; returns the values with defaults.

    Raises ``RegistryError`` (status 400) whose ``fields`` name every bad field. The
    partner-dependent rules (partner exists, client ID prefix) need the store and are
    checked inside the write.
    """
    values, problems = _check_body(body, path_client_id)
    if problems:
        _invalid(problems)
    return values


def _check_body(body: Any, path_client_id: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    if not isinstance(body, Mapping):
        raise RegistryError(
            "invalid client metadata: the body must be a JSON object", status=400
        )
    problems: dict[str, str] = {}
    for key in body:
        if key not in _WRITABLE and key not in _READ_ONLY:
            problems[str(key)] = "unknown field"
    values: dict[str, Any] = {}

    client_id = body.get("clientId", path_client_id)
    if path_client_id is not None and client_id != path_client_id:
        problems["clientId"] = "must equal the client ID in the path"
    elif _string(client_id, problems, "clientId", CLIENT_ID_MAX, required=True):
        if not CLIENT_ID_RE.fullmatch(client_id):
            problems["clientId"] = (
                "must be lower-case letters, digits, '.', '_' and '-', "
                "starting with a letter or digit"
            )
        elif len(client_id) < 3:
            problems["clientId"] = "must be at least 3 characters"
    values["clientId"] = client_id

    name = body.get("name")
    if _string(name, problems, "name", NAME_MAX, required=True) and not NON_BLANK_RE.search(
        name
    ):
        problems["name"] = "must not be blank"
    values["name"] = name

    email = body.get("email")
    if _string(email, problems, "email", EMAIL_MAX, required=True) and not EMAIL_RE.fullmatch(
        email
    ):
        problems["email"] = "must be exactly one e-mail address"
    values["email"] = email

    partner_id = body.get("partnerId")
    if partner_id is None:
        problems["partnerId"] = "is required"
    elif not _is_int(partner_id) or not 1 <= partner_id <= MAX_INT:
        problems["partnerId"] = "must be a partner's numeric id"
    values["partnerId"] = partner_id

    restrict = body.get("restrictToPartnerUsers", True)
    if not isinstance(restrict, bool):
        problems["restrictToPartnerUsers"] = "must be true or false"
    values["restrictToPartnerUsers"] = restrict

    values["scope"] = _choices(problems, "scope", body.get("scope", DEFAULT_SCOPE), SCOPES)
    grants = _choices(
        problems, "grantTypes", body.get("grantTypes", DEFAULT_GRANTS), GRANT_TYPES
    )
    values["grantTypes"] = grants

    redirect = body.get("redirectUri", "")
    if _string(redirect, problems, "redirectUri", REDIRECT_MAX, required=False):
        _check_redirects(problems, redirect, grants)
    values["redirectUri"] = redirect

    access = body.get("accessTokenValiditySeconds")
    if access is not None and (
        not _is_int(access) or not (access == -1 or 1 <= access <= MAX_INT)
    ):
        problems["accessTokenValiditySeconds"] = (
            "must be null (platform default), -1 (never expires) or a positive number "
            "of seconds"
        )
    values["accessTokenValiditySeconds"] = access

    refresh = body.get("refreshTokenValiditySeconds")
    if refresh is not None and (not _is_int(refresh) or not 1 <= refresh <= MAX_INT):
        problems["refreshTokenValiditySeconds"] = (
            "must be null (platform default) or a positive number of seconds"
        )
    values["refreshTokenValiditySeconds"] = refresh
    return values, problems


def _invalid(problems: Mapping[str, str]) -> Any:
    ordered = dict(sorted(problems.items()))
    detail = "; ".join(f"{k}: {v}" for k, v in ordered.items())
    raise RegistryError(f"invalid client metadata: {detail}", status=400, fields=ordered)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string(
    value: Any, problems: dict[str, str], field: str, limit: int, *, required: bool
) -> TypeGuard[str]:
    if value is None:
        problems[field] = "is required" if required else "must be a string"
        return False
    if not isinstance(value, str):
        problems[field] = "must be a string"
        return False
    if required and not value:
        problems[field] = "must not be empty"
        return False
    if len(value) > limit:
        problems[field] = f"must be at most {limit} characters"
        return False
    if not _encodable(value):
        problems[field] = "must be valid Unicode text"
        return False
    return True


def _encodable(value: str) -> bool:
    # json.loads accepts lone surrogates ("\ud800"); SQLite cannot store them.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def _choices(
    problems: dict[str, str], field: str, value: Any, allowed: tuple[str, ...]
) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        problems[field] = "must be an array of strings"
        return ()
    if not value:
        problems[field] = f"must name at least one of {', '.join(allowed)}"
        return ()
    unknown = sorted({v for v in value if v not in allowed})
    if unknown:
        shown = ", ".join(repr(v) if _encodable(v) else "?" for v in unknown)
        problems[field] = f"unknown value {shown} (allowed: {', '.join(allowed)})"
        return ()
    if len(set(value)) != len(value):
        problems[field] = "must not repeat a value"
        return ()
    return tuple(sorted(value))


def _check_redirects(problems: dict[str, str], redirect: str, grants: tuple[str, ...]) -> None:
    if not redirect.strip():
        return
    parts = [p.strip() for p in redirect.split(",")]
    if any(not p for p in parts):
        problems["redirectUri"] = "must not contain an empty entry"
    elif any(len(p) > REDIRECT_ITEM_MAX for p in parts):
        problems["redirectUri"] = f"each URI must be at most {REDIRECT_ITEM_MAX} characters"
    elif grants and not REDIRECT_GRANTS.intersection(grants):
        problems["redirectUri"] = (
            "redirect URIs are allowed only with the implicit or authorization_code grant"
        )


# --- rows, secrets, time ------------------------------------------------------


def _columns(values: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        values["clientId"],
        values["partnerId"],
        values["name"],
        values["email"],
        1 if values["restrictToPartnerUsers"] else 0,
        " ".join(values["scope"]),
        " ".join(values["grantTypes"]),
        values["redirectUri"],
        values["accessTokenValiditySeconds"],
        values["refreshTokenValiditySeconds"],
    )


def _wire(
    values: Mapping[str, Any], version: int, created: str, updated: str, actor: str
) -> WireClient:
    return {
        "clientId": values["clientId"],
        "name": values["name"],
        "email": values["email"],
        "partnerId": values["partnerId"],
        "restrictToPartnerUsers": values["restrictToPartnerUsers"],
        "scope": list(values["scope"]),
        "grantTypes": list(values["grantTypes"]),
        "redirectUri": values["redirectUri"],
        "accessTokenValiditySeconds": values["accessTokenValiditySeconds"],
        "refreshTokenValiditySeconds": values["refreshTokenValiditySeconds"],
        "version": version,
        "createdAt": created,
        "updatedAt": updated,
        "updatedBy": actor,
    }


def _row_to_wire(row: Sequence[Any]) -> WireClient:
    return {
        "clientId": row[0],
        "name": row[2],
        "email": row[3],
        "partnerId": row[1],
        "restrictToPartnerUsers": bool(row[4]),
        "scope": row[5].split(),
        "grantTypes": row[6].split(),
        "redirectUri": row[7],
        "accessTokenValiditySeconds": row[8],
        "refreshTokenValiditySeconds": row[9],
        "version": row[10],
        "createdAt": row[11],
        "updatedAt": row[12],
        "updatedBy": row[13],
    }


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


def _token_hash(token: str) -> str:
    # Tokens are 256 random bits: an unsalted hash is enough to keep them out of the file.
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- seed files ---------------------------------------------------------------

_ENV_REF: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_seed(path: Path) -> Seed:
    """Read a seed file (partners, users, API credentials); see the README, "The seed file".

    Secrets may be written as ``${VAR}`` or ``${VAR:-default}``: the value of the
    environment variable, or the default when it is unset or empty. Raises
    ``UsageError`` naming the file and the offending entry.
    """
    data = load_file(path).data
    where = str(path)

    def fail(at: str, message: str) -> Any:
        raise UsageError(f"{where}: {at}: {message}")

    def mapping(value: Any, at: str, keys: set[str], required: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            fail(at, "must be a mapping")
        unknown = sorted(set(value) - keys)
        if unknown:
            fail(at, f"unknown key '{unknown[0]}' (allowed: {', '.join(sorted(keys))})")
        missing = sorted(required - set(value))
        if missing:
            fail(at, f"'{missing[0]}' is required")
        return dict(value)

    def text(value: Any, at: str) -> str:
        if not isinstance(value, str) or not value:
            fail(at, "must be a non-empty string")
        return str(value)

    def secret(value: Any, at: str) -> str:
        raw = text(value, at)

        def expand(match: re.Match[str]) -> str:
            found = os.environ.get(match.group(1))
            if found:
                return found
            if match.group(2) is not None:
                return match.group(2)
            return str(fail(at, f"environment variable {match.group(1)} is not set"))

        result = _ENV_REF.sub(expand, raw)
        return result if result else str(fail(at, "is empty"))

    def scope(value: Any, at: str) -> tuple[str, ...]:
        if value not in ("read", "read write", "write read"):
            fail(at, "must be 'read' or 'read write'")
        return tuple(sorted(str(value).split()))

    root = mapping(data, "top level", {"partners", "api_credentials", "api_users"}, {"partners"})
    partners: list[PartnerRecord] = []
    entries = root["partners"]
    if not isinstance(entries, list):
        fail("partners", "must be a list")
    for i, entry in enumerate(entries):
        at = f"partners[{i}]"
        item = mapping(entry, at, {"id", "subdomain", "name", "users"}, {"id", "subdomain"})
        if not _is_int(item["id"]) or not 1 <= item["id"] <= MAX_INT:
            fail(f"{at}.id", "must be a positive integer")
        sub = text(item["subdomain"], f"{at}.subdomain")
        if not SUBDOMAIN_RE.fullmatch(sub):
            fail(f"{at}.subdomain", "must be lower-case letters, digits and '-'")
        users = item.get("users", [])
        if not isinstance(users, list):
            fail(f"{at}.users", "must be a list of user names")
        partners.append(
            PartnerRecord(
                item["id"],
                sub,
                text(item.get("name", sub), f"{at}.name"),
                tuple(text(u, f"{at}.users[{j}]") for j, u in enumerate(users)),
            )
        )
    seen_ids = [p.id for p in partners]
    seen_subs = [p.subdomain for p in partners]
    if len(set(seen_ids)) != len(seen_ids) or len(set(seen_subs)) != len(seen_subs):
        fail("partners", "ids and subdomains must be unique")
    credentials = []
    for i, entry in enumerate(root.get("api_credentials") or []):
        at = f"api_credentials[{i}]"
        item = mapping(entry, at, {"client_id", "secret", "scope"}, {"client_id", "secret"})
        credentials.append(
            ApiCredential(
                text(item["client_id"], f"{at}.client_id"),
                Secret(secret(item["secret"], f"{at}.secret")),
                scope(item.get("scope", "read"), f"{at}.scope"),
            )
        )
    users_ = []
    for i, entry in enumerate(root.get("api_users") or []):
        at = f"api_users[{i}]"
        item = mapping(entry, at, {"username", "password", "scope"}, {"username", "password"})
        users_.append(
            ApiUser(
                text(item["username"], f"{at}.username"),
                Secret(secret(item["password"], f"{at}.password")),
                scope(item.get("scope", "read"), f"{at}.scope"),
            )
        )
    return Seed(tuple(partners), tuple(credentials), tuple(users_))
