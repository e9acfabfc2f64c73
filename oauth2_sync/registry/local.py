"""``local:PATH``: the reference server's SQLite store, used in-process.

No HTTP and no credentials: the examples run with nothing else started. The store file
is created when missing, and seeded from ``registry.seed`` when the settings name one
and the store is new. Writes are recorded as made by ``local``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from oauth2_sync.errors import RegistryError
from oauth2_sync.model import Client
from oauth2_sync.refserver.records import Seed
from oauth2_sync.refserver.seed import load_seed
from oauth2_sync.refserver.store import RegistryStore
from oauth2_sync.registry import wire
from oauth2_sync.registry.base import Partner, Registry, RemoteClient, Secret

if TYPE_CHECKING:
    from oauth2_sync.settings import Settings

LOCAL_ACTOR = "local"
"""``updatedBy`` of every write made through this adapter."""


class LocalRegistry(Registry):
    """The embedded registry: a ``RegistryStore`` behind the ``Registry`` interface.

    Safe to use from several threads (the store opens a connection per thread).
    """

    def __init__(self, path: Path, seed: Path | None = None, actor: str = LOCAL_ACTOR) -> None:
        # Read the seed before touching the store: a bad seed must not leave behind
        # a new, empty store that would never be seeded again.
        loaded: Seed | None = load_seed(seed) if seed is not None and not path.exists() else None
        self.store = RegistryStore(path)
        self.url = f"local:{path}"
        self.actor = actor
        self._lock = threading.Lock()
        self._partners: dict[str, int] | None = None
        if self.store.is_new and loaded is not None:
            self.store.apply_seed(loaded)

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalRegistry:
        """The store that ``registry.url`` (``local:PATH``) names, seeded from ``registry.seed``."""
        return cls(Path(settings.registry.url[len("local:"):]), settings.registry.seed)

    def list_partners(self) -> list[Partner]:
        """All partners with their users."""
        partners = [
            Partner(p.id, p.subdomain, p.name, tuple(sorted(p.users)))
            for p in self.store.list_partners()
        ]
        with self._lock:
            self._partners = {p.subdomain: p.id for p in partners}
        return partners

    def list_clients(self) -> list[RemoteClient]:
        """All clients, by client ID."""
        objs = self.store.list_clients()
        subdomains = self._subdomains({obj["partnerId"] for obj in objs})
        return [wire.client_from_wire(obj, subdomains) for obj in objs]

    def get_client(self, client_id: str) -> RemoteClient | None:
        """One client, or ``None``."""
        obj = self.store.get_client(client_id)
        if obj is None:
            return None
        return wire.client_from_wire(obj, self._subdomains({obj["partnerId"]}))

    def create_client(self, client: Client) -> tuple[RemoteClient, Secret]:
        """Create a client; ``ConflictError`` if the client ID exists."""
        obj, secret = self.store.create_client(
            wire.client_to_wire(client, self._partner_id(client.partner)), self.actor
        )
        return wire.client_from_wire(obj, self._subdomains(())), Secret(secret)

    def replace_client(self, client: Client, version: str | None) -> RemoteClient:
        """Replace a client; ``PreconditionFailedError`` when ``version`` is stale."""
        obj = self.store.replace_client(
            client.client_id,
            wire.client_to_wire(client, self._partner_id(client.partner)),
            None if version is None else {version},
            self.actor,
        )
        return wire.client_from_wire(obj, self._subdomains(()))

    def delete_client(self, client_id: str, version: str | None) -> None:
        """Delete a client; ``PreconditionFailedError`` when ``version`` is stale."""
        self.store.delete_client(client_id, None if version is None else {version})

    def rotate_secret(self, client_id: str) -> Secret:
        """A new secret for the client; the old one stops working."""
        _, secret = self.store.rotate_secret(client_id, self.actor)
        return Secret(secret)

    def close(self) -> None:
        """Close the store's connections."""
        self.store.close()

    def _known_partners(self, refresh: bool = False) -> dict[str, int]:
        with self._lock:
            known = self._partners
        if known is None or refresh:
            self.list_partners()
            with self._lock:
                known = self._partners or {}
        return known

    def _subdomains(self, needed: Iterable[int]) -> dict[int, str]:
        subdomains = {pid: sub for sub, pid in self._known_partners().items()}
        if not set(needed) <= subdomains.keys():
            subdomains = {pid: sub for sub, pid in self._known_partners(refresh=True).items()}
        return subdomains

    def _partner_id(self, subdomain: str) -> int:
        known = self._known_partners()
        if subdomain not in known:
            known = self._known_partners(refresh=True)
        if subdomain not in known:
            message = f"partner {subdomain} does not exist in the registry"
            raise RegistryError(message, status=400, fields={"partnerId": message})
        return known[subdomain]
