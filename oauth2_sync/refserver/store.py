"""The registry's store: partners, clients, API credentials and tokens in SQLite.

One store serves two masters: the reference server (``registry serve``) and the
embedded ``local:PATH`` adapter. Both see clients exactly as the wire does (camelCase
mappings, ``redirectUri`` as one comma-separated string), so the registry's rules are
enforced once, here, whichever way a write arrives.

Every write to a client takes the next value of one store-wide counter as the client's
``version``. A store-wide counter (rather than one per client) means a version is never
reused, even when a client is deleted and created again, so a stale ``If-Match`` can
never match by accident.

The concerns live beside this module: ``db`` (connections, schema, clock),
``tokens`` (credentials and tokens), ``partners`` (partners and seeding) and
``bodies`` (the request-body rules).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from oauth2_sync.errors import ConflictError, NotFoundError, PreconditionFailedError
from oauth2_sync.refserver.bodies import check_body, raise_invalid, validate_client_body
from oauth2_sync.refserver.db import Clock, hash_secret, new_secret, verify_secret
from oauth2_sync.refserver.partners import PartnerStore
from oauth2_sync.refserver.records import (
    MAX_INT,
    ApiCredential,
    ApiUser,
    IssuedToken,
    PartnerRecord,
    Seed,
    TokenInfo,
    WireClient,
)
from oauth2_sync.refserver.tokens import TokenStore

__all__ = [
    "MAX_INT",
    "ApiCredential",
    "ApiUser",
    "IssuedToken",
    "PartnerRecord",
    "RegistryStore",
    "Seed",
    "TokenInfo",
    "WireClient",
]

_BOUNDARIES_MAX: Final = 4096

_CLIENT_COLUMNS: Final = (
    "client_id, partner_id, name, email, restrict_to_partner_users, scope, grant_types, "
    "redirect_uri, access_token_validity, refresh_token_validity, version, created_at, "
    "updated_at, updated_by"
)


class RegistryStore(TokenStore, PartnerStore):
    """The SQLite store. Thread-safe: one connection per thread, opened on first use."""

    def __init__(self, path: Path | str, clock: Clock = time.time) -> None:
        self._boundaries: dict[tuple[int, int, int], str] = {}
        """(generation, page size, page) -> the last client ID before that page."""
        super().__init__(path, clock)

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
        values, problems = check_body(body, None)
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
            now = self._timestamp()
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
        values, problems = check_body(body, client_id)
        conn = self._conn()
        with self._write(conn):
            if problems:
                # A bad body is a 400 whatever the client's state (never a 404 or 412).
                self._check_partner(conn, values, problems)
            row = self._current(conn, client_id, expected)
            self._check_partner(conn, values, problems)
            version = self._next_version(conn)
            now = self._timestamp()
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
                (hash_secret(secret), version, self._timestamp(), actor, client_id),
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
            now = self._timestamp()
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
            raise_invalid(problems)

    def _next_version(self, conn: sqlite3.Connection, count: int = 1) -> int:
        row = conn.execute(
            "UPDATE meta SET value = value + ? WHERE key='last_version' RETURNING value",
            (count,),
        ).fetchone()
        return int(row[0]) - count + 1

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

