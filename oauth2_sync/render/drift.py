"""A drift report as text, JSON, Markdown (an issue body) or JUnit XML.

Each renderer is a function of (report, stream). Registry data is untrusted: names,
URIs and the registry's ``updatedBy`` are shown as escaped literals (``render.escape``)
in every format. The Markdown sets them inside ``<code>`` within raw HTML blocks, HTML-
escaped, so no value can close a ``<details>`` section, inject HTML or links, or notify
people with ``@`` mentions; the JUnit XML never carries a control character (XML 1.0
cannot hold one, even escaped).
"""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TextIO

import click

from oauth2_sync.diff import TTL_FIELDS, FieldValue, client_fields
from oauth2_sync.drift import ClientDrift, DriftKind, DriftReport, to_dict
from oauth2_sync.model import Client
from oauth2_sync.render.common import cell, code, human_ttl, literal, with_registry_defaults
from oauth2_sync.safetext import escape, quote

SYMBOLS: dict[DriftKind, str] = {
    "changed": "~", "missing": "-", "undeclared": "+", "unreachable": "?",
}
LEGEND: dict[DriftKind, str] = {
    "changed": "changed in the registry",
    "missing": "missing from the registry",
    "undeclared": "in the registry, declared by no file",
    "unreachable": "refused by the registry (deleted there, or its token revoked or rotated)",
}
COLORS: dict[DriftKind, str] = {
    "changed": "yellow", "missing": "red", "undeclared": "green", "unreachable": "magenta",
}
FIX: dict[DriftKind, str] = {
    "changed": "apply restores the declared values",
    "missing": "apply creates it again",
    "undeclared": "export it into the repository to adopt it, or apply --prune to delete it",
    "unreachable": "adopt it with its current token, or forget it if it is gone",
}


SIDE_LEGEND: dict[str, str] = {
    "registry": "changed in the registry",
    "files": "differs from the registry: its file changed",
    "unknown": "differs from the registry",
}
"""What a changed client's line says once its side is known (``drift.locate_sides``)."""


def legend(item: ClientDrift) -> str:
    """``changed in the registry`` only when that is what git and the registry tell."""
    if item.kind == "changed" and item.side is not None:
        return SIDE_LEGEND[item.side]
    return LEGEND[item.kind]


def fix(item: ClientDrift, show: Callable[[str], str]) -> str:
    """What to do about a drifted client; ``show`` makes registry text safe to print."""
    if item.reason is not None:
        return show(item.reason)
    if item.unsupported:
        reasons = "; ".join(show(reason) for reason in item.unsupported)
        return (
            f"the registry cannot hold it ({reasons}), so apply cannot create it: "
            "change its declaration or remove it"
        )
    return FIX[item.kind]


def declared_or_held(item: ClientDrift) -> Client | None:
    """The client a missing, undeclared or unreachable entry shows: as the registry
    holds it when undeclared, else as the files declare it (``None``: neither)."""
    return item.after if item.kind == "undeclared" else item.before


def drift_line(report: DriftReport) -> str:
    """``Drift: 1 changed, 1 missing, 1 undeclared.`` or ``No drift.``"""
    s = report.summary
    if not report.has_drift:
        return "No drift."
    # The count of unreachable clients only where there are some (standard registries).
    extra = f", {s.unreachable} unreachable" if s.unreachable else ""
    return f"Drift: {s.changed} changed, {s.missing} missing, {s.undeclared} undeclared{extra}."


def counts_line(report: DriftReport) -> str:
    """The managed clients without drift, and those outside the managed scope."""
    s = report.summary
    warned = f"{s.warning} with warnings only; " if s.warning else ""
    ignored = f" ({s.ignored} with ignored differences only)" if s.ignored else ""
    return (
        f"{warned}{s.in_sync} in sync{ignored}; "
        f"{s.unmanaged} outside the managed scope (only counted)."
    )


# --- text --------------------------------------------------------------------------------


