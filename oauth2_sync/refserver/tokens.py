"""API credentials, password-grant users and tokens: who may call the registry."""

from __future__ import annotations

import secrets

from oauth2_sync.refserver.db import StoreBase, token_hash, verify_secret
from oauth2_sync.refserver.records import IssuedToken, TokenInfo


class TokenStore(StoreBase):
    """Authenticates API credentials and users; issues, checks and redeems tokens.

    Expiry is read from ``self.clock``, so a test can move time on instead of sleeping.
    """

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
        now = self.clock()
        conn = self._conn()
        with self._write(conn):
            conn.execute("DELETE FROM tokens WHERE expires_at < ?", (now,))
            rows = [(token_hash(access), "access", now + ttl)]
            if refresh is not None and refresh_ttl is not None:
                rows.append((token_hash(refresh), "refresh", now + refresh_ttl))
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
            (token_hash(token),),
        ).fetchone()
        if row is None or row[3] < self.clock():
            return None
        return TokenInfo(row[0], tuple(str(row[1]).split()), row[2])

    def redeem_refresh_token(self, token: str, credential: str) -> TokenInfo | None:
        """Consume a refresh token issued to ``credential``; ``None`` if invalid.

        Refresh tokens are single-use: the caller issues a new pair.
        """
        digest = token_hash(token)
        conn = self._conn()
        with self._write(conn):
            row = conn.execute(
                "SELECT credential, scope, username, expires_at FROM tokens "
                "WHERE token_hash=? AND kind='refresh'",
                (digest,),
            ).fetchone()
            if row is None or row[0] != credential or row[3] < self.clock():
                return None
            conn.execute("DELETE FROM tokens WHERE token_hash=?", (digest,))
        return TokenInfo(row[0], tuple(str(row[1]).split()), row[2])

