"""What the reference registry stores and hands out, as plain values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from oauth2_sync.secret import Secret

WireClient = dict[str, Any]
"""A client as the API sends it (camelCase keys; see ``schemas/registry-api.openapi.yaml``)."""

MAX_INT: Final = 2**31 - 1
"""Largest lifetime or id the registry accepts (and SQLite can always bind)."""


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
    """What a seed file declares (see ``oauth2_sync.refserver.seed``)."""

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
