"""The interface every registry adapter implements.

An adapter speaks the registry's protocol and returns clients in normal form
(``model.Client``), each with the opaque version token (the HTTP ``ETag``) that makes
later writes conditional. Adapters raise only ``errors.RegistryError`` and its
subclasses.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TypeVar

from oauth2_sync.background import in_background
from oauth2_sync.fast.gcpause import collector_paused
from oauth2_sync.model import Client, TtlDefaults
from oauth2_sync.records import NamedTuple
from oauth2_sync.registry.capabilities import REFERENCE, Capabilities
from oauth2_sync.secret import Secret

__all__ = [
    "Partner", "Registry", "RegistryState", "RemoteClient", "Secret", "Unreachable",
    "read_registry", "read_registry_beside", "read_registry_later", "registry_defaults",
]
"""``Secret`` is re-exported: it moved to ``oauth2_sync.secret``."""

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Partner(NamedTuple):
    """A partner of the registry: numeric id, subdomain and the user names it has.

    ``users`` is ``None`` when the registry cannot tell (standard OAuth servers have no
    notion of partner users); the user-name check is then skipped.
    """

    id: int
    subdomain: str
    name: str
    users: tuple[str, ...] | None = ()


class RemoteClient(NamedTuple):
    """A client as the registry holds it, with its version and audit fields."""

    client: Client
    version: str
    created_at: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None
    registry_client_id: str | None = None
    """The client_id the registry issued, where it chose its own (standard OAuth servers,
    whose server picks it); ``None`` where the registry uses ours. Applications
    authenticate with this one, so it travels with a new secret to the sink."""


class Unreachable(NamedTuple):
    """A client the registry knows of but refused to show: deleted on the server, or
    its credential revoked or rotated elsewhere (a standard server's 401/403/404).

    ``reason`` is one line naming the client and how to recover (``adopt``/``forget``);
    plan and apply leave the client out with it, drift reports it as ``unreachable``.
    """

    client_id: str
    reason: str


class Registry(ABC):
    """A client registry. Every method is one logical operation; adapters retry inside.

    ``version`` arguments are the tokens from ``RemoteClient.version``; ``None`` writes
    unconditionally.
    """

    url: str
    """Where the adapter points, without credentials; shown in plans."""

    reads_in_background: bool = False
    """Whether ``read_registry_later`` reads it in a thread while the files load: the
    adapters over HTTP, whose reads wait on the server. Not the local store: its reads
    are work in this process, which a thread would only interleave with the loading."""

    @abstractmethod
    def list_partners(self) -> list[Partner]:
        """All partners with their users."""

    @abstractmethod
    def list_clients(self) -> list[RemoteClient]:
        """All clients, every page read."""

    @abstractmethod
    def get_client(self, client_id: str) -> RemoteClient | None:
        """One client, or ``None`` when it does not exist."""

    @abstractmethod
    def create_client(self, client: Client) -> tuple[RemoteClient, Secret | None]:
        """Create a client; returns it and its new secret (``None`` for a public client,
        even where the registry issued one: it is never delivered). ``ConflictError``
        if it exists."""

    @abstractmethod
    def replace_client(self, client: Client, version: str | None) -> RemoteClient:
        """Replace a client whole. ``PreconditionFailedError`` when ``version`` is stale."""

    @abstractmethod
    def delete_client(self, client_id: str, version: str | None) -> None:
        """Delete a client. ``PreconditionFailedError`` when ``version`` is stale."""

    @abstractmethod
    def rotate_secret(self, client_id: str) -> Secret:
        """Issue a new secret for a client; the old one stops working."""

    def unreachable(self) -> list[Unreachable]:
        """The clients the last ``list_clients`` could not read (empty for registries
        that show every client they hold)."""
        return []

    def capabilities(self) -> Capabilities:
        """What the registry can hold: its vocabularies, public clients, the fields it
        keeps and its default lifetimes. The reference registry's unless overridden."""
        return REFERENCE

    def unsupported(self, client: Client) -> list[str]:
        """Why the registry cannot represent ``client`` (empty when it can).

        Plan calls this for every desired client, so that a client the registry cannot
        hold (say, a grant type a standard server does not offer) is a plan-time error,
        not a failure half-way through an apply. Each message names the client and the
        unsupported value; a ``capabilities.Problem`` also names the file's key it is
        about. Registries that can hold every valid client keep this default.
        """
        return []

    def check_can_write(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Raise ``RegistryError`` before the first write when the credential cannot write.

        Adapters that can tell cheaply (the HTTP adapter reads its token's scope) check;
        the others find out at the first write.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release connections and files."""

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RegistryState(NamedTuple):
    """What a plan or a drift check is made against: the registry's partners and clients."""

    url: str
    partners: tuple[Partner, ...]
    clients: tuple[RemoteClient, ...]
    unreachable: tuple[Unreachable, ...] = ()
    """Clients the registry refused to show (``Registry.unreachable``), by client ID."""


def registry_defaults(registry: Registry) -> TtlDefaults:
    """The registry's default lifetimes (``Capabilities``): what a null lifetime means
    there, shown in plans and drift reports."""
    caps = registry.capabilities()
    return (caps.access_token_ttl, caps.refresh_token_ttl)


def read_registry(registry: Registry) -> RegistryState:
    """Read every partner and client (every page) once."""
    with collector_paused():
        partners = tuple(registry.list_partners())
        clients = tuple(registry.list_clients())
    unreachable = tuple(sorted(registry.unreachable(), key=lambda u: u.client_id))
    logger.info(
        "read %d partners and %d clients from %s", len(partners), len(clients), registry.url
    )
    return RegistryState(registry.url, partners, clients, unreachable)


def read_registry_later(registry: Registry) -> Callable[[], RegistryState]:
    """Start ``read_registry(registry)`` and return the function that waits for it and
    returns its state or raises its error.

    For an adapter that ``reads_in_background`` the read runs in a thread, so the
    server prepares its answers while the caller loads and checks the files (a plan
    of 1,000 clients waits about 25 ms on the reference server, a tenth of it). A
    caller that fails before waiting abandons the read: the thread is a daemon, and
    what it meets once the registry is closed is dropped unread. Otherwise the read
    happens when the function is called, in the caller's thread.
    """
    if not registry.reads_in_background:
        return lambda: read_registry(registry)
    return in_background(lambda: read_registry(registry), "oauth2-sync-registry")


def read_registry_beside(registry: Registry, work: Callable[[], T]) -> tuple[T, RegistryState]:
    """``work()`` (loading the files) while the registry is read (``read_registry_later``);
    ``work``'s error is raised at once, the registry's once ``work`` is done.

    One collector pause spans both (loading makes no cyclic garbage): the pauses inside
    would otherwise switch the collector on under each other's feet.
    """
    with collector_paused():
        state = read_registry_later(registry)
        done = work()
        return done, state()