@with_registry_defaults
def render_text(report: DriftReport, stream: TextIO, *, color: bool = False) -> None:
    """Write the report for people: each drifted client with its fields, then the counts."""
    style = _Styler(color)
    lines = [f"Registry: {escape(report.registry)}"]
    dirty = (
        " (uncommitted changes to " + ", ".join(escape(p) for p in report.uncommitted) + ")"
        if report.uncommitted else ""
    )
    if report.commit or dirty:
        lines.append(f"Commit: {escape(report.commit or 'none')}{dirty}")
    stream.write("\n".join(lines) + "\n\n")
    if not report.clients:
        stream.write(
            style.bold("No drift.") + " The registry matches the configuration.\n\n"
        )
        stream.write(counts_line(report) + "\n")
        return
    stream.write("Values are shown as declared in the files -> as held by the registry.\n\n")
    for item in report.clients:
        _text_client(item, stream, style)
    stream.write(style.bold(drift_line(report)) + "\n")
    stream.write(counts_line(report) + "\n")


def _text_client(item: ClientDrift, stream: TextIO, style: _Styler) -> None:
    symbol = style.kind(item.kind, SYMBOLS[item.kind])
    where = f" ({escape(item.file)}:{item.line})" if item.file else ""
    warning = "" if item.failing else " [warning only]"
    stream.write(
        f"  {symbol} client {quote(item.client_id)} {legend(item)}{where}{warning}\n"
    )
    audit = _audit_text(item)
    if audit:
        stream.write(f"      # {audit}\n")
    if item.kind == "changed":
        width = max(len(f.field) for f in item.fields)
        for f in item.fields:
            note = _ttl_note(f.field, f.before, f.after) if f.field in TTL_FIELDS else ""
            if f.effective_unchanged:
                note += " (same effect)"
            mode = "" if f.mode == "enforce" else "  # policy: warn"
            stream.write(
                f"      {symbol} {f.field.ljust(width)} = "
                f"{literal(f.before)} -> {literal(f.after)}{note}{mode}\n"
            )
    elif (client := declared_or_held(item)) is not None:
        values = client_fields(client)
        width = max(len(name) for name, _ in values)
        for name, value in values:
            note = f" # {human_ttl(name, value)}" if name in TTL_FIELDS else ""
            stream.write(f"      {symbol} {name.ljust(width)} = {literal(value)}{note}\n")
    stream.write(f"      # fix: {fix(item, escape)}\n\n")


def _audit_text(item: ClientDrift) -> str:
    parts = []
    if item.updated_at or item.updated_by:
        when = f" at {escape(item.updated_at)}" if item.updated_at else ""
        who = f" by {quote(item.updated_by)}" if item.updated_by else ""
        parts.append(f"last updated{when}{who}")
    if item.created_at and item.kind == "undeclared":
        parts.append(f"created at {escape(item.created_at)}")
    if item.side_reason:
        parts.append(escape(item.side_reason))
    return "; ".join(parts)


def _ttl_note(field: str, before: FieldValue, after: FieldValue) -> str:
    old = before if isinstance(before, int) and not isinstance(before, bool) else None
    new = after if isinstance(after, int) and not isinstance(after, bool) else None
    return f" # {human_ttl(field, old)} -> {human_ttl(field, new)}"


class _Styler:
    def __init__(self, color: bool) -> None:
        self.color = color

    def kind(self, kind: DriftKind, text: str) -> str:
        return click.style(text, fg=COLORS[kind], bold=True) if self.color else text

    def bold(self, text: str) -> str:
        return click.style(text, bold=True) if self.color else text


# --- JSON --------------------------------------------------------------------------------


def render_json(report: DriftReport, stream: TextIO, *, color: bool = False) -> None:
    """Write the documented JSON document; non-ASCII is escaped, ``color`` is ignored."""
    json.dump(to_dict(report), stream, indent=2, ensure_ascii=True)
    stream.write("\n")


# --- Markdown ----------------------------------------------------------------------------

GITHUB_BODY_LIMIT = 65_536
"""GitHub refuses issue bodies longer than this (characters)."""
DEFAULT_LIMIT = GITHUB_BODY_LIMIT - 1_536
"""Room for text a nightly job may add around the report."""


