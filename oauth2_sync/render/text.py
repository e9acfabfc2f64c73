"""A plan as text, in Terraform's wording and symbols.

Every value from the files or the registry is printed as an escaped literal
(``render.quote``), so a name holding terminal escapes cannot recolour or rewrite the
screen.
"""

from __future__ import annotations

from typing import TextIO

import click

from oauth2_sync.diff import TTL_FIELDS, FieldValue, client_fields
from oauth2_sync.plan import Action, Change, Plan
from oauth2_sync.render.common import (
    APPROVAL_LABEL,
    LEGEND,
    SYMBOLS,
    effective,
    errors_line,
    human_seconds,
    human_ttl,
    is_list,
    line,
    list_diff,
    literal,
    matches_line,
    plan_line,
    plural,
    uncommitted_note,
    widening_line,
    with_registry_defaults,
)
from oauth2_sync.safetext import escape, quote

__all__ = [
    "APPROVAL_LABEL", "COLORS", "LEGEND", "SYMBOLS", "VERBS", "counts_line", "errors_line",
    "matches_line", "plan_line", "render", "safety_line",
]
"""The summary lines and symbols live in ``render.common``; they are re-exported here,
where the CLI composes its messages from them."""

VERBS: dict[Action, str] = {
    "create": "will be created",
    "update": "will be updated in-place",
    "delete": "will be destroyed",
}
COLORS: dict[Action, str] = {"create": "green", "update": "yellow", "delete": "red"}
WIDENS_MARK = "!"
"""Marks a change that widens access, before its reasons."""


@with_registry_defaults
def render(plan: Plan, stream: TextIO, *, color: bool = False) -> None:
    """Write the plan for people: each change with its fields, then the counts."""
    style = _Styler(color)
    stream.write(_header(plan))
    if not plan.changes:
        stream.write(style.bold("No changes.") + f" {matches_line(plan)}\n\n")
        stream.write(counts_line(plan) + "\n")
        _errors(plan, stream, style)
        return
    used = [a for a in SYMBOLS if any(c.action == a for c in plan.changes)]
    stream.write("Resource actions are indicated with the following symbols:\n")
    for action in used:
        stream.write(f"  {style.action(action, SYMBOLS[action])} {LEGEND[action]}\n")
    stream.write("\noauth2-sync will perform the following actions:\n\n")
    for change in plan.changes:
        _change(change, stream, style)
    if plan.exceeded:
        stream.write(f"{style.warning('Warning:')} {safety_line(plan)}\n\n")
    stream.write(style.bold(plan_line(plan)) + "\n")
    stream.write(counts_line(plan) + "\n")
    widening = widening_line(plan)
    if widening:
        stream.write(f"{style.widens(WIDENS_MARK)} {widening}.\n")
    _errors(plan, stream, style)




def safety_line(plan: Plan) -> str:
    """Why apply will refuse the plan, and how to approve it (after ``Warning:``)."""
    return (
        "apply will refuse this plan: " + "; ".join(map(str, plan.exceeded))
        + ". Raise the limit in the settings, or approve this plan with apply "
        f"--allow-unsafe (in CI: the pull-request label {APPROVAL_LABEL})"
    )


def _errors(plan: Plan, stream: TextIO, style: _Styler) -> None:
    if not plan.errors:
        return
    stream.write(f"\n{style.error('Error:')} {errors_line(plan)}\n")
    for diagnostic in plan.errors:
        stream.write(f"  {line(diagnostic)}\n")


def counts_line(plan: Plan) -> str:
    """The clients the plan leaves alone: matching, and outside the managed scope."""
    s = plan.summary
    kept = (
        f"{s.undeclared} declared by no file (kept: prune is off); " if s.undeclared else ""
    )
    return f"{s.no_op} unchanged; {kept}{s.unmanaged} outside the managed scope (not touched)."


