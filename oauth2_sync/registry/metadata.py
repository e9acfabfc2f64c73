"""RFC 7591 client metadata: a client in normal form to and from what a standard
registration server holds, the version of a registration, and what a server can
represent (its discovery document).

The fields RFC 7591 has no name for travel as extension metadata (``oauth2_sync_*``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from oauth2_sync.model import CONFIDENTIAL, Client
from oauth2_sync.registry.capabilities import (
    DEFAULT_METADATA_NAMES,
    Capabilities,
    ExtensionField,
    Problem,
    client_problems,
    listing,
)

Names = Mapping[ExtensionField, str | None]
"""Our extension fields to the server's metadata names (``Capabilities.fields``)."""

# The default names (``oauth2_sync_*``), for callers and messages.
X_CLIENT_ID = DEFAULT_METADATA_NAMES["client_id"]
X_PARTNER = DEFAULT_METADATA_NAMES["partner"]
X_RESTRICT = DEFAULT_METADATA_NAMES["restrict_to_partner_users"]
X_ACCESS_TTL = DEFAULT_METADATA_NAMES["access_token_ttl"]
X_REFRESH_TTL = DEFAULT_METADATA_NAMES["refresh_token_ttl"]
EXTENSION_FIELDS: tuple[str, ...] = (X_CLIENT_ID, X_PARTNER, X_RESTRICT, X_ACCESS_TTL, X_REFRESH_TTL)
STANDARD_FIELDS: tuple[str, ...] = (
    "client_name", "contacts", "scope", "grant_types", "response_types", "redirect_uris",
    "application_type", "token_endpoint_auth_method",
)

MANAGED_FIELDS: tuple[str, ...] = (*STANDARD_FIELDS, *EXTENSION_FIELDS)
"""Every metadata field the rfc7592 adapter sets under the default names."""


def managed_fields(names: Names = DEFAULT_METADATA_NAMES) -> tuple[str, ...]:
    """Every metadata field the adapter sets with these extension names; the rest of a
    registration is left as it is."""
    return (*STANDARD_FIELDS, *(n for n in names.values() if n is not None))


RESPONSE_TYPE_OF: Mapping[str, str] = {"authorization_code": "code", "implicit": "token"}
"""The response type each redirect-based grant needs (RFC 7591 §2.1)."""

# RFC 7592 §2.2: a PUT must not carry these; the server owns them.
NOT_IN_UPDATE = frozenset({
    "registration_access_token", "registration_client_uri",
    "client_secret_expires_at", "client_id_issued_at",
})
# Never part of a version hash: credentials, and the URI that only repeats the id.
_NOT_HASHED = frozenset({"client_secret", "registration_access_token", "registration_client_uri"})
# RFC 8414 §2: the defaults of grant_types_supported and of
# token_endpoint_auth_methods_supported when a server omits them.
_DEFAULT_GRANTS = ("authorization_code", "implicit")
_DEFAULT_AUTH_METHODS = ("client_secret_basic",)
_WEB_SCHEMES = frozenset({"http", "https"})


def response_types_for(grant_types: Iterable[str]) -> tuple[str, ...]:
    """The response types a client with these grant types registers (sorted)."""
    return tuple(sorted({RESPONSE_TYPE_OF[g] for g in grant_types if g in RESPONSE_TYPE_OF}))