@with_registry_defaults
def render_markdown(
    report: DriftReport, stream: TextIO, *, color: bool = False, limit: int = DEFAULT_LIMIT
) -> None:
    """Write an issue body of at most ``limit`` characters; ``color`` is ignored.

    The counts come first and are always complete; the details of each drifted client
    follow in ``<details>`` sections for as long as they fit.
    """
    head = _md_head(report)
    blocks = [_md_details(item) for item in report.clients]
    used = len(head)
    shown: list[str] = []
    for index, block in enumerate(blocks):
        rest = len(blocks) - index - 1
        reserve = len(_md_notice(rest, len(blocks))) if rest else 0
        if used + len(block) + reserve > limit:
            break
        shown.append(block)
        used += len(block)
    stream.write(head)
    stream.write("".join(shown))
    if len(shown) < len(blocks):
        stream.write(_md_notice(len(blocks) - len(shown), len(blocks)))


def _md_head(report: DriftReport) -> str:
    s = report.summary
    rows = [
        ("`~`", "changed", s.changed),
        ("`-`", LEGEND["missing"], s.missing),
        ("`+`", LEGEND["undeclared"], s.undeclared),
        *((("`?`", LEGEND["unreachable"], s.unreachable),) if s.unreachable else ()),
        ("", "differences reported as warnings only", s.warning),
        ("", "in sync", s.in_sync),
        ("", "outside the managed scope (only counted)", s.unmanaged),
    ]
    verdict = (
        f"**{drift_line(report)}** The registry differs from the configuration."
        if report.has_drift
        else "**No drift.** The registry matches the configuration."
    )
    where = "<p>Registry: " + code(report.registry)
    if report.commit:
        where += " &middot; Commit: " + code(report.commit)
    if report.uncommitted:
        # As the plan comment says it: the commit alone would claim its files were read.
        where += " &middot; <strong>uncommitted changes to " + html.escape(
            ", ".join(escape(name) for name in report.uncommitted)) + "</strong>"
    where += " &middot; Checked at: " + code(report.created_at) + "</p>"
    lines = [
        "### oauth2-sync drift",
        "",
        verdict,
        "",
        "| | Drift | Clients |",
        "| --- | --- | ---: |",
        *(f"| {sym} | {label} | {count} |" for sym, label, count in rows),
        "",
        where,
        "",
    ]
    return "\n".join(lines) + "\n"


def _md_details(item: ClientDrift) -> str:
    symbol = SYMBOLS[item.kind]
    where = f" in {code(f'{item.file}:{item.line}')}" if item.file else ""
    count = len(item.fields)
    what = f" ({count} field{'' if count == 1 else 's'})" if item.kind == "changed" else ""
    warning = "" if item.failing else " (warning only)"
    summary = (
        f"<code>{symbol}</code> {code(item.client_id)} {legend(item)}"
        f"{what}{where}{warning}"
    )
    paragraphs = []
    audit = _audit_html(item)
    if audit:
        paragraphs.append(f"<p>{audit}</p>")
    paragraphs.append(f"<p>Fix: {fix(item, code)}.</p>")
    if item.kind == "changed":
        header = "<tr><th>Field</th><th>Files</th><th>Registry</th><th>Policy</th></tr>"
        rows = [
            f"<tr><td>{f.field}</td><td>{cell(f.before, f.field)}</td>"
            f"<td>{cell(f.after, f.field)}</td><td>{f.mode}</td></tr>"
            for f in item.fields
        ]
    else:
        client = declared_or_held(item)
        side = "Registry" if item.kind == "undeclared" else "Files"
        header = f"<tr><th>Field</th><th>{side}</th></tr>"
        rows = [
            f"<tr><td>{name}</td><td>{cell(value, name)}</td></tr>"
            for name, value in (client_fields(client) if client else ())
        ]
    return (
        f"<details><summary>{summary}</summary>\n" + "\n".join(paragraphs) + "\n"
        f"<table>\n{header}\n" + "\n".join(rows) + "\n</table>\n</details>\n\n"
    )


