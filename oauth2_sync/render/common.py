"""Helpers the renderers share, so that no renderer imports another.

Values are shown the same way in every format: as escaped literals in text
(``literal``), inside ``<code>`` in Markdown (``code``, ``cell``), lifetimes explained
for people (``human_ttl``); plan renderers share the symbols, legend and summary lines.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Protocol, TypeVar, cast

from oauth2_sync import durations
from oauth2_sync.diff import TTL_FIELDS, FieldValue
from oauth2_sync.errors import Diagnostic
from oauth2_sync.model import PLATFORM_DEFAULTS, TtlDefaults, effective_ttl
from oauth2_sync.plan import Action, Plan
from oauth2_sync.plandata import REFUSED_RULE
from oauth2_sync.safetext import escape, printable, quote

SYMBOLS: dict[Action, str] = {"create": "+", "update": "~", "delete": "-"}
LEGEND: dict[Action, str] = {
    "create": "create",
    "update": "update in-place",
    "delete": "destroy",
}

# The connected registry's default lifetimes, set by each renderer's entry point for the
# document it renders (``with_registry_defaults``): a context variable, so that the many
# helpers below it that explain lifetimes need no extra parameter.
_DEFAULTS: ContextVar[TtlDefaults] = ContextVar("ttl_defaults", default=PLATFORM_DEFAULTS)


class _HasDefaults(Protocol):
    @property
    def ttl_defaults(self) -> TtlDefaults: ...


_F = TypeVar("_F", bound=Callable[..., None])


def with_registry_defaults(render: _F) -> _F:
    """Make a renderer (its first argument a plan or a drift report) explain null
    lifetimes with that document's ``ttl_defaults``: the registry's defaults, not
    always the reference registry's 12h/30d."""
    @functools.wraps(render)
    def wrapped(document: _HasDefaults, /, *args: object, **kwargs: object) -> None:
        token = _DEFAULTS.set(document.ttl_defaults)
        try:
            render(document, *args, **kwargs)
        finally:
            _DEFAULTS.reset(token)
    return cast("_F", wrapped)


def effective(field: str, seconds: int | None) -> int | None:
    """The lifetime the registry being rendered applies (``None``: its default, unknown)."""
    return effective_ttl(field, seconds, _DEFAULTS.get())


APPROVAL_LABEL = "oauth2-sync:allow-unsafe"
"""The pull-request (merge-request) label with which a reviewer approves an unsafe plan
in the CI kit: the apply job then passes ``--allow-unsafe``."""
MAX_VALUE_CHARS = 300
"""A longer value is cut (a 2,000-character URI list would crowd out other clients)."""


# --- plan summary lines ------------------------------------------------------------------


def matches_line(plan: Plan) -> str:
    """What follows ``No changes.``: the registry matches, but for any client left out."""
    if plan.errors:
        return "The registry matches the configuration, but for the clients left out below."
    return "The registry matches the configuration."


def errors_line(plan: Plan) -> str:
    """What the plan's errors mean: ``2 clients are left out of this plan: ...``, and
    the changes of a saved plan that apply refused (``planfile.py``)."""
    refused = sum(1 for d in plan.errors if d.rule == REFUSED_RULE)
    hidden = len({d.message for d in plan.errors if d.rule == "registry-unreachable"})
    n = len({
        (d.file, d.line, d.column) for d in plan.errors
        if d.rule not in (REFUSED_RULE, "registry-unreachable")
    })
    parts = []
    if n or hidden or not refused:
        total = n + hidden
        why = (
            f"the registry cannot hold {'it' if n == 1 else 'them'}." if not hidden else
            f"the registry refused to show {'it' if hidden == 1 else 'them'}." if not n else
            f"the registry cannot hold {n} and refused to show {hidden}."
        )
        parts.append(
            f"{total} {plural(total, 'client')} {'is' if total == 1 else 'are'} left out of "
            f"this plan: {why}"
        )
    if refused:
        parts.append(
            f"{refused} {plural(refused, 'change')} of the saved plan "
            f"{'was' if refused == 1 else 'were'} refused: not what the current files and "
            "settings allow."
        )
    return " ".join(parts)


def plan_line(plan: Plan) -> str:
    """``Plan: N to add, N to change, N to destroy.``"""
    s = plan.summary
    return f"Plan: {s.create} to add, {s.update} to change, {s.delete} to destroy."


