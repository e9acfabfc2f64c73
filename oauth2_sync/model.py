"""The normal form of an OAuth2 client, shared by the files and every registry.

Lists are sets (kept sorted), lifetimes are seconds (``-1`` never, ``None`` the
platform default), and absent equals null. Two clients in normal form are equal
exactly when applying one over the other would change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal, get_args

from oauth2_sync import durations
from oauth2_sync.records import NamedTuple

GrantType = Literal["authorization_code", "implicit", "password", "refresh_token"]
"""A grant the registry offers; the client schema's enum lists the same."""
Scope = Literal["read", "write"]
"""A scope the registry offers; the client schema's enum lists the same."""
GRANT_TYPES: tuple[GrantType, ...] = get_args(GrantType)
SCOPES: tuple[Scope, ...] = get_args(Scope)
REDIRECT_GRANTS: frozenset[GrantType] = frozenset({"implicit", "authorization_code"})
DEFAULT_GRANTS: tuple[GrantType, ...] = ("password", "refresh_token")
DEFAULT_SCOPES: tuple[Scope, ...] = ("read",)
CLIENT_ID_PATTERN = r"[a-z0-9][a-z0-9._-]*"
"""What a client ID is made of (the whole ID must match; at least 3 characters)."""
SUBDOMAIN_PATTERN = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
"""What a partner subdomain is made of (the whole subdomain must match)."""
PLATFORM_ACCESS_TTL = 12 * 3600
"""What the registry uses when a client's access-token lifetime is null."""
PLATFORM_REFRESH_TTL = 30 * 86400
"""What the registry uses when a client's refresh-token lifetime is null."""
TtlDefaults = tuple[int | None, int | None]
"""A registry's default access- and refresh-token lifetimes (``None``: not known)."""
PLATFORM_DEFAULTS: TtlDefaults = (PLATFORM_ACCESS_TTL, PLATFORM_REFRESH_TTL)
"""The reference registry's defaults (12h, 30d)."""
CONFIDENTIAL: Final = "client_secret_basic"
"""``token_endpoint_auth_method`` of a confidential client: RFC 7591's default."""
PUBLIC: Final = "none"
"""``token_endpoint_auth_method`` of a public client (an SPA or a native app using
PKCE): no secret is issued or delivered."""


class Client(NamedTuple):
    """One OAuth2 client in normal form."""

    client_id: str
    name: str
    email: str
    partner: str
    restrict_to_partner_users: bool = True
    # str, not Scope/GrantType: a client read from a registry may hold values outside
    # ours (an RFC 7592 server's own grants), which drift must show as they are.
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    grant_types: tuple[str, ...] = DEFAULT_GRANTS
    redirect_uris: tuple[str, ...] = ()
    access_token_ttl: int | None = None
    refresh_token_ttl: int | None = None
    # str, not a Literal: a registry may report another method (private_key_jwt, say).
    token_endpoint_auth_method: str = CONFIDENTIAL

    @classmethod
    def from_document(cls, entry: Mapping[str, Any]) -> Client:
        """Build a client from one validated entry of a client file."""
        return cls(
            client_id=entry["client_id"],
            name=entry["name"],
            email=entry["email"],
            partner=entry["partner"],
            restrict_to_partner_users=entry.get("restrict_to_partner_users", True),
            scopes=_vocabulary(entry.get("scopes"), DEFAULT_SCOPES),
            grant_types=_vocabulary(entry.get("grant_types"), DEFAULT_GRANTS),
            redirect_uris=_set(entry.get("redirect_uris"), ()),
            access_token_ttl=durations.parse(entry.get("access_token_ttl")),
            refresh_token_ttl=durations.parse(entry.get("refresh_token_ttl")),
            token_endpoint_auth_method=entry.get("token_endpoint_auth_method", CONFIDENTIAL),
        )

    @property
    def public(self) -> bool:
        """Whether the client is public: no secret is issued or delivered."""
        return self.token_endpoint_auth_method == PUBLIC

    def to_document(self) -> dict[str, Any]:
        """The client as a client-file entry, in schema key order, durations shortest;
        ``token_endpoint_auth_method`` only when it is not the default."""
        document: dict[str, Any] = {
            "client_id": self.client_id,
            "name": self.name,
            "email": self.email,
            "partner": self.partner,
            "restrict_to_partner_users": self.restrict_to_partner_users,
            "scopes": list(self.scopes),
            "grant_types": list(self.grant_types),
            "redirect_uris": list(self.redirect_uris),
            "access_token_ttl": durations.shortest(self.access_token_ttl),
            "refresh_token_ttl": durations.shortest(self.refresh_token_ttl),
        }
        if self.token_endpoint_auth_method != CONFIDENTIAL:
            document["token_endpoint_auth_method"] = self.token_endpoint_auth_method
        return document

    @property
    def user_name(self) -> str:
        """The part of the client ID after ``<partner>-``."""
        prefix = f"{self.partner}-"
        return self.client_id[len(prefix) :] if self.client_id.startswith(prefix) else ""


FIELD_NAMES: tuple[str, ...] = Client._fields


def _set(value: Iterable[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    return tuple(sorted(set(value)))


def _vocabulary(value: Iterable[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    return default if value is None else shared_set(value)


_SHARED_SETS: dict[tuple[str, ...], tuple[str, ...]] = {}
_SHARED_MAX = 4096


def shared_set(values: Iterable[str]) -> tuple[str, ...]:
    """``normal_set`` for the few sets repeated from client to client (scopes, grants):
    each distinct list is sorted once, and its clients share one tuple. At 100,000
    clients that is time (no set built and sorted per client) and memory (#14)."""
    key = tuple(values)
    found = _SHARED_SETS.get(key)
    if found is None:
        found = tuple(sorted(set(key)))
        if len(_SHARED_SETS) < _SHARED_MAX:  # bounded: a hostile registry's variety
            _SHARED_SETS[key] = found
    return found


def normal_set(values: Iterable[str]) -> tuple[str, ...]:
    """Sort and de-duplicate a list as the normal form keeps it."""
    return tuple(sorted(set(values)))


def effective_ttl(
    field: str, seconds: int | None, defaults: TtlDefaults = PLATFORM_DEFAULTS
) -> int | None:
    """The lifetime the registry applies: the value itself, or its default for null
    (``None`` when that default is not known)."""
    if seconds is not None:
        return seconds
    return defaults[0] if field == "access_token_ttl" else defaults[1]
