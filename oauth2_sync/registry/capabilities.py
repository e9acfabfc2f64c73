"""What a registry can hold, declared once per adapter: its capabilities.

A client file is checked against them twice: offline by ``validate`` (the
capabilities the settings declare, or the reference registry's), and by ``plan``
against what the connected registry says (an rfc7592 server's discovery document,
narrowed by the settings). Everything here is data and pure functions on the normal
form, so validation, the adapters and the renderers can all use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final, Literal, get_args

from oauth2_sync import durations
from oauth2_sync.model import (
    GRANT_TYPES,
    PLATFORM_ACCESS_TTL,
    PLATFORM_REFRESH_TTL,
    PUBLIC,
    SCOPES,
    Client,
)
from oauth2_sync.records import NamedTuple

ExtensionField = Literal[
    "client_id", "partner", "restrict_to_partner_users", "access_token_ttl", "refresh_token_ttl"
]
"""Our fields that RFC 7591 has no name for: a standard server keeps them as extension
metadata under a name its administrator chose, or not at all."""
EXTENSION_FIELDS: tuple[ExtensionField, ...] = get_args(ExtensionField)
DEFAULT_METADATA_NAMES: Mapping[ExtensionField, str] = {
    f: f"oauth2_sync_{f}" for f in EXTENSION_FIELDS
}
"""The metadata names used when the settings name none (``oauth2_sync_*``)."""

SCOPE_TOKEN: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
"""RFC 6749 §3.3 scope-token: printable ASCII but space, '"' and backslash."""

KNOWN_GRANTS: frozenset[str] = frozenset({
    "authorization_code", "implicit", "password", "client_credentials", "refresh_token",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "urn:ietf:params:oauth:grant-type:saml2-bearer",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "urn:openid:params:grant-type:ciba",
})
"""The grant types of RFC 6749 and the IANA registry; other extension grants are URIs
(RFC 6749 §4.5), so a misspelt short name is still caught offline."""

AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]


class Capabilities(NamedTuple):
    """What one registry can hold.

    ``scopes`` ``None`` means any RFC 6749 scope token; ``grant_types`` ``None`` means
    the known grants plus any extension grant URI. ``fields`` maps each of our extension
    fields to the registry's name for it, ``None`` where it cannot keep it. Lifetimes
    are the registry's defaults in seconds (``None``: not known).
    """

    name: str
    scopes: frozenset[str] | None
    grant_types: frozenset[str] | None
    public_clients: bool
    fields: Mapping[ExtensionField, str | None] = MappingProxyType(dict(DEFAULT_METADATA_NAMES))
    access_token_ttl: int | None = None
    refresh_token_ttl: int | None = None
    response_types: frozenset[str] | None = None
    """``None``: not published (nothing checked)."""
    source: str = ""
    """Where they were read (a discovery document's URL), or empty."""

    def default_ttl(self, which: str) -> int | None:
        """The registry's default for ``access_token_ttl`` or ``refresh_token_ttl``."""
        return self.access_token_ttl if which == "access_token_ttl" else self.refresh_token_ttl

    def holds(self, which: ExtensionField) -> bool:
        """Whether the registry keeps this field of ours."""
        return self.fields.get(which) is not None


REFERENCE = Capabilities(
    name="the reference registry",
    scopes=frozenset(SCOPES),
    grant_types=frozenset(GRANT_TYPES),
    public_clients=False,
    access_token_ttl=PLATFORM_ACCESS_TTL,
    refresh_token_ttl=PLATFORM_REFRESH_TTL,
)
"""The reference registry (``local:`` and the /v1 API): exactly its rules of old."""

STANDARD = Capabilities(
    name="a standard registry", scopes=None, grant_types=None, public_clients=True,
)
"""An rfc7592 server before its discovery document is read and without settings."""


def declared(url: str, doc: Mapping[str, Any] | None) -> Capabilities:
    """The capabilities the settings declare for the registry at ``url`` (offline).

    ``doc`` is the settings' ``registry.capabilities`` mapping (schema-checked). The
    reference registries (``local:``, ``http(s)://``) are always ``REFERENCE``.
    """
    if not url.startswith("rfc7592+"):
        return REFERENCE
    doc = doc or {}
    fields = dict(DEFAULT_METADATA_NAMES)
    fields.update(doc.get("fields", {}))
    return Capabilities(
        name="the registry's declared capabilities (registry.capabilities)",
        scopes=frozenset(doc["scopes"]) if "scopes" in doc else None,
        grant_types=frozenset(doc["grant_types"]) if "grant_types" in doc else None,
        public_clients=doc.get("public_clients", True),
        fields=fields,
        access_token_ttl=durations.parse(doc.get("access_token_ttl")),
        refresh_token_ttl=durations.parse(doc.get("refresh_token_ttl")),
    )


def narrowed(
    live: Capabilities, settings: Capabilities
) -> Capabilities:
    """What the live server publishes, narrowed by what the settings declare."""
    return live._replace(
        scopes=_meet(live.scopes, settings.scopes),
        grant_types=_meet(live.grant_types, settings.grant_types),
        public_clients=live.public_clients and settings.public_clients,
        fields=settings.fields,
        access_token_ttl=settings.access_token_ttl,
        refresh_token_ttl=settings.refresh_token_ttl,
    )


def _meet(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is None:
        return b
    return a if b is None else a & b


# --- checks ------------------------------------------------------------------------------

Where = tuple[str | int, ...]
"""A path inside one client entry (``("scopes", 0)``); empty for the entry itself."""


def entry_problems(caps: Capabilities, entry: Mapping[str, Any]) -> list[tuple[Where, str]]:
    """Offline: the scopes, grants and auth method of one schema-valid client entry
    that ``caps`` does not offer, each with its path in the entry.

    Against ``REFERENCE`` the messages are the ones the schema's enums gave before
    vocabularies were opened, so the reference registry reads exactly as it did.
    """
    found: list[tuple[Where, str]] = []
    for key, allowed in (("scopes", caps.scopes), ("grant_types", caps.grant_types)):
        values = entry.get(key)
        for index, value in enumerate(values if isinstance(values, list) else ()):
            message = _not_offered(key, value, allowed) if isinstance(value, str) else None
            if message:
                found.append(((key, index), message))
    if entry.get("token_endpoint_auth_method") == PUBLIC and not caps.public_clients:
        found.append((
            ("token_endpoint_auth_method",),
            f"{caps.name} cannot hold public clients (token_endpoint_auth_method: none)",
        ))
    return found


def _not_offered(key: str, value: str, allowed: frozenset[str] | None) -> str | None:
    if allowed is None:
        if key == "scopes" or value in KNOWN_GRANTS or ":" in value:
            return None
        allowed = KNOWN_GRANTS
    if value in allowed:
        return None
    import difflib  # only for a "did you mean" on the error path

    options = sorted(allowed)
    hint = difflib.get_close_matches(value, options, n=1, cutoff=0.6)
    extra = f"; did you mean '{hint[0]}'?" if hint else ""
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{shown} is not one of {', '.join(options)}{extra}"


def closed_vocabulary_message(caps: Capabilities, key: str, value: object) -> str | None:
    """For an item of ``scopes`` or ``grant_types`` the schema refused (not a token at
    all): the closed vocabulary's message when the registry has one, so the reference
    registry names its choices as it always did; ``None`` otherwise."""
    allowed = caps.scopes if key == "scopes" else caps.grant_types
    if allowed is None:
        return None
    if isinstance(value, str):
        return _not_offered(key, value, allowed)
    shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else repr(value)
    return f"{shown} is not one of {', '.join(sorted(allowed))}"


class Problem(str):
    """Why the registry cannot hold a client: the message, with ``field``, the
    client-file key it is about (the error points there; ``None``: the whole client).
    A ``str``, so callers that only show reasons need not know it."""

    field: str | None

    def __new__(cls, message: str, field: str | None = None) -> Problem:
        made = super().__new__(cls, message)
        made.field = field
        return made


def client_problems(caps: Capabilities, client: Client) -> list[Problem]:
    """At plan time: what ``client`` asks for that the connected registry cannot hold."""
    problems: list[Problem] = []
    for key, values, allowed in (
        ("grant_types", client.grant_types, caps.grant_types),
        ("scopes", client.scopes, caps.scopes),
    ):
        if allowed is None:
            continue
        what = "grant type" if key == "grant_types" else "scope"
        # Located at the client, as plan always placed these (only fields point deeper).
        problems += [
            Problem(f"client {client.client_id}: the registry does not support {what} "
                    f"'{value}' (it supports {listing(allowed)})")
            for value in values if value not in allowed
        ]
    if client.public and not caps.public_clients:
        problems.append(Problem(
            f"client {client.client_id}: the registry does not accept public clients "
            "(token_endpoint_auth_method 'none' is not in token_endpoint_auth_methods_supported)",
            "token_endpoint_auth_method",
        ))
    return problems + field_problems(caps, client)


def field_problems(caps: Capabilities, client: Client) -> list[Problem]:
    """The fields ``client`` sets away from their defaults that the registry cannot keep."""
    values: dict[ExtensionField, bool] = {
        "restrict_to_partner_users": not client.restrict_to_partner_users,
        "access_token_ttl": client.access_token_ttl is not None,
        "refresh_token_ttl": client.refresh_token_ttl is not None,
    }
    return [
        Problem(
            f"client {client.client_id}: the registry cannot hold {name} (no metadata name "
            f"for it in registry.capabilities.fields); leave it out of the file, or declare "
            "the field on the server and name it in the settings", name,
        )
        for name, set_ in values.items() if set_ and not caps.holds(name)
    ]


LISTED = 20
"""Values a message lists: a discovery document may offer any number of scopes."""


def listing(values: Iterable[str]) -> str:
    """``values`` sorted for a message, the first ``LISTED`` of them and how many more."""
    ordered = sorted(values)
    shown = ", ".join(ordered[:LISTED]) or "nothing"
    more = len(ordered) - LISTED
    return f"{shown} and {more} more" if more > 0 else shown
