"""The registry API's JSON shapes, to and from the normal form of ``model``.

On the wire a client names its partner by numeric id (``partnerId``), keeps its
redirect URIs in ONE comma-separated string (``redirectUri``, as the admin form stores
it), and carries an integer ``version`` that the HTTP layer quotes as the ``ETag``. In
the normal form the partner is its subdomain, lists are sorted sets and the version is
an opaque string.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Required

from oauth2_sync.errors import RegistryError
from oauth2_sync.model import Client, normal_set, shared_set
from oauth2_sync.records import TypedDict
from oauth2_sync.registry.base import Partner, RemoteClient

# The wire's documents, as the OpenAPI contract (schemas/registry-api.openapi.yaml) and
# RFC 6749 describe them. What a registry sends is untrusted: readers check each field
# rather than trust these shapes; writers build them.


class ClientBody(TypedDict):
    """A client as a create or replace sends it (``ClientInput`` of the OpenAPI contract)."""

    clientId: str
    name: str
    email: str
    partnerId: int
    restrictToPartnerUsers: bool
    scope: list[str]
    grantTypes: list[str]
    redirectUri: str
    accessTokenValiditySeconds: int | None
    refreshTokenValiditySeconds: int | None


class WireClient(ClientBody, total=False):
    """A client as the registry sends it: the body plus its version and audit fields
    (and, once, the secret of a create or rotation)."""

    version: Required[int]
    createdAt: str
    updatedAt: str
    updatedBy: str
    clientSecret: str


class WirePartner(TypedDict, total=False):
    """A partner of ``GET /v1/partners``."""

    id: Required[int]
    subdomain: Required[str]
    name: str
    users: list[str]


class Page(TypedDict):
    """A page of ``GET /v1/oauth2-clients``."""

    total: int
    list: list[WireClient]


class ErrorBody(TypedDict, total=False):
    """An error answer: the registry's (``error``, ``message``, ``fields``) or the token
    endpoint's (RFC 6749 5.2: ``error``, ``error_description``)."""

    error: Required[str]
    message: str
    error_description: str
    fields: dict[str, str]


def partner_from_wire(obj: Any) -> Partner:
    """A partner from ``GET /v1/partners``."""
    try:
        return Partner(
            id=int(obj["id"]),
            subdomain=str(obj["subdomain"]),
            name=str(obj.get("name", obj["subdomain"])),
            users=tuple(sorted(str(u) for u in obj.get("users", []))),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RegistryError(f"the registry sent a malformed partner: {_short(obj)}") from exc


def split_redirects(value: str | None) -> tuple[str, ...]:
    """``"a, b,a"`` -> ``("a", "b")``: split on commas, trim, drop empties, sort, dedupe."""
    if not value:
        return ()
    if "," not in value:  # the usual single URI, without building a set
        single = value.strip()
        return (single,) if single else ()
    return normal_set(part.strip() for part in value.split(",") if part.strip())


def join_redirects(uris: tuple[str, ...]) -> str:
    """The wire's comma-separated form of a set of redirect URIs."""
    return ",".join(sorted(uris))


def client_to_wire(client: Client, partner_id: int) -> ClientBody:
    """The body of a create or replace for ``client``."""
    return {
        "clientId": client.client_id,
        "name": client.name,
        "email": client.email,
        "partnerId": partner_id,
        "restrictToPartnerUsers": client.restrict_to_partner_users,
        "scope": sorted(client.scopes),
        "grantTypes": sorted(client.grant_types),
        "redirectUri": join_redirects(client.redirect_uris),
        "accessTokenValiditySeconds": client.access_token_ttl,
        "refreshTokenValiditySeconds": client.refresh_token_ttl,
    }


def client_from_wire(obj: Any, subdomains: Mapping[int, str]) -> RemoteClient:
    """A ``RemoteClient`` from the wire; ``subdomains`` maps partner ids to subdomains.

    Raises ``RegistryError`` when the object is malformed or names an unknown partner.
    """
    try:
        partner_id = obj["partnerId"]
        subdomain = subdomains.get(partner_id)
        if subdomain is None:
            raise RegistryError(
                f"client {obj['clientId']} names partner {partner_id}, "
                "which the registry does not list"
            )
        client = Client(
            client_id=str(obj["clientId"]),
            name=str(obj["name"]),
            email=str(obj["email"]),
            partner=subdomain,
            restrict_to_partner_users=bool(obj.get("restrictToPartnerUsers", True)),
            scopes=shared_set(obj.get("scope") or ()),
            grant_types=shared_set(obj.get("grantTypes") or ()),
            redirect_uris=split_redirects(obj.get("redirectUri")),
            access_token_ttl=_optional_int(obj.get("accessTokenValiditySeconds")),
            refresh_token_ttl=_optional_int(obj.get("refreshTokenValiditySeconds")),
        )
        return RemoteClient(
            client=client,
            version=str(obj["version"]),
            created_at=obj.get("createdAt"),
            updated_at=obj.get("updatedAt"),
            updated_by=obj.get("updatedBy"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RegistryError(f"the registry sent a malformed client: {_short(obj)}") from exc




def _optional_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(value)
    return value


def _short(obj: Any) -> str:
    if isinstance(obj, Mapping) and "clientSecret" in obj:
        obj = {**obj, "clientSecret": "***"}
    text = repr(obj)
    return text if len(text) <= 200 else text[:197] + "..."


class TokenResponse(TypedDict, total=False):
    """The token endpoint's answer (RFC 6749 5.1), the fields we read."""

    access_token: Required[str]
    refresh_token: str
    scope: str


def token_from_wire(body: object) -> TokenResponse | None:
    """The token response in ``body``, its fields of the wrong type left out; ``None``
    when it holds no access token."""
    if not isinstance(body, dict):
        return None
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        return None
    token: TokenResponse = {"access_token": access}
    refresh = body.get("refresh_token")
    if isinstance(refresh, str) and refresh:
        token["refresh_token"] = refresh
    scope = body.get("scope")
    if isinstance(scope, str):
        token["scope"] = scope
    return token
