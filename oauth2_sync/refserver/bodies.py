"""Request bodies of the client endpoints, checked against the shipped OpenAPI contract.

The ``ClientCreate`` component of ``schemas/registry-api.openapi.yaml`` is the rule
book: it is loaded once, on first use, into one jsonschema validator. Each schema error
becomes the registry's wording for its field (``fields`` of a 400). What JSON Schema
cannot say is checked by hand after it, in ``_beyond_schema``: text SQLite cannot store,
a pattern's ``$`` matching before a final newline, integral floats, the redirect
entries and their grant rule. The partner rules need the store and live there.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, NoReturn

import yaml

from oauth2_sync.errors import RegistryError
from oauth2_sync.files import package_text
from oauth2_sync.model import DEFAULT_GRANTS, DEFAULT_SCOPES, GRANT_TYPES, REDIRECT_GRANTS, SCOPES
from oauth2_sync.refserver import schemafast

if TYPE_CHECKING:
    # Imported when a body is first checked: ``local:`` plans read only, and the import
    # costs about 90 ms (more than a plan of the examples).
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

REDIRECT_ITEM_MAX: Final = 2000
"""Longest single redirect URI (the contract limits the whole string only)."""

_COMPONENT: Final = "ClientCreate"
_ALLOWED: Final = {"scope": SCOPES, "grantTypes": GRANT_TYPES}
_DEFAULTS: Final[Mapping[str, object]] = {
    "restrictToPartnerUsers": True,
    "scope": DEFAULT_SCOPES,
    "grantTypes": DEFAULT_GRANTS,
    "redirectUri": "",
}
_VALUE_FIELDS: Final = (
    "clientId", "name", "email", "partnerId", "restrictToPartnerUsers", "scope",
    "grantTypes", "redirectUri", "accessTokenValiditySeconds", "refreshTokenValiditySeconds",
)
_NUMBER_MESSAGES: Final = {
    "partnerId": "must be a partner's numeric id",
    "accessTokenValiditySeconds": (
        "must be null (platform default), -1 (never expires) or a positive number of seconds"
    ),
    "refreshTokenValiditySeconds": (
        "must be null (platform default) or a positive number of seconds"
    ),
}
_PATTERN_MESSAGES: Final = {
    "clientId": (
        "must be lower-case letters, digits, '.', '_' and '-', starting with a letter or digit"
    ),
    "name": "must not be blank",
    "email": "must be exactly one e-mail address",
}
# When a field breaks several rules, the first in this order is the one reported.
_RANK: Final = {
    "required": 0, "type": 0, "empty": 1, "maxLength": 2, "unicode": 3, "pattern": 4,
    "minLength": 5, "minItems": 1, "enum": 2, "uniqueItems": 3,
}

Problem = tuple[int, str]
"""A field's problem: its rank (lower wins) and its message."""


@functools.cache
def _contract() -> dict[str, Any]:
    text = package_text("schemas/registry-api.openapi.yaml")
    document: dict[str, Any] = yaml.load(text, Loader=yaml.CSafeLoader)
    return document


@functools.cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    components = _contract()["components"]
    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{_COMPONENT}", "components": components}
    )


@functools.cache
def _fast_valid() -> schemafast.Check:
    schemas = _contract()["components"]["schemas"]
    return schemafast.compile_schema(schemas[_COMPONENT], schemas)


def prepare() -> None:
    """Load the contract and build the validators now rather than on the first write."""
    _fast_valid()
    _validator()


def component(name: str) -> dict[str, Any]:
    """One component schema of the shipped OpenAPI contract (``ClientCreate``...)."""
    schema: dict[str, Any] = _contract()["components"]["schemas"][name]
    return schema


def validate_client_body(
    body: object, *, path_client_id: str | None = None
) -> dict[str, Any]:
    """Check a wire body against the registry's rules; returns the values with defaults.

    Raises ``RegistryError`` (status 400) whose ``fields`` name every bad field. The
    partner-dependent rules (partner exists, client ID prefix) need the store and are
    checked inside the write.
    """
    values, problems = check_body(body, path_client_id)
    if problems:
        raise_invalid(problems)
    return values


