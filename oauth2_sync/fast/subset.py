"""Fast path: whether a document plainly satisfies a shipped JSON Schema, without jsonschema.

Readable reference: ``schemacheck.validator(name).is_valid(data)`` (jsonschema, draft
2020-12, with the ECMA-262 ``pattern`` and ``x-maximum-seconds`` keywords). This checks
the subset of JSON Schema the shipped schemas use and answers True only when sure:
a keyword it does not know, a ``$ref`` outside the document, a float where an integer
is asked for, a ``not`` it cannot evaluate... all answer False, and the caller runs
jsonschema, which gives the messages. The point is not speed per document but the
import of jsonschema (about 90 ms) that a clean run no longer pays.
tests/test_fast.py shows it never says True where jsonschema finds an error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

Schema = Mapping[str, Any]

_ANNOTATIONS = frozenset(
    {"title", "description", "default", "$schema", "$id", "$comment", "$defs", "examples",
     "x-error"}
)
_TYPES: dict[str, Callable[[object], bool]] = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    # A float that is an integer (1.0) is one to jsonschema: left to it.
    "integer": lambda v: type(v) is int,
    "number": lambda v: type(v) in (int, float),
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
}


def subset_valid(schema: Schema, data: object, root: Schema) -> bool:
    """True only if ``data`` satisfies ``schema`` (``$ref`` resolved in ``root``)."""
    for keyword, value in schema.items():
        check = _KEYWORDS.get(keyword)
        if check is None:
            if keyword in _ANNOTATIONS:
                continue
            return False  # a keyword this subset does not know: not sure
        if not check(value, data, root, schema):
            return False
    return True


def _type(wanted: str | list[str], data: object, root: Schema, schema: Schema) -> bool:
    names = [wanted] if isinstance(wanted, str) else wanted
    return any(name in _TYPES and _TYPES[name](data) for name in names)


def _same(a: object, b: object) -> bool:
    # JSON equality: true is not 1. Scalars only; anything else is left to jsonschema.
    return type(a) is type(b) and type(a) in (str, int, bool, type(None)) and a == b


def _enum(options: list[object], data: object, root: Schema, schema: Schema) -> bool:
    return any(_same(data, option) for option in options)


def _const(value: object, data: object, root: Schema, schema: Schema) -> bool:
    return _same(data, value)


def _not(inner: Schema, data: object, root: Schema, schema: Schema) -> bool:
    # Only "not const" is decided here: the subset knows when data is valid, not when not.
    if inner.keys() != {"const"} or type(inner["const"]) not in (str, int, bool):
        return False
    return type(data) in (str, int, bool, float, list, dict, type(None)) and not (
        data == inner["const"] and type(data) in (type(inner["const"]), float)
    )


def _number(test: Callable[[float, float], bool]) -> Callable[..., bool]:
    def check(limit: float, data: object, root: Schema, schema: Schema) -> bool:
        return type(data) not in (int, float) or test(data, limit)  # type: ignore[arg-type]
    return check


def _length(test: Callable[[int, int], bool], kind: type) -> Callable[..., bool]:
    def check(limit: int, data: object, root: Schema, schema: Schema) -> bool:
        return type(data) is not kind or test(len(data), limit)  # type: ignore[arg-type]
    return check


@functools.cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _pattern(pattern: str, data: object, root: Schema, schema: Schema) -> bool:
    if type(data) is not str:
        return True
    # ECMA-262 "$" is the end of the string; Python's also matches before a final newline.
    return _regex(pattern).search(data) is not None and not data.endswith("\n")


def _seconds(maximum: int, data: object, root: Schema, schema: Schema) -> bool:
    return type(data) is not str  # a duration's seconds: left to the reference


def _properties(properties: Schema, data: object, root: Schema, schema: Schema) -> bool:
    if type(data) is not dict:
        return True
    return all(
        subset_valid(properties[key], value, root)
        for key, value in data.items()
        if key in properties
    )


def _additional(extra: bool | Schema, data: object, root: Schema, schema: Schema) -> bool:
    # (``patternProperties`` is not in the subset: a schema with it is never decided here.)
    if type(data) is not dict:
        return True
    known = schema.get("properties", {})
    others = [value for key, value in data.items() if key not in known]
    if not others or extra is True:
        return True
    if extra is False:
        return False
    return all(subset_valid(extra, value, root) for value in others)


def _required(keys: list[str], data: object, root: Schema, schema: Schema) -> bool:
    return type(data) is not dict or all(key in data for key in keys)


def _property_names(names: Schema, data: object, root: Schema, schema: Schema) -> bool:
    return type(data) is not dict or all(subset_valid(names, key, root) for key in data)


def _items(items: Schema, data: object, root: Schema, schema: Schema) -> bool:
    return type(data) is not list or all(subset_valid(items, item, root) for item in data)


def _unique(unique: bool, data: object, root: Schema, schema: Schema) -> bool:
    if not unique or type(data) is not list or len(data) < 2:
        return True
    # Strings only: 1 and true, or equal mappings, are jsonschema's to compare.
    return all(type(v) is str for v in data) and len(set(data)) == len(data)


def _ref(ref: str, data: object, root: Schema, schema: Schema) -> bool:
    if not ref.startswith("#/$defs/") or "/" in ref[len("#/$defs/"):]:
        return False
    target = root.get("$defs", {}).get(ref[len("#/$defs/"):])
    return target is not None and subset_valid(target, data, root)


_KEYWORDS: dict[str, Callable[[Any, object, Schema, Schema], bool]] = {
    "type": _type, "enum": _enum, "const": _const, "not": _not,
    "minimum": _number(lambda v, limit: v >= limit),
    "maximum": _number(lambda v, limit: v <= limit),
    "exclusiveMinimum": _number(lambda v, limit: v > limit),
    "exclusiveMaximum": _number(lambda v, limit: v < limit),
    "minLength": _length(lambda n, limit: n >= limit, str),
    "maxLength": _length(lambda n, limit: n <= limit, str),
    "minItems": _length(lambda n, limit: n >= limit, list),
    "maxItems": _length(lambda n, limit: n <= limit, list),
    "minProperties": _length(lambda n, limit: n >= limit, dict),
    "maxProperties": _length(lambda n, limit: n <= limit, dict),
    "pattern": _pattern, "x-maximum-seconds": _seconds,
    "properties": _properties, "additionalProperties": _additional, "required": _required,
    "propertyNames": _property_names, "items": _items, "uniqueItems": _unique, "$ref": _ref,
}
