"""Partners and seeding: what a seed file puts into the store."""

from __future__ import annotations

import logging

from oauth2_sync.refserver.db import StoreBase, hash_secret
from oauth2_sync.refserver.records import PartnerRecord, Seed

logger = logging.getLogger(__name__)


class PartnerStore(StoreBase):
    """Partners with their users, and the seed's credentials and users."""

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

