"""Fast path: whether a client file satisfies ``clients.schema.json``, without jsonschema.

Readable reference: ``schemacheck.validator("clients").is_valid(data)`` (jsonschema,
draft 2020-12, with the ECMA-262 pattern and ``x-maximum-seconds`` keywords). jsonschema
costs about 0.25 ms a client; this costs a few microseconds (60% of a plan of 10,000
clients: benchmarks/fastpaths.py). When it answers False the
caller runs jsonschema for the messages, so it only needs to be right when it says
True; tests/test_fast.py shows it agrees both ways on generated entries.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from oauth2_sync.schemacheck import duration_seconds, load_schema


def clients_valid(data: object) -> bool:
    """True only if ``data`` satisfies ``clients.schema.json``."""
    if type(data) is not dict or data.keys() != {"clients"} or type(data["clients"]) is not list:
        return False
    for entry in data["clients"]:
        # One pass a client, each keyword's check in turn: the same checks as functions
        # called through a tuple, with generators, took a third longer (#14).
        if (
            type(entry) is not dict
            or not _REQUIRED <= entry.keys() <= _ALLOWED
            or not _strings_valid(entry)
            or type(entry.get("restrict_to_partner_users", False)) is not bool
            or not _vocabulary_valid(entry.get("scopes", _ABSENT), _scope_valid)
            or not _vocabulary_valid(entry.get("grant_types", _ABSENT), _grant_valid)
            or not _redirects_valid(entry.get("redirect_uris", _ABSENT))
            or not _lifetime_valid(entry.get("access_token_ttl"))
            or not _lifetime_valid(entry.get("refresh_token_ttl"))
            or not _auth_valid(entry.get("token_endpoint_auth_method", _AUTH_DEFAULT))
        ):
            return False
    return True


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


def _vocabulary_valid(values: object, item_valid: Callable[[str], bool]) -> bool:
    # Scopes and grants are open vocabularies (RFC 6749 tokens); what a registry offers
    # is checked after the schema (registry.capabilities).
    if values is _ABSENT:
        return True
    if type(values) is not list or not values:
        return False
    for value in values:
        if type(value) is not str or not item_valid(value):
            return False
    return len(set(values)) == len(values)


def _item_rule(key: str) -> Callable[[str], bool]:
    """The ``items`` rule of ``scopes`` or ``grant_types`` for one string, cached: a
    repository spells a handful of scopes and grants over and over."""
    items = _CLIENT["properties"][key]["items"]
    shortest, longest, search = items["minLength"], items["maxLength"], _pattern(items["pattern"])

    @functools.lru_cache(maxsize=1024)
    def valid(value: str) -> bool:
        return (
            shortest <= len(value) <= longest
            and search(value) is not None
            and not value.endswith("\n")
        )

    return valid


def _redirects_valid(uris: object) -> bool:
    if uris is _ABSENT:
        return True
    return type(uris) is list and all(type(u) is str and 1 <= len(u) <= 2000 for u in uris)


def _auth_valid(method: object) -> bool:
    return type(method) is str and method in _AUTH_METHODS


def _lifetime_valid(value: object) -> bool:
    if value is None:
        return True
    if type(value) is str:
        return _lifetime_text_valid(value)
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is int:
        return value != 0 and _LIFETIME["minimum"] <= value <= _LIFETIME["maximum"]
    return False


@functools.lru_cache(maxsize=1024)
def _lifetime_text_valid(value: str) -> bool:
    # Cached: a repository spells its lifetimes a handful of ways (12h, 30d...).
    seconds = duration_seconds(value)
    return (
        _LIFETIME_PATTERN(value) is not None
        and not value.endswith("\n")
        and (seconds is None or seconds <= _LIFETIME["x-maximum-seconds"])
    )


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
"""The required string fields' rules, looked up once (``clients_valid`` runs per client)."""
_scope_valid = _item_rule("scopes")
_grant_valid = _item_rule("grant_types")
_AUTH_METHODS = frozenset(_CLIENT["properties"]["token_endpoint_auth_method"]["enum"])
_AUTH_DEFAULT = _CLIENT["properties"]["token_endpoint_auth_method"]["default"]
_ABSENT = object()
"""An optional key left out (not the same as null, which the schema refuses)."""