def _header(plan: Plan) -> str:
    lines = [f"Registry: {escape(plan.registry)}"]
    if plan.commit:
        lines.append(f"Commit: {escape(plan.commit)}{uncommitted_note(plan)}")
    elif plan.uncommitted:
        lines.append(f"Commit: none{uncommitted_note(plan)}")
    if plan.targets:
        lines.append("Targets: " + ", ".join(escape(t) for t in plan.targets))
    return "\n".join(lines) + "\n\n"


def _change(change: Change, stream: TextIO, style: _Styler) -> None:
    symbol = style.action(change.action, SYMBOLS[change.action])
    where = f" ({escape(change.file)}:{change.line})" if change.file else ""
    stream.write(f"  # client {quote(change.client_id)} {VERBS[change.action]}{where}\n")
    if change.action == "delete":
        stream.write("  # (no file declares it; prune is on)\n")
    risk = change.risk
    if risk.risk != "neutral":
        mark = f"{style.widens(WIDENS_MARK)} " if risk.risk == "widens" else ""
        for reason in risk.reasons:
            stream.write(f"  # {mark}{risk.risk} access: {escape(reason)}\n")
    stream.write(f"  {symbol} client {quote(change.client_id)} {{\n")
    if change.action == "update":
        width = max(len(f.field) for f in change.fields)
        for f in change.fields:
            if is_list(f.before) or is_list(f.after):
                _list_field(
                    f.field.ljust(width), f.before, f.after, symbol, stream=stream, style=style
                )
                continue
            note = _ttl_note(f.field, f.before, f.after) if f.field in TTL_FIELDS else ""
            stream.write(
                f"      {symbol} {f.field.ljust(width)} = "
                f"{literal(f.before)} -> {literal(f.after)}{note}\n"
            )
        shown = max(len(client_fields(c)) for c in (change.before, change.after) if c)
        hidden = shown - len(change.fields)
        if hidden:
            stream.write(f"        # ({hidden} unchanged {plural(hidden, 'field')} hidden)\n")
    else:
        client = change.after if change.action == "create" else change.before
        assert client is not None
        values = client_fields(client)
        width = max(len(name) for name, _ in values)
        for name, value in values:
            note = f" # {human_ttl(name, value)}" if name in TTL_FIELDS else ""
            stream.write(f"      {symbol} {name.ljust(width)} = {literal(value)}{note}\n")
    stream.write("    }\n\n")


def _list_field(
    name: str, before: FieldValue, after: FieldValue, symbol: str, *, stream: TextIO,
    style: _Styler,
) -> None:
    """A set field's change, one element per line with ``+``/``-``, unchanged ones counted."""
    items, hidden = list_diff(before, after)
    stream.write(f"      {symbol} {name} = [\n")
    for sign, value in items:
        shown = style.action("create" if sign == "+" else "delete", sign)
        stream.write(f"          {shown} {quote(value)},\n")
    if hidden:
        stream.write(f"            # ({hidden} unchanged {plural(hidden, 'element')} hidden)\n")
    stream.write("        ]\n")


def _ttl_note(field: str, before: FieldValue, after: FieldValue) -> str:
    old = before if isinstance(before, int) else None
    new = after if isinstance(after, int) else None
    if (effect := effective(field, old)) is not None and effect == effective(field, new):
        return f" # effective value unchanged ({human_seconds(effect)})"
    return f" # {human_ttl(field, old)} -> {human_ttl(field, new)}"


class _Styler:
    """click.style when colour is on; the identity otherwise."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def action(self, action: Action, text: str) -> str:
        return click.style(text, fg=COLORS[action], bold=True) if self.color else text

    def widens(self, text: str) -> str:
        return click.style(text, fg="red", bold=True) if self.color else text

    def warning(self, text: str) -> str:
        return click.style(text, fg="yellow", bold=True) if self.color else text

    def error(self, text: str) -> str:
        return click.style(text, fg="red", bold=True) if self.color else text

    def bold(self, text: str) -> str:
        return click.style(text, bold=True) if self.color else text