def _audit_html(item: ClientDrift) -> str:
    parts = []
    if item.updated_at or item.updated_by:
        when = f" at {code(item.updated_at)}" if item.updated_at else ""
        who = f" by {code(item.updated_by)}" if item.updated_by else ""
        parts.append(f"Last updated{when}{who}")
    if item.created_at and item.kind == "undeclared":
        parts.append(f"created at {code(item.created_at)}")
    if item.side_reason:
        # In <code> as a whole: it quotes the registry's update time, untrusted text.
        parts.append(code(item.side_reason))
    return "; ".join(parts) + "." if parts else ""


def _md_notice(left_out: int, total: int) -> str:
    return (
        f"<p><strong>Details of {left_out} of {total} drifted clients are not shown</strong>: "
        f"the issue would exceed GitHub's {GITHUB_BODY_LIMIT:,}-character limit. The counts "
        "above are complete; run <code>oauth2-sync drift</code> for every detail.</p>\n"
    )


# --- JUnit -------------------------------------------------------------------------------


def render_junit(report: DriftReport, stream: TextIO, *, color: bool = False) -> None:
    """Write JUnit XML: one test suite per managed partner, one test case per client.

    A client that counts as drift is a failed test case; one with warnings only passes
    and says why in ``system-out``. ``color`` is ignored.
    """
    drifted = {item.client_id: item for item in report.clients}
    by_partner: dict[str, list[str]] = {}
    for client_id, partner in report.checked:
        by_partner.setdefault(partner, []).append(client_id)
    s = report.summary
    root = ET.Element("testsuites", {
        "name": "oauth2-sync drift",
        "tests": str(s.managed),
        "failures": str(s.drifted),
        "errors": "0",
        "skipped": "0",
        "time": "0",
    })
    for partner in sorted(by_partner):
        ids = by_partner[partner]
        failures = sum(1 for i in ids if i in drifted and drifted[i].failing)
        suite = ET.SubElement(root, "testsuite", {
            "name": f"drift.{escape(partner)}",
            "tests": str(len(ids)),
            "failures": str(failures),
            "errors": "0",
            "skipped": "0",
            "time": "0",
            "timestamp": escape(report.created_at.removesuffix("Z")),
        })
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", {"name": "registry", "value": escape(report.registry)})
        if report.commit:
            ET.SubElement(properties, "property", {"name": "commit", "value": escape(report.commit)})
        for client_id in ids:
            _junit_case(suite, partner, client_id, drifted.get(client_id))
    ET.indent(root)
    stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    stream.write(ET.tostring(root, encoding="unicode"))
    stream.write("\n")


def _junit_case(
    suite: ET.Element, partner: str, client_id: str, item: ClientDrift | None
) -> None:
    attrs = {"classname": f"drift.{escape(partner)}", "name": escape(client_id), "time": "0"}
    if item is not None and item.file:
        attrs["file"] = escape(item.file)
        attrs["line"] = str(item.line)
    case = ET.SubElement(suite, "testcase", attrs)
    if item is None:
        return
    fields = ", ".join(f.field for f in item.fields)
    message = legend(item) + (f": {fields}" if fields else "")
    details = _junit_details(item)
    if item.failing:
        failure = ET.SubElement(case, "failure", {"message": message, "type": item.kind})
        failure.text = details
    else:
        out = ET.SubElement(case, "system-out")
        out.text = f"warning only (drift.fields: warn): {message}\n{details}"


def _junit_details(item: ClientDrift) -> str:
    lines = []
    audit = _audit_text(item)
    if audit:
        lines.append(audit)
    if item.kind == "changed":
        lines.extend(
            f"{f.field}: {literal(f.before)} -> {literal(f.after)}"
            + ("" if f.mode == "enforce" else " (policy: warn)")
            for f in item.fields
        )
    elif (client := declared_or_held(item)) is not None:
        side = "registry" if item.kind == "undeclared" else "declared"
        lines.extend(f"{side} {name}: {literal(value)}" for name, value in client_fields(client))
    lines.append(f"fix: {fix(item, escape)}")
    return "\n".join(lines) + "\n"