def check_body(
    body: object, path_client_id: str | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The body's values (defaults filled in) and its problems, field -> message."""
    if not isinstance(body, Mapping):
        raise RegistryError(
            "invalid client metadata: the body must be a JSON object", status=400
        )
    instance = {**_DEFAULTS, **body}
    if path_client_id is not None:
        instance.setdefault("clientId", path_client_id)
    for key in ("scope", "grantTypes"):
        if isinstance(instance[key], tuple):
            instance[key] = list(instance[key])
    found: dict[str, Problem] = {}
    if not _fast_valid()(instance):
        # jsonschema only for a body the fast path refuses: it names every error.
        for error in _validator().iter_errors(instance):
            for field, problem in _explain(error, instance):
                _note(found, field, problem)
    for field, problem in _beyond_schema(instance):
        _note(found, field, problem)
    if path_client_id is not None and instance["clientId"] != path_client_id:
        found["clientId"] = (-1, "must equal the client ID in the path")
    problems = {field: message for field, (_, message) in found.items()}
    return _values(instance, problems), problems


def raise_invalid(problems: Mapping[str, str]) -> NoReturn:
    """Raise the 400 for ``problems``, fields in name order."""
    ordered = dict(sorted(problems.items()))
    detail = "; ".join(f"{k}: {v}" for k, v in ordered.items())
    raise RegistryError(f"invalid client metadata: {detail}", status=400, fields=ordered)


def _note(found: dict[str, Problem], field: str, problem: Problem) -> None:
    if field not in found or problem[0] < found[field][0]:
        found[field] = problem


def _values(instance: Mapping[str, Any], problems: Mapping[str, str]) -> dict[str, Any]:
    values = {field: instance.get(field) for field in _VALUE_FIELDS}
    for field in ("scope", "grantTypes"):
        values[field] = () if field in problems else tuple(sorted(instance[field]))
    return values


def _explain(error: ValidationError, instance: Mapping[str, Any]) -> Iterable[tuple[str, Problem]]:
    keyword = str(error.validator)
    if not error.path:
        if keyword == "required":
            missing = set(component(_COMPONENT)["required"]) - set(instance)
            return [(field, (0, "is required")) for field in missing]
        if keyword == "additionalProperties":
            known = component(_COMPONENT)["properties"]
            return [(str(key), (0, "unknown field")) for key in instance if key not in known]
        return []
    field = str(error.path[0])
    return [(field, _field_problem(field, keyword, error, instance[field]))]


def _field_problem(field: str, keyword: str, error: ValidationError, value: object) -> Problem:
    required = field in component(_COMPONENT)["required"]
    if value is None and required:
        return 0, "is required"
    if field in _NUMBER_MESSAGES:
        return 0, _NUMBER_MESSAGES[field]
    if field in _ALLOWED:
        return _choice_problem(field, keyword, value)
    if field == "restrictToPartnerUsers":
        return 0, "must be true or false"
    if keyword == "type":
        return 0, "must be a string"
    if keyword == "minLength":
        return (1, "must not be empty") if value == "" else (5, "must be at least 3 characters")
    if keyword == "maxLength":
        return 2, f"must be at most {error.validator_value} characters"
    return _RANK.get(keyword, 4), _PATTERN_MESSAGES.get(field, str(error.message))


def _choice_problem(field: str, keyword: str, value: object) -> Problem:
    allowed = _ALLOWED[field]
    if keyword == "minItems":
        return 1, f"must name at least one of {', '.join(allowed)}"
    if keyword == "enum" and isinstance(value, list):
        unknown = sorted({v for v in value if isinstance(v, str) and v not in allowed})
        shown = ", ".join(repr(v) if _encodable(v) else "?" for v in unknown)
        return 2, f"unknown value {shown} (allowed: {', '.join(allowed)})"
    if keyword == "uniqueItems":
        return 3, "must not repeat a value"
    return 0, "must be an array of strings"


def _beyond_schema(instance: Mapping[str, Any]) -> Iterable[tuple[str, Problem]]:
    for field in ("clientId", "name", "email"):
        if instance.get(field) == "":
            yield field, (1, "must not be empty")
    for field in ("clientId", "name", "email", "redirectUri"):
        value = instance.get(field)
        if isinstance(value, str) and not _encodable(value):
            yield field, (3, "must be valid Unicode text")
    for field in ("clientId", "email"):
        value = instance.get(field)
        if isinstance(value, str) and value.endswith("\n"):
            # The contract's ``^...$`` lets one final newline through; the rule does not.
            yield field, (4, _PATTERN_MESSAGES[field])
    for field, message in _NUMBER_MESSAGES.items():
        if isinstance(instance.get(field), float):
            yield field, (0, message)
    redirect = _redirect_problem(instance)
    if redirect is not None:
        yield "redirectUri", (6, redirect)


def _redirect_problem(instance: Mapping[str, Any]) -> str | None:
    redirect = instance["redirectUri"]
    if not isinstance(redirect, str) or not redirect.strip():
        return None
    parts = [p.strip() for p in redirect.split(",")]
    if any(not p for p in parts):
        return "must not contain an empty entry"
    if any(len(p) > REDIRECT_ITEM_MAX for p in parts):
        return f"each URI must be at most {REDIRECT_ITEM_MAX} characters"
    grants = instance["grantTypes"]
    if _valid_choices(grants, GRANT_TYPES) and not REDIRECT_GRANTS.intersection(grants):
        return "redirect URIs are allowed only with the implicit or authorization_code grant"
    return None


def _valid_choices(value: object, allowed: tuple[str, ...]) -> bool:
    if not isinstance(value, list) or not value:
        return False
    return all(isinstance(v, str) and v in allowed for v in value) and len(set(value)) == len(
        value
    )


def _encodable(value: str) -> bool:
    # json.loads accepts lone surrogates ("\ud800"); SQLite cannot store them.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value
