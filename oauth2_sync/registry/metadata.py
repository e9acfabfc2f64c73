"""RFC 7591 client metadata: a client in normal form to and from what a standard
registration server holds, the version of a registration, and what a server can
represent (its discovery document).

The fields RFC 7591 has no name for travel as extension metadata (``oauth2_sync_*``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from oauth2_sync.model import Client

# Extension metadata: the fields RFC 7591 has no name for.
X_CLIENT_ID = "oauth2_sync_client_id"
X_PARTNER = "oauth2_sync_partner"
X_RESTRICT = "oauth2_sync_restrict_to_partner_users"
X_ACCESS_TTL = "oauth2_sync_access_token_ttl"
X_REFRESH_TTL = "oauth2_sync_refresh_token_ttl"
EXTENSION_FIELDS: tuple[str, ...] = (X_CLIENT_ID, X_PARTNER, X_RESTRICT, X_ACCESS_TTL, X_REFRESH_TTL)

MANAGED_FIELDS: tuple[str, ...] = (
    "client_name", "contacts", "scope", "grant_types", "response_types", "redirect_uris",
    "application_type", *EXTENSION_FIELDS,
)
"""Every metadata field the rfc7592 adapter sets; the rest of a registration is left as it is."""

RESPONSE_TYPE_OF: Mapping[str, str] = {"authorization_code": "code", "implicit": "token"}
"""The response type each redirect-based grant needs (RFC 7591 §2.1)."""

# RFC 7592 §2.2: a PUT must not carry these; the server owns them.
NOT_IN_UPDATE = frozenset({
    "registration_access_token", "registration_client_uri",
    "client_secret_expires_at", "client_id_issued_at",
})
# Never part of a version hash: credentials, and the URI that only repeats the id.
_NOT_HASHED = frozenset({"client_secret", "registration_access_token", "registration_client_uri"})
# RFC 8414 §2: the default of grant_types_supported when a server omits it.
_DEFAULT_GRANTS = ("authorization_code", "implicit")
_WEB_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the server says it supports (its discovery document)."""

    grant_types: frozenset[str]
    response_types: frozenset[str]
    scopes: frozenset[str] | None
    """``None`` when the server does not publish ``scopes_supported``."""
    source: str
    """The discovery document's URL."""


def response_types_for(grant_types: Iterable[str]) -> tuple[str, ...]:
    """The response types a client with these grant types registers (sorted)."""
    return tuple(sorted({RESPONSE_TYPE_OF[g] for g in grant_types if g in RESPONSE_TYPE_OF}))


def to_metadata(client: Client) -> dict[str, Any]:
    """The RFC 7591 client metadata for a client, extension fields included.

    Null lifetimes are left out (absent = the platform default). ``application_type`` is
    ``native`` when a redirect URI uses a private-use scheme (RFC 8252 §7.1), which
    OpenID Connect servers refuse for ``web`` clients.
    """
    native = any(urlsplit(u).scheme not in _WEB_SCHEMES for u in client.redirect_uris)
    metadata: dict[str, Any] = {
        "client_name": client.name,
        "contacts": [client.email],
        "scope": " ".join(client.scopes),
        "grant_types": list(client.grant_types),
        "response_types": list(response_types_for(client.grant_types)),
        "redirect_uris": list(client.redirect_uris),
        "application_type": "native" if native else "web",
        X_CLIENT_ID: client.client_id,
        X_PARTNER: client.partner,
        X_RESTRICT: client.restrict_to_partner_users,
    }
    if client.access_token_ttl is not None:
        metadata[X_ACCESS_TTL] = client.access_token_ttl
    if client.refresh_token_ttl is not None:
        metadata[X_REFRESH_TTL] = client.refresh_token_ttl
    return metadata