def to_metadata(client: Client, names: Names = DEFAULT_METADATA_NAMES) -> dict[str, Any]:
    """The RFC 7591 client metadata for a client, extension fields included.

    Extension fields go under ``names`` (those named ``None`` are left out: plan has
    refused a client that sets them). Null lifetimes are left out (absent = the
    registry's default). ``application_type`` is
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
        # Always sent: a server that merges on PUT (Canaille) would keep "none" otherwise.
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
    }
    values: dict[ExtensionField, object] = {
        "client_id": client.client_id,
        "partner": client.partner,
        "restrict_to_partner_users": client.restrict_to_partner_users,
        "access_token_ttl": client.access_token_ttl,
        "refresh_token_ttl": client.refresh_token_ttl,
    }
    for ours, value in values.items():
        name = names.get(ours)
        if name is not None and value is not None:
            metadata[name] = value
    return metadata


def from_metadata(
    client_id: str, metadata: Mapping[str, Any], partners: Iterable[str] = (),
    names: Names = DEFAULT_METADATA_NAMES,
) -> Client:
    """The client in normal form from a server's metadata; only the fields we manage.

    Reading is lenient, so that a drifted client shows as a difference rather than an
    error: absent extension fields take the files' defaults (restricted, platform
    lifetimes), several contacts are joined with ", ", and a missing partner is taken
    from the client ID's prefix among ``partners`` (the managed ones), else "".
    """
    contacts = metadata.get("contacts") or []
    scope = metadata.get("scope")
    def ext(ours: ExtensionField) -> Any:
        name = names.get(ours)
        return None if name is None else metadata.get(name)

    partner = ext("partner")
    if not isinstance(partner, str):
        prefixes = [p for p in partners if client_id.startswith(f"{p}-")]
        partner = max(prefixes, key=len) if prefixes else ""
    restrict = ext("restrict_to_partner_users")
    return Client(
        client_id=client_id,
        name=str(metadata.get("client_name") or ""),
        email=", ".join(str(c) for c in contacts),
        partner=partner,
        restrict_to_partner_users=restrict if isinstance(restrict, bool) else True,
        scopes=tuple(sorted(set(scope.split()))) if isinstance(scope, str) else (),
        grant_types=tuple(sorted(set(metadata.get("grant_types") or []))),
        redirect_uris=tuple(sorted(set(metadata.get("redirect_uris") or []))),
        access_token_ttl=_int_or_none(ext("access_token_ttl")),
        refresh_token_ttl=_int_or_none(ext("refresh_token_ttl")),
        # RFC 7591 §2: absent means client_secret_basic.
        token_endpoint_auth_method=str(
            metadata.get("token_endpoint_auth_method") or CONFIDENTIAL
        ),
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


def not_kept(
    sent: Mapping[str, Any], returned: Mapping[str, Any], names: Names = DEFAULT_METADATA_NAMES
) -> list[str]:
    """The managed fields that the server did not keep as sent (dropped or changed)."""
    problems: list[str] = []
    extension = {n for n in names.values() if n is not None}
    for field in managed_fields(names):
        if field == "application_type":
            continue  # not in RFC 7591: a plain OAuth server may ignore it, harmlessly
        if field in sent and field not in returned:
            problems.append(f"{field} (dropped)")
        elif field in sent and _comparable(field, sent[field]) != _comparable(
            field, returned[field]
        ):
            problems.append(f"{field} (sent {sent[field]!r}, kept {returned[field]!r})")
        elif field not in sent and returned.get(field) is not None and field in extension:
            problems.append(f"{field} (not sent, kept {returned[field]!r})")
    return problems


def unsupported(client: Client, caps: Capabilities) -> list[Problem]:
    """What ``client`` asks for that the server does not offer or cannot keep.

    Grant types against ``grant_types_supported`` (RFC 8414's default when absent),
    the response types they need against ``response_types_supported``, scopes against
    ``scopes_supported`` when published, then the extension fields the server has no
    name for (``capabilities.client_problems``). One message per value, naming the
    client.
    """
    problems = client_problems(caps, client)
    grants = [p for p in problems if " grant type " in p]
    offered = caps.grant_types or frozenset()
    responses = caps.response_types or frozenset()
    for grant in client.grant_types:
        needed = RESPONSE_TYPE_OF.get(grant)
        if needed and grant in offered and needed not in responses:
            grants.append(Problem(
                f"client {client.client_id}: grant type '{grant}' needs response type "
                f"'{needed}', which the registry does not support (it supports "
                f"{listing(responses)})",
            ))
    return grants + [p for p in problems if " grant type " not in p]


def capabilities_from(doc: Mapping[str, Any], source: str) -> Capabilities:
    """The capabilities a discovery document publishes (extension names: the defaults;
    ``capabilities.narrowed`` applies the settings)."""
    def strings(key: str) -> frozenset[str] | None:
        value = doc.get(key)
        if isinstance(value, list):
            return frozenset(v for v in value if isinstance(v, str))
        return None

    # Response types are compared whole: "code id_token" does not offer "token" on its own.
    methods = strings("token_endpoint_auth_methods_supported") or frozenset(_DEFAULT_AUTH_METHODS)
    return Capabilities(
        name=f"the registry ({source})",
        grant_types=strings("grant_types_supported") or frozenset(_DEFAULT_GRANTS),
        response_types=strings("response_types_supported") or frozenset(),
        scopes=strings("scopes_supported"),
        public_clients="none" in methods,
        source=source,
    )

