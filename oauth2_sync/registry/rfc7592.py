"""The ``rfc7592+http(s)://`` adapter: a standard Dynamic Client Registration server.

Clients are created with RFC 7591 (``POST`` to the registration endpoint, with the
initial access token) and read, replaced and deleted with RFC 7592 (``GET``/``PUT``/
``DELETE`` on each client's registration client URI, with its registration access
token). Tested against oidc-provider 9.13.3 (``tests/peers/oidc-provider``).

What the standard lacks, and how this adapter makes up for it (docs/how-to/standard-servers.md):

- No list endpoint, and the server picks the client_id: a state file
  (``registry.state``) maps our client IDs to the server's registrations. Our client ID
  is also stored in the client's metadata (``oauth2_sync_client_id``), so a lost state
  can be rebuilt with ``adopt``. The server's client_id is the clients'
  ``registry_client_id``, which apply hands to the secret sink with a new secret.
- No partners: partners are the managed partners of the settings (``users`` unknown).
- No partner, restrict-to-partner-users or token lifetimes: extension metadata
  (``oauth2_sync_*``), which the server must be told to keep (oidc-provider drops
  unknown metadata silently: ``extraClientMetadata``). A write whose fields do not come
  back as sent raises ``RegistryError``.
- No ETag: a client's version is a hash of the metadata the server returns; replace and
  delete read first and refuse a stale version (best effort, not atomic).
- No secret rotation: ``rotate_secret`` raises ``RegistryError``.
- What the server can represent is read from its discovery document
  (``grant_types_supported``, ``response_types_supported``, ``scopes_supported``);
  ``unsupported`` lists what a desired client asks for beyond that.

Registration access tokens and client secrets are ``Secret``s: they are never logged and
never part of an error message.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from oauth2_sync.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    RegistryError,
    UsageError,
)
from oauth2_sync.model import Client
from oauth2_sync.registry.base import Partner, Registry, RemoteClient, Unreachable
from oauth2_sync.registry.capabilities import STANDARD, Capabilities
from oauth2_sync.registry.compat import initial_access_token, refused_token, update_body
from oauth2_sync.registry.dcr import (
    REGISTRATION_ACCESS_TOKEN_ENV,
    DcrConnection,
    RefusedError,
    check_transport,
    recovery,
    retry_policy,
)
from oauth2_sync.registry.metadata import (
    EXTENSION_FIELDS,
    MANAGED_FIELDS,
    NOT_IN_UPDATE,
    RESPONSE_TYPE_OF,
    X_CLIENT_ID,
    from_metadata,
    managed_fields,
    not_kept,
    response_types_for,
    to_metadata,
    unsupported,
    version_of,
)
from oauth2_sync.registry.state import (
    SCHEME_PREFIX,
    Registration,
    StateFile,
    forget,
    require_rfc7592,
)
from oauth2_sync.secret import Secret
from oauth2_sync.settings import Settings

__all__ = [
    "EXTENSION_FIELDS", "MANAGED_FIELDS", "REGISTRATION_ACCESS_TOKEN_ENV", "RESPONSE_TYPE_OF",
    "SCHEME_PREFIX", "Capabilities", "Rfc7592Registry", "adopt", "check_transport", "forget",
    "from_metadata", "not_kept", "response_types_for", "retry_policy", "to_metadata",
    "version_of",
]
"""The metadata mapping lives in ``registry.metadata``; re-exported for callers."""

logger = logging.getLogger(__name__)


INITIAL_ACCESS_TOKEN_HINT = "OAUTH2_SYNC_INITIAL_ACCESS_TOKEN"


class Rfc7592Registry(DcrConnection, Registry):
    """A Dynamic Client Registration server, with a state file for what it cannot list.

    ``url`` is the settings' ``rfc7592+http(s)://…`` URL; the registration endpoint is
    that URL without the ``rfc7592+`` prefix. The state file is locked from construction
    until ``close``.
    """

    reads_in_background = True

    def __init__(
        self,
        url: str,
        *,
        state: StateFile,
        managed_partners: Iterable[str],
        initial_access_token: Secret | None,
        initial_access_token_env: str = INITIAL_ACCESS_TOKEN_HINT,
        initial_access_token_command: tuple[str, ...] | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retries: int = 5,
        ca_bundle: str | None = None,
        request_timeout: float = 60.0,
        deadline: float = 3600.0,
        declared: Capabilities = STANDARD,
    ) -> None:
        if not url.startswith(SCHEME_PREFIX):
            raise UsageError(f"not an rfc7592 registry URL: {url}")
        self.url = url
        super().__init__(
            url[len(SCHEME_PREFIX):], state, timeout=(connect_timeout, read_timeout),
            request_timeout=request_timeout, retries=retries, deadline=deadline,
            declared=declared, ca_bundle=ca_bundle,
        )
        self._partners = tuple(sorted(set(managed_partners)))
        self._iat = initial_access_token
        self._iat_env = initial_access_token_env
        self._iat_command = initial_access_token_command
        self._names = declared.fields
        self._unreachable: list[Unreachable] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> Rfc7592Registry:
        """The adapter for ``settings.registry``: the endpoint, its state file and tokens."""
        reg = settings.registry
        if reg.state_file is None:
            raise UsageError("an rfc7592 registry needs registry.state_file")
        token = os.environ.get(reg.auth.initial_access_token_env)
        state = StateFile(reg.state_file, reg.url, settings.root)
        try:
            return cls(
                reg.url,
                state=state,
                managed_partners=settings.managed_partners,
                initial_access_token=Secret(token) if token else None,
                initial_access_token_env=reg.auth.initial_access_token_env,
                initial_access_token_command=reg.auth.initial_access_token_command,
                connect_timeout=reg.connect_timeout,
                read_timeout=reg.read_timeout,
                retries=reg.retries,
                ca_bundle=str(reg.ca_bundle) if reg.ca_bundle else None,
                request_timeout=reg.request_timeout,
                deadline=reg.deadline,
                declared=reg.capabilities,
            )
        except BaseException:
            state.close()
            raise

    # --- the Registry interface ----------------------------------------------------------

    def list_partners(self) -> list[Partner]:
        """The managed partners of the settings: a standard server has no partner list.

        Ids are derived from the subdomain, so they do not move when partners are added.
        """
        return [
            Partner(
                id=int.from_bytes(hashlib.sha256(p.encode()).digest()[:4], "big"),
                subdomain=p, name=p, users=None,
            )
            for p in self._partners
        ]

    def list_clients(self) -> list[RemoteClient]:
        """Every client the state knows and the server shows, each read (sorted by ID).

        A registration the server refuses (401/403, or 400 ``access_denied``: deleted,
        or its token revoked or rotated elsewhere) or reports gone (404) is left out and
        listed by ``unreachable``, so that one such client never stops the others and a
        plan never proposes to create a client that may still exist. When the server
        refuses every one of several registrations, it has most likely lost them all (a
        restart of a server that keeps clients in memory): one ``RegistryError`` says so.
        """
        clients: list[RemoteClient] = []
        refused: list[Unreachable] = []
        entries = self.state.entries()
        for registration in entries:
            what = f"reading client {registration.client_id}"
            try:
                metadata = self._read(registration)
            except RefusedError as exc:
                refused.append(Unreachable(registration.client_id, str(exc)))
                continue
            if metadata is None:
                refused.append(Unreachable(registration.client_id, (
                    f"{what}: the registry has no client {registration.server_client_id} "
                    "(404): it was deleted on the server. " + recovery(registration)
                )))
                continue
            clients.append(self._remote(registration.client_id, metadata))
        if len(entries) > 1 and len(refused) == len(entries):
            raise RegistryError(
                f"the registry refused all {len(entries)} registrations of the state file "
                f"{self.state.path}: it has most likely lost its clients (a restart of a "
                "server that keeps them in memory, or a new database). If so, remove the "
                "state file and apply creates them again; if they still exist, run "
                "`oauth2-sync adopt CLIENT_ID --registration-client-uri URI` for each with "
                f"its current token in {REGISTRATION_ACCESS_TOKEN_ENV}",
                status=401,
            )
        self._unreachable = refused
        return clients

    def unreachable(self) -> list[Unreachable]:
        """The registrations the last ``list_clients`` left out, with why and how to
        recover."""
        return list(self._unreachable)

    def get_client(self, client_id: str) -> RemoteClient | None:
        """One client: ``None`` when the state does not know it or the server says 404."""
        registration = self.state.get(client_id)
        if registration is None:
            return None
        metadata = self._read(registration)
        return None if metadata is None else self._remote(client_id, metadata)

    def create_client(self, client: Client) -> tuple[RemoteClient, Secret | None]:
        """Register a client (RFC 7591) and record its registration in the state.

        Never retried: a POST whose response was lost may have created the client, and
        without its response nothing can reach it (docs/how-to/standard-servers.md, "Limitations").
        """
        self._refuse_unsupported(client)
        existing = self.state.get(client.client_id)
        if existing is not None and self._read(existing) is not None:
            raise ConflictError(
                f"client {client.client_id} already exists (registry client_id "
                f"{existing.server_client_id})", status=409,
            )
        sent = to_metadata(client, self._names)
        headers = {}
        iat = initial_access_token(
            self._iat, self._iat_command, client_id=client.client_id,
            withheld=(self._iat_env, REGISTRATION_ACCESS_TOKEN_ENV),
        )
        if iat is not None:
            headers["Authorization"] = f"Bearer {iat.reveal()}"
        response = self._request("POST", self.endpoint, body=sent, headers=headers,
                                 what=f"creating client {client.client_id}")
        if refused_token(response):
            hint = "" if iat is not None else f" ({self._iat_env} is not set)"
            raise RegistryError(
                f"creating client {client.client_id}: the registry refused the initial "
                f"access token{hint}", status=401,
            )
        if response.status_code not in (200, 201):
            raise self._error(response, f"creating client {client.client_id}")
        body = self._json(response, f"creating client {client.client_id}")
        registration = self._registration_from(client.client_id, body)
        # Recorded before anything else can fail, so a created client is never orphaned.
        self.state.put(registration)
        logger.info("created %s as registry client_id %s", client.client_id,
                    registration.server_client_id)
        problems = not_kept(sent, body, self._names)
        if problems:
            self._undo_create(registration)
            raise RegistryError(
                f"creating client {client.client_id}: the registry did not keep "
                f"{', '.join(problems)}; the client was deleted again. A server drops "
                "metadata it does not know: declare the oauth2_sync_* fields on it "
                "(oidc-provider: extraClientMetadata.properties)",
            )
        if client.public:
            # Some servers issue one anyway (Canaille): it is neither delivered nor kept.
            return self._remote(client.client_id, body), None
        secret = body.get("client_secret")
        if not isinstance(secret, str) or not secret:
            raise RegistryError(
                f"creating client {client.client_id}: the registry issued no client secret"
            )
        return self._remote(client.client_id, body), Secret(secret)

    def replace_client(self, client: Client, version: str | None) -> RemoteClient:
        """Replace the managed fields of a client (RFC 7592 PUT, a full replacement).

        The server's other metadata is sent back unchanged, so that fields this tool does
        not manage survive. With ``version``, the client is read first and a different
        version raises ``PreconditionFailedError``: best effort, since RFC 7592 has no
        conditional request (a change between the read and the PUT is not detected).
        A rotated registration access token in the response is recorded at once.
        """
        self._refuse_unsupported(client)
        registration = self._known(client.client_id)
        current = self._read_existing(registration)
        if version is not None and version_of(current) != version:
            raise PreconditionFailedError(
                f"client {client.client_id} changed in the registry since it was read "
                "(version mismatch); plan again", status=412,
            )
        sent = to_metadata(client, self._names)
        update = update_body(current, sent, server_client_id=registration.server_client_id,
                             managed=managed_fields(self._names), server_owned=NOT_IN_UPDATE)
        response = self._management("PUT", registration, body=update,
                                    what=f"updating client {client.client_id}")
        returned = self._json(response, f"updating client {client.client_id}")
        self._record_rotation(registration, returned)
        problems = not_kept(sent, returned, self._names)
        if problems:
            raise RegistryError(
                f"updating client {client.client_id}: the registry did not keep "
                f"{', '.join(problems)}. A server drops metadata it does not know: declare "
                "the oauth2_sync_* fields on it (oidc-provider: extraClientMetadata.properties)",
            )
        logger.info("updated %s", client.client_id)
        return self._remote(client.client_id, returned)

    def delete_client(self, client_id: str, version: str | None) -> None:
        """Delete a client (RFC 7592 DELETE) and forget its registration.

        With ``version``, the client is read first and a different version raises
        ``PreconditionFailedError`` (best effort, as for ``replace_client``).
        """
        registration = self._known(client_id)
        try:
            if version is not None:
                current = self._read_existing(registration)
                if version_of(current) != version:
                    raise PreconditionFailedError(
                        f"client {client_id} changed in the registry since it was read "
                        "(version mismatch); plan again", status=412,
                    )
            self._management("DELETE", registration, what=f"deleting client {client_id}")
        except NotFoundError:
            # Gone already (a server that answers 404 rather than RFC 7592's 401).
            self.state.remove(client_id)
            raise
        self.state.remove(client_id)
        logger.info("deleted %s", client_id)

    def rotate_secret(self, client_id: str) -> Secret:
        """Not possible: RFC 7592 has no secret rotation, and oidc-provider keeps the
        secret on update. Raises ``RegistryError`` saying so."""
        raise RegistryError(
            f"cannot rotate the secret of {client_id}: a standard (RFC 7592) registry has no "
            "secret rotation; rotate it on the server, or delete the client and let apply "
            "create it again (it gets a new registry client_id)",
            status=405,  # a definite refusal: nothing was rotated (the journal forgets it)
        )

    def unsupported(self, client: Client) -> list[str]:
        """What ``client`` asks for that the server's discovery document does not offer
        (``metadata.unsupported``)."""
        return [*unsupported(client, self.capabilities())]

    def adopt(self, client_id: str, registration_client_uri: str, token: Secret) -> RemoteClient:
        """Record an existing registration in the state file, after reading it with ``token``.

        For a lost state file, a registration made by hand, or a token rotated elsewhere.
        When the registration has ``oauth2_sync_client_id`` it must equal ``client_id``
        (``UsageError`` otherwise); an existing entry for ``client_id`` is replaced.
        ``RegistryError`` when the server refuses the token.
        """
        what = f"adopting {client_id}"
        metadata = self._read_with(registration_client_uri, token, what)
        stored = self._our_id(metadata)
        if isinstance(stored, str) and stored != client_id:
            raise UsageError(
                f"the registration at {registration_client_uri} belongs to {stored!r} "
                f"({X_CLIENT_ID}), not {client_id!r}"
            )
        server_id = metadata.get("client_id")
        if not isinstance(server_id, str) or not server_id:
            raise RegistryError(f"{what}: the registry's answer has no client_id")
        if stored is None:
            logger.warning(
                "%s: the registration has no %s (not created by oauth2-sync); the next "
                "apply that updates it adds it", client_id, X_CLIENT_ID,
            )
        self.state.put(Registration(client_id, server_id, registration_client_uri, token))
        logger.info("adopted %s (registry client_id %s)", client_id, server_id)
        return self._remote(client_id, metadata)

    def close(self) -> None:
        """Close the HTTP session and release the state file's lock."""
        self._session.close()
        self.state.close()

    # --- registrations -------------------------------------------------------------------

    def _remote(self, client_id: str, metadata: Mapping[str, Any]) -> RemoteClient:
        stored = self._our_id(metadata)
        if isinstance(stored, str) and stored != client_id:
            logger.warning(
                "%s: the registry's %s says %r; the state file wins", client_id, X_CLIENT_ID,
                stored,
            )
        server_id = metadata.get("client_id")
        return RemoteClient(
            from_metadata(client_id, metadata, self._partners, self._names),
            version_of(metadata),
            registry_client_id=server_id if isinstance(server_id, str) and server_id else None,
        )

    def _our_id(self, metadata: Mapping[str, Any]) -> Any:
        """Our client ID as the registration keeps it (``None`` if it cannot)."""
        name = self._names.get("client_id")
        return None if name is None else metadata.get(name)

    def _refuse_unsupported(self, client: Client) -> None:
        problems = self.unsupported(client)
        if problems:
            raise RegistryError("; ".join(problems))


# --- adopt and forget: rebuilding the state ------------------------------------------------


def adopt(
    settings: Settings, client_id: str, registration_client_uri: str, token: Secret
) -> RemoteClient:
    """Open the settings' rfc7592 registry and ``Rfc7592Registry.adopt`` one registration."""
    require_rfc7592(settings, "adopt")
    with Rfc7592Registry.from_settings(settings) as registry:
        assert isinstance(registry, Rfc7592Registry)
        return registry.adopt(client_id, registration_client_uri, token)
