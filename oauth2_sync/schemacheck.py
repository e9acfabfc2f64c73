"""JSON Schema checks that speak in file:line:column and plain words.

One validator per schema, built once (building is the expensive part); its errors
become ``Diagnostic`` objects positioned through ``Document.locate``. Unknown keys
get a "did you mean" hint; a schema may carry ``x-error`` with a friendlier message
for value errors.

jsonschema is imported only when a document needs it: ``fast.subset`` first decides
the documents that are plainly valid (nearly all of them), and importing jsonschema
costs about 90 ms, more than a whole plan of the examples.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from oauth2_sync import durations
from oauth2_sync.errors import Diagnostic, RuleId
from oauth2_sync.fast.subset import subset_valid
from oauth2_sync.files import package_text
from oauth2_sync.loader import DataPath, Document

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

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
    text = package_text(f"schemas/{name}.schema.json")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _ecma_pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    # JSON Schema patterns are ECMA-262, where `$` is the end of the string; Python's
    # `$` also matches before a final newline, which would let "acme-x\n" through.
    from jsonschema.exceptions import ValidationError

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
    from jsonschema.exceptions import ValidationError

    seconds = duration_seconds(instance)
    if seconds is not None and seconds > maximum:
        yield ValidationError(
            f"{instance!r} is {seconds} s, more than the maximum of "
            f"{durations.format_seconds(maximum)}"
        )


def duration_seconds(value: object) -> int | None:
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


@functools.cache
def validator(name: str) -> Any:
    """The one validator of a shipped schema (draft 2020-12, ECMA-262 patterns)."""
    from jsonschema import Draft202012Validator, validators

    extended = validators.extend(  # type: ignore[no-untyped-call]
        Draft202012Validator, {"pattern": _ecma_pattern, "x-maximum-seconds": _maximum_seconds}
    )
    return extended(load_schema(name))


def check(name: str, doc: Document) -> list[Diagnostic]:
    """Every schema error of a document as diagnostics, sorted."""
    return sorted(d for _, d in check_paths(name, doc))


def check_paths(name: str, doc: Document) -> list[tuple[DataPath, Diagnostic]]:
    """Every schema error of a document, each with the data path it is about."""
    schema = load_schema(name)
    if subset_valid(schema, doc.data, schema):
        return []  # plainly valid: no need of jsonschema (nor of its import)
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
    if error.validator in ("additionalProperties", "required") and isinstance(
        error.instance, dict
    ):
        yield from _explain_keys(str(error.validator), error.instance, value, path, schema)
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
        import difflib  # only for a "did you mean" on the error path

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


_JSON_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "boolean": "a boolean (true or false)",
    "integer": "an integer",
    "number": "a number",
    "null": "null",
}


def _explain_keys(
    keyword: str, instance: dict[str, object], required: list[str], path: DataPath,
    schema: dict[str, Any],
) -> Iterator[tuple[DataPath, RuleId, str, bool]]:
    """Unknown keys (with a "did you mean") or missing ones, one finding per key."""
    if keyword == "additionalProperties":
        import difflib  # only for a "did you mean" on the error path

        known = sorted(schema.get("properties", {}))
        for key in instance:
            if key not in known:
                hint = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
                extra = f" (did you mean '{hint[0]}'?)" if hint else _known_keys(known)
                yield (*path, key), "unknown-key", f"unknown key '{key}'{extra}", True
        return
    for key in required:
        if key not in instance:
            yield path, "missing-key", f"{_name(path)}missing required key '{key}'", False


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
