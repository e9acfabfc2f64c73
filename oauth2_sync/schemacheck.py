"""JSON Schema checks that speak in file:line:column and plain words.

One validator per schema, built once (building is the expensive part); its errors
become ``Diagnostic`` objects positioned through ``Document.locate``. Unknown keys
get a "did you mean" hint; a schema may carry ``x-error`` with a friendlier message
for value errors.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from oauth2_sync import durations
from oauth2_sync.errors import Diagnostic, RuleId
from oauth2_sync.loader import DataPath, Document

_VALUE_KEYWORDS = frozenset(
    {"type", "pattern", "minimum", "maximum", "exclusiveMinimum", "not", "minLength", "maxLength"}
)
_TYPE_NAMES = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """The shipped JSON Schema ``clients`` or ``settings``, parsed."""
    text = resources.files("oauth2_sync").joinpath(f"schemas/{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _ecma_pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    # JSON Schema patterns are ECMA-262, where `$` is the end of the string; Python's
    # `$` also matches before a final newline, which would let "acme-x\n" through.
    if not validator.is_type(instance, "string"):
        return
    if _regex(pattern).search(instance) is None or (
        pattern.endswith("$") and instance.endswith("\n")
    ):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _maximum_seconds(
    validator: Any, maximum: int, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    # "maximum" holds for numbers only: a duration such as 1000000w is checked here,
    # once converted to seconds, or it would pass validate and plan and fail at apply.
    seconds = _duration_seconds(instance)
    if seconds is not None and seconds > maximum:
        yield ValidationError(
            f"{instance!r} is {seconds} s, more than the maximum of "
            f"{durations.format_seconds(maximum)}"
        )


def _duration_seconds(value: Any) -> int | None:
    """The seconds of a duration string (``12h``), or ``None`` for anything else."""
    if type(value) is not str or value == "never":
        return None
    try:
        return durations.parse(value)
    except ValueError:
        return None


@functools.cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_Validator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _ecma_pattern, "x-maximum-seconds": _maximum_seconds}
)


@functools.cache
def validator(name: str) -> Any:
    """The one validator of a shipped schema (draft 2020-12, ECMA-262 patterns)."""
    return _Validator(load_schema(name))


def _matches(pattern: str, value: str) -> bool:
    return _regex(pattern).search(value) is not None and not value.endswith("\n")


def clients_valid_fast(data: Any) -> bool:
    """True only if ``data`` satisfies ``clients.schema.json``, checked without jsonschema.

    jsonschema costs about 0.25 ms a client; this costs a few microseconds. When it
    returns False the caller runs jsonschema for the messages, so it only needs to be
    right when it says True; tests/test_schemacheck.py shows it agrees both ways.
    """
    if type(data) is not dict or data.keys() != {"clients"} or type(data["clients"]) is not list:
        return False
    return all(_client_valid_fast(entry) for entry in data["clients"])


def _client_valid_fast(entry: Any) -> bool:
    if type(entry) is not dict or not _REQUIRED <= entry.keys() <= _ALLOWED:
        return False
    for key, shortest, longest, search in _STRING_RULES:
        value = entry[key]
        if (
            type(value) is not str
            or not shortest <= len(value) <= longest
            or search(value) is None
            or value.endswith("\n")
        ):
            return False
    if (
        "restrict_to_partner_users" in entry
        and type(entry["restrict_to_partner_users"]) is not bool
    ):
        return False
    for key, allowed in _ENUM_RULES:
        if key in entry:
            values = entry[key]
            if (
                type(values) is not list
                or not values
                or not all(type(v) is str and v in allowed for v in values)
                or len(set(values)) != len(values)
            ):
                return False
    if "redirect_uris" in entry:
        uris = entry["redirect_uris"]
        if type(uris) is not list or not all(type(u) is str and 1 <= len(u) <= 2000 for u in uris):
            return False
    return all(
        _lifetime_valid_fast(entry[key])
        for key in ("access_token_ttl", "refresh_token_ttl")
        if key in entry
    )


def _lifetime_valid_fast(value: Any) -> bool:
    if value is None:
        return True
    if type(value) is str:
        seconds = _duration_seconds(value)
        return _matches(_LIFETIME["pattern"], value) and (
            seconds is None or seconds <= _LIFETIME["x-maximum-seconds"]
        )
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is int:
        return value != 0 and _LIFETIME["minimum"] <= value <= _LIFETIME["maximum"]
    return False


def check(name: str, doc: Document) -> list[Diagnostic]:
    """Every schema error of a document as diagnostics, sorted."""
    return sorted(d for _, d in check_paths(name, doc))


def check_paths(name: str, doc: Document) -> list[tuple[DataPath, Diagnostic]]:
    """Every schema error of a document, each with the data path it is about."""
    explained: dict[tuple[DataPath, RuleId, str], bool] = {}
    for error in validator(name).iter_errors(doc.data):
        for path, rule, message, key in _explain(error):
            explained.setdefault((path, rule, message), key)
    # "unknown key 'clientz' (did you mean 'clients'?)" says all; drop the missing 'clients'.
    hinted = {
        (path[:-1], message.rsplit("'", 2)[-2])
        for path, rule, message in explained
        if rule == "unknown-key" and "did you mean" in message
    }
    return [
        (path, doc.diagnostic(path, rule, message, key=key))
        for (path, rule, message), key in explained.items()
        if not (rule == "missing-key" and (path, message.rsplit("'", 2)[-2]) in hinted)
    ]


def _explain(error: ValidationError) -> Iterator[tuple[DataPath, RuleId, str, bool]]:
    path: DataPath = tuple(error.absolute_path)
    where = _name(path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    value: Any = error.validator_value
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(schema.get("properties", {}))
        for key in error.instance:
            if key not in known:
                hint = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
                extra = f" (did you mean '{hint[0]}'?)" if hint else _known_keys(known)
                yield (*path, key), "unknown-key", f"unknown key '{key}'{extra}", True
        return
    if error.validator == "required" and isinstance(error.instance, dict):
        for key in value:
            if key not in error.instance:
                yield path, "missing-key", f"{where}missing required key '{key}'", False
        return
    custom = schema.get("x-error")
    if error.validator in _VALUE_KEYWORDS and custom:
        yield path, "schema", f"{where}{custom} (got {_show(error.instance)})", False
        return
    if error.validator == "type":
        wanted_list: list[str] = value if isinstance(value, list) else [value]
        names = " or ".join(_JSON_TYPE_NAMES.get(w, w) for w in wanted_list)
        got = _TYPE_NAMES.get(type(error.instance), type(error.instance).__name__)
        yield path, "schema", f"{where}must be {names}, not {got}", False
        return
    if error.validator == "enum":
        options = [str(v) for v in value]
        hint = difflib.get_close_matches(str(error.instance), options, n=1, cutoff=0.6)
        extra = f"; did you mean '{hint[0]}'?" if hint else ""
        yield (
            path,
            "schema",
            (f"{where}{_show(error.instance)} is not one of {', '.join(options)}{extra}"),
            False,
        )
        return
    if error.validator == "minItems":
        least = value
        wanted = "must not be empty" if least == 1 else f"must have at least {least} items"
        yield path, "schema", f"{where}{wanted}", False
        return
    if error.validator == "uniqueItems":
        yield path, "schema", f"{where}must not repeat an item", False
        return
    if error.validator == "propertyNames":
        yield path, "schema", f"{where}{error.message}", False
        return
    yield path, "schema", f"{where}{error.message}", False


_CLIENT: dict[str, Any] = load_schema("clients")["$defs"]["client"]
_LIFETIME: dict[str, Any] = load_schema("clients")["$defs"]["lifetime"]
_REQUIRED = frozenset(_CLIENT["required"])
_ALLOWED = frozenset(_CLIENT["properties"])
_STRING_RULES = tuple(
    (
        key,
        _CLIENT["properties"][key].get("minLength", 0),
        _CLIENT["properties"][key]["maxLength"],
        _regex(_CLIENT["properties"][key]["pattern"]).search,
    )
    for key in ("client_id", "name", "email", "partner")
)
"""The required string fields' rules, looked up once (``_client_valid_fast`` runs per client)."""
_ENUM_RULES = tuple(
    (key, frozenset(_CLIENT["properties"][key]["items"]["enum"]))
    for key in ("scopes", "grant_types")
)

_JSON_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "boolean": "a boolean (true or false)",
    "integer": "an integer",
    "number": "a number",
    "null": "null",
}


def _name(path: DataPath) -> str:
    if not path:
        return ""
    text = ""
    for item in path:
        text += f"[{item}]" if isinstance(item, int) else (f".{item}" if text else str(item))
    return f"{text}: "


def _known_keys(known: list[str]) -> str:
    return f" (expected one of: {', '.join(known)})" if known else ""


def _show(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