def widening_line(plan: Plan) -> str:
    """``2 changes widen access (1 new redirect host, ...)``; ``""`` when none does."""
    from oauth2_sync.risk import widening_summary  # only a plan with changes

    return widening_summary(c.risk for c in plan.changes)


def uncommitted_note(plan: Plan) -> str:
    """`` (uncommitted changes to a.yaml, b.yaml)`` after the commit, ``""`` when clean.

    Said because a commit alone would claim the plan shows that commit's files."""
    if not plan.uncommitted:
        return ""
    return " (uncommitted changes to " + ", ".join(escape(p) for p in plan.uncommitted) + ")"


def list_diff(before: FieldValue, after: FieldValue) -> tuple[list[tuple[str, str]], int]:
    """A set field's change one element per line, as Terraform shows lists: ``("-", x)``
    for each removed element and ``("+", y)`` for each added one, in sorted order, and
    how many elements are unchanged (hidden)."""
    old = set(before) if isinstance(before, tuple) else set()
    new = set(after) if isinstance(after, tuple) else set()
    items = sorted(
        [("-", v) for v in old - new] + [("+", v) for v in new - old],
        key=lambda item: (item[1], item[0]),
    )
    return items, len(old & new)


def is_list(value: FieldValue) -> bool:
    """Whether a field value is a set (shown one element per line when it changes)."""
    return isinstance(value, tuple)


# --- values ------------------------------------------------------------------------------


def literal(value: FieldValue) -> str:
    """A field value as the text plan shows it: null, true, 3600, "name", ["a", "b"]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return quote(value)
    return "[" + ", ".join(quote(v) for v in value) + "]"


def human_ttl(field: str, value: FieldValue) -> str:
    """A lifetime for people: ``12h``, ``never expires``, ``platform default, 30d`` (the
    registry's default), ``the registry's default`` (one it does not publish)."""
    if value is None:
        default = effective(field, None)
        return "the registry's default" if default is None else (
            f"platform default, {human_seconds(default)}"
        )
    assert isinstance(value, int) and not isinstance(value, bool)
    return human_seconds(value)


def human_seconds(seconds: int | None) -> str:
    """Seconds for people: ``12h``, ``never expires``."""
    if seconds == durations.NEVER:
        return "never expires"
    short = durations.shortest(seconds)
    return f"{short}s" if isinstance(short, int) else str(short)


def plural(n: int, word: str) -> str:
    """``word`` for ``n`` of it: ``client``, ``clients``."""
    return word if n == 1 else f"{word}s"


def cell(value: FieldValue, field: str, same_effect: bool = False) -> str:
    """A field value as a table cell: inside ``<code>``, escaped, lifetimes explained."""
    if field in TTL_FIELDS:
        note = human_ttl(field, value) + ("; effective value unchanged" if same_effect else "")
        return f"<code>{'null' if value is None else value}</code> ({note})"
    if value is None:
        return "<code>null</code>"
    if isinstance(value, bool):
        return f"<code>{'true' if value else 'false'}</code>"
    if isinstance(value, int):
        return f"<code>{value}</code>"
    if isinstance(value, str):
        return code(value, quoted=True)
    return _code_list(value)


def _code_list(values: Iterable[str]) -> str:
    items = list(values)
    if not items:
        return "<code>[]</code>"
    return "<br>".join(code(v, quoted=True) for v in items)


def code(text: str, *, quoted: bool = False) -> str:
    """Untrusted text, escaped and cut, inside ``<code>`` (no Markdown parses there)."""
    shown = escape(text)
    if len(shown) > MAX_VALUE_CHARS:
        shown = f"{shown[:MAX_VALUE_CHARS]}… ({len(shown) - MAX_VALUE_CHARS} more characters)"
    if quoted:
        shown = f'"{shown}"'
    import html  # Markdown only: the text plan, the one CI logs show, does not import it

    return f"<code>{html.escape(shown, quote=True)}</code>"


def line(d: Diagnostic) -> str:
    """One diagnostic as ``validate`` prints it: file name and message with every
    invisible or control character escaped, so that a file name cannot start a line
    of its own (a forged ``::error`` workflow command) or drive the terminal."""
    return f"{printable(d.file)}:{d.line}:{d.column}: {d.severity}: [{d.rule}] {printable(d.message)}"