def from_metadata(
    client_id: str, metadata: Mapping[str, Any], partners: Iterable[str] = ()
) -> Client:
    """The client in normal form from a server's metadata; only the fields we manage.

    Reading is lenient, so that a drifted client shows as a difference rather than an
    error: absent extension fields take the files' defaults (restricted, platform
    lifetimes), several contacts are joined with ", ", and a missing partner is taken
    from the client ID's prefix among ``partners`` (the managed ones), else "".
    """
    contacts = metadata.get("contacts") or []
    scope = metadata.get("scope")
    partner = metadata.get(X_PARTNER)
    if not isinstance(partner, str):
        prefixes = [p for p in partners if client_id.startswith(f"{p}-")]
        partner = max(prefixes, key=len) if prefixes else ""
    restrict = metadata.get(X_RESTRICT)
    return Client(
        client_id=client_id,
        name=str(metadata.get("client_name") or ""),
        email=", ".join(str(c) for c in contacts),
        partner=partner,
        restrict_to_partner_users=restrict if isinstance(restrict, bool) else True,
        scopes=tuple(sorted(set(scope.split()))) if isinstance(scope, str) else (),
        grant_types=tuple(sorted(set(metadata.get("grant_types") or []))),
        redirect_uris=tuple(sorted(set(metadata.get("redirect_uris") or []))),
        access_token_ttl=_int_or_none(metadata.get(X_ACCESS_TTL)),
        refresh_token_ttl=_int_or_none(metadata.get(X_REFRESH_TTL)),
    )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def version_of(metadata: Mapping[str, Any]) -> str:
    """The version of a registration: a hash of all its metadata but the credentials."""
    kept = {k: v for k, v in metadata.items() if k not in _NOT_HASHED}
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True, ensure_ascii=True).encode())
    return "sha256:" + digest.hexdigest()[:32]


def _comparable(field: str, value: Any) -> Any:
    if field == "scope" and isinstance(value, str):
        return sorted(set(value.split()))
    if isinstance(value, list):
        return sorted(set(map(str, value)))
    return value


def not_kept(sent: Mapping[str, Any], returned: Mapping[str, Any]) -> list[str]:
    """The managed fields that the server did not keep as sent (dropped or changed)."""
    problems: list[str] = []
    for field in MANAGED_FIELDS:
        if field == "application_type":
            continue  # not in RFC 7591: a plain OAuth server may ignore it, harmlessly
        if field in sent and field not in returned:
            problems.append(f"{field} (dropped)")
        elif field in sent and _comparable(field, sent[field]) != _comparable(
            field, returned[field]
        ):
            problems.append(f"{field} (sent {sent[field]!r}, kept {returned[field]!r})")
        elif field not in sent and returned.get(field) is not None and field in EXTENSION_FIELDS:
            problems.append(f"{field} (not sent, kept {returned[field]!r})")
    return problems


def unsupported(client: Client, caps: Capabilities) -> list[str]:
    """What ``client`` asks for that the server's discovery document does not offer.

    Grant types against ``grant_types_supported`` (RFC 8414's default when absent),
    the response types they need against ``response_types_supported``, and scopes
    against ``scopes_supported`` when published. One message per value, naming the
    client.
    """
    problems: list[str] = []
    for grant in client.grant_types:
        if grant not in caps.grant_types:
            problems.append(
                f"client {client.client_id}: the registry does not support grant type "
                f"'{grant}' (it supports {_listing(caps.grant_types)})"
            )
    for grant in client.grant_types:
        needed = RESPONSE_TYPE_OF.get(grant)
        if needed and grant in caps.grant_types and needed not in caps.response_types:
            problems.append(
                f"client {client.client_id}: grant type '{grant}' needs response type "
                f"'{needed}', which the registry does not support (it supports "
                f"{_listing(caps.response_types)})"
            )
    if caps.scopes is not None:
        for scope in client.scopes:
            if scope not in caps.scopes:
                problems.append(
                    f"client {client.client_id}: the registry does not support scope "
                    f"'{scope}' (it supports {_listing(caps.scopes)})"
                )
    return problems


def capabilities_from(doc: Mapping[str, Any], source: str) -> Capabilities:
    def strings(key: str) -> frozenset[str] | None:
        value = doc.get(key)
        if isinstance(value, list):
            return frozenset(v for v in value if isinstance(v, str))
        return None

    # Response types are compared whole: "code id_token" does not offer "token" on its own.
    return Capabilities(
        grant_types=strings("grant_types_supported") or frozenset(_DEFAULT_GRANTS),
        response_types=strings("response_types_supported") or frozenset(),
        scopes=strings("scopes_supported"),
        source=source,
    )


def _listing(values: Iterable[str]) -> str:
    return ", ".join(sorted(values)) or "nothing"
