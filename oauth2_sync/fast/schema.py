"""Fast path: whether a client file satisfies ``clients.schema.json``, without jsonschema.

Readable reference: ``schemacheck.validator("clients").is_valid(data)`` (jsonschema,
draft 2020-12, with the ECMA-262 pattern and ``x-maximum-seconds`` keywords). jsonschema
costs about 0.25 ms a client; this costs a few microseconds (60% of a plan of 10,000
clients: benchmarks/fastpaths.py). When it answers False the
caller runs jsonschema for the messages, so it only needs to be right when it says
True; tests/test_fast.py shows it agrees both ways on generated entries.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from oauth2_sync.schemacheck import duration_seconds, load_schema


def clients_valid(data: object) -> bool:
    """True only if ``data`` satisfies ``clients.schema.json``."""
    if type(data) is not dict or data.keys() != {"clients"} or type(data["clients"]) is not list:
        return False
    return all(_client_valid(entry) for entry in data["clients"])


def _client_valid(entry: object) -> bool:
    if type(entry) is not dict or not _REQUIRED <= entry.keys() <= _ALLOWED:
        return False
    return all(check(entry) for check in _CHECKS)


def _strings_valid(entry: dict[str, object]) -> bool:
    for key, shortest, longest, search in _STRING_RULES:
        value = entry[key]
        if (
            type(value) is not str
            or not shortest <= len(value) <= longest
            or search(value) is None
            or value.endswith("\n")
        ):
            return False
    return True


def _flag_valid(entry: dict[str, object]) -> bool:
    return type(entry.get("restrict_to_partner_users", False)) is bool


def _auth_valid(entry: dict[str, object]) -> bool:
    method = entry.get("token_endpoint_auth_method", _AUTH_DEFAULT)
    return type(method) is str and method in _AUTH_METHODS


def _vocabularies_valid(entry: dict[str, object]) -> bool:
    # Scopes and grants are open vocabularies (RFC 6749 tokens); what a registry offers
    # is checked after the schema (registry.capabilities).
    for key, longest, search in _ITEM_RULES:
        if key not in entry:
            continue
        values = entry[key]
        if (
            type(values) is not list
            or not values
            or not all(
                type(v) is str and 1 <= len(v) <= longest and search(v) is not None
                and not v.endswith("\n")
                for v in values
            )
            or len(set(values)) != len(values)
        ):
            return False
    return True


def _redirects_valid(entry: dict[str, object]) -> bool:
    uris = entry.get("redirect_uris", [])
    return type(uris) is list and all(type(u) is str and 1 <= len(u) <= 2000 for u in uris)


def _lifetimes_valid(entry: dict[str, object]) -> bool:
    return all(_lifetime_valid(entry.get(key)) for key in ("access_token_ttl", "refresh_token_ttl"))


def _lifetime_valid(value: object) -> bool:
    if value is None:
        return True
    if type(value) is str:
        seconds = duration_seconds(value)
        return (
            _LIFETIME_PATTERN(value) is not None
            and not value.endswith("\n")
            and (seconds is None or seconds <= _LIFETIME["x-maximum-seconds"])
        )
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is int:
        return value != 0 and _LIFETIME["minimum"] <= value <= _LIFETIME["maximum"]
    return False


def _pattern(pattern: str) -> Callable[[str], re.Match[str] | None]:
    return re.compile(pattern).search


_CLIENT: dict[str, Any] = load_schema("clients")["$defs"]["client"]
_LIFETIME: dict[str, Any] = load_schema("clients")["$defs"]["lifetime"]
_LIFETIME_PATTERN = _pattern(_LIFETIME["pattern"])
_REQUIRED = frozenset(_CLIENT["required"])
_ALLOWED = frozenset(_CLIENT["properties"])
_STRING_RULES = tuple(
    (
        key,
        _CLIENT["properties"][key].get("minLength", 0),
        _CLIENT["properties"][key]["maxLength"],
        _pattern(_CLIENT["properties"][key]["pattern"]),
    )
    for key in ("client_id", "name", "email", "partner")
)
"""The required string fields' rules, looked up once (``_client_valid`` runs per client)."""
_ITEM_RULES = tuple(
    (
        key,
        _CLIENT["properties"][key]["items"]["maxLength"],
        _pattern(_CLIENT["properties"][key]["items"]["pattern"]),
    )
    for key in ("scopes", "grant_types")
)
_AUTH_METHODS = frozenset(_CLIENT["properties"]["token_endpoint_auth_method"]["enum"])
_AUTH_DEFAULT = _CLIENT["properties"]["token_endpoint_auth_method"]["default"]
_CHECKS: tuple[Callable[[dict[str, object]], bool], ...] = (
    _strings_valid, _flag_valid, _vocabularies_valid, _redirects_valid, _lifetimes_valid,
    _auth_valid,
)
