"""A plan as a Markdown pull-request comment.

The summary table comes first; each change follows in a collapsible ``<details>``
section. The comment stays under GitHub's 65,536-character limit: when the details
would not fit, the remaining ones are left out with a notice saying how many.

Registry data is untrusted. Every value from the files or the registry is escaped
(``render.escape``), HTML-escaped and set inside ``<code>`` within raw HTML blocks
(no Markdown is parsed there, and GitHub neither links nor mentions inside code), so
a name cannot close the section (``</details>``), inject HTML or links, or notify
people with ``@`` mentions.
"""

from __future__ import annotations

import html
from typing import TextIO

from oauth2_sync.diff import FieldValue, client_fields
from oauth2_sync.plan import Change, Plan
from oauth2_sync.render.common import (
    APPROVAL_LABEL,
    LEGEND,
    SYMBOLS,
    cell,
    code,
    errors_line,
    is_list,
    list_diff,
    matches_line,
    plan_line,
    plural,
    uncommitted_note,
    widening_line,
    with_registry_defaults,
)

GITHUB_COMMENT_LIMIT = 65_536
"""GitHub refuses issue and pull-request comments longer than this (characters)."""
DEFAULT_LIMIT = GITHUB_COMMENT_LIMIT - 1_536
"""Our default budget: room for a header or footer a CI job may add around the plan."""
MAX_ERRORS_SHOWN = 50
"""Errors listed at most (the list comes before the details and is never cut by them)."""


@with_registry_defaults
def render(
    plan: Plan, stream: TextIO, *, color: bool = False, limit: int = DEFAULT_LIMIT
) -> None:
    """Write the comment, at most ``limit`` characters; ``color`` is ignored."""
    head = _head(plan)
    # Widening changes first, under their own heading: they are what a reviewer
    # responsible for access must read; the rest keep their order.
    widening = [c for c in plan.changes if c.risk.risk == "widens"]
    others = [c for c in plan.changes if c.risk.risk != "widens"]
    blocks = [_details(c) for c in widening] + [_details(c) for c in others]
    if widening:
        blocks[0] = f"#### Changes that widen access ({len(widening)})\n\n" + blocks[0]
        if others:
            blocks[len(widening)] = (
                f"#### Other changes ({len(others)})\n\n" + blocks[len(widening)]
            )
    used = len(head)
    shown: list[str] = []
    for index, block in enumerate(blocks):
        rest = len(blocks) - index - 1
        # Leave room for the notice unless this is the last block.
        reserve = len(_notice(rest, len(blocks))) if rest else 0
        if used + len(block) + reserve > limit:
            break
        shown.append(block)
        used += len(block)
    left_out = len(blocks) - len(shown)
    stream.write(head)
    stream.write("".join(shown))
    if left_out:
        stream.write(_notice(left_out, len(blocks)))


def _head(plan: Plan) -> str:
    s = plan.summary
    rows = [
        ("`+`", LEGEND["create"], s.create),
        ("`~`", LEGEND["update"], s.update),
        ("`-`", LEGEND["delete"], s.delete),
        ("", "unchanged", s.no_op),
        *([("", "declared by no file (kept: prune is off)", s.undeclared)] if s.undeclared else []),
        ("", "outside the managed scope (not touched)", s.unmanaged),
    ]
    lines = [
        "### oauth2-sync plan",
        "",
        *_caution(plan),
        f"**{plan_line(plan)}**" if plan.changes else f"**No changes.** {matches_line(plan)}",
        "",
        *_widening(plan),
        *_errors(plan),
        "| | Action | Clients |",
        "| --- | --- | ---: |",
        *(f"| {sym} | {label} | {count} |" for sym, label, count in rows),
        "",
        "<p>Registry: " + code(plan.registry)
        + (" &middot; Commit: " + code(plan.commit) if plan.commit else "")
        + (
            " &middot; <strong>" + html.escape(uncommitted_note(plan).strip(" ()"))
            + "</strong>" if plan.uncommitted else ""
        )
        + (
            " &middot; Targets: " + ", ".join(code(t) for t in plan.targets)
            if plan.targets else ""
        )
        + "</p>",
        "",
    ]
    return "\n".join(lines) + "\n"


def _widening(plan: Plan) -> list[str]:
    """The access review's verdict, right under the counts."""
    text = widening_line(plan)
    if not text:
        return []
    return [f"> [!IMPORTANT]\n> **{html.escape(text)}**: listed first below, with the "
            "reasons.", ""]


def _caution(plan: Plan) -> list[str]:
    """Above all else: apply will refuse this plan after the merge, unless approved."""
    if not plan.exceeded:
        return []
    return [
        "> [!CAUTION]",
        "> **Apply will refuse this plan**: it exceeds the safety limits of the settings.",
        *(f"> - {html.escape(str(limit))}" for limit in plan.exceeded),
        ">",
        "> Raise the limits in `oauth2-sync.yaml`, or approve this plan: a reviewer with "
        f"write access adds the label `{APPROVAL_LABEL}` to this pull request before it is "
        "merged, and the apply job passes `--allow-unsafe`.",
        "",
    ]


def _errors(plan: Plan) -> list[str]:
    """The clients left out, first thing after the counts: they fail the check."""
    if not plan.errors:
        return []
    items = [
        f"<li>{code(f'{d.file}:{d.line}:{d.column}')}: {code(d.message)}</li>"
        for d in plan.errors[:MAX_ERRORS_SHOWN]
    ]
    more = len(plan.errors) - MAX_ERRORS_SHOWN
    if more > 0:
        items.append(f"<li>and {more} more: run <code>oauth2-sync plan</code> for all</li>")
    return [
        f"<p><strong>Error:</strong> {html.escape(errors_line(plan))}</p>",
        "<ul>",
        *items,
        "</ul>",
        "",
    ]


def _details(change: Change) -> str:
    symbol = SYMBOLS[change.action]
    where = f" in {code(f'{change.file}:{change.line}')}" if change.file else ""
    if change.action == "update":
        count = len(change.fields)
        what = f" ({count} field{'' if count == 1 else 's'})"
    else:
        what = ""
    risk = change.risk
    verdict = f" &middot; <strong>{risk.risk} access</strong>" if risk.risk != "neutral" else ""
    summary = (
        f"<code>{symbol}</code> {LEGEND[change.action]} {code(change.client_id)}{what}{where}"
        f"{verdict}"
    )
    reasons = (
        "<ul>\n" + "".join(f"<li>{code(r)}</li>\n" for r in risk.reasons) + "</ul>\n"
        if risk.risk != "neutral" else ""
    )
    if change.action == "update":
        header = "<tr><th>Field</th><th>Before</th><th>After</th></tr>"
        rows = [_update_row(f.field, f.before, f.after, f.effective_unchanged)
                for f in change.fields]
    else:
        client = change.after if change.action == "create" else change.before
        assert client is not None
        header = "<tr><th>Field</th><th>Value</th></tr>"
        rows = [
            f"<tr><td>{name}</td><td>{cell(value, name)}</td></tr>"
            for name, value in client_fields(client)
        ]
    note = (
        "<p>No file declares this client; prune is on.</p>\n"
        if change.action == "delete" else ""
    )
    return (
        f"<details><summary>{summary}</summary>\n"
        f"{note}{reasons}<table>\n{header}\n" + "\n".join(rows) + "\n</table>\n</details>\n\n"
    )


def _update_row(field: str, before: FieldValue, after: FieldValue, same: bool) -> str:
    if not (is_list(before) or is_list(after)):
        return (f"<tr><td>{field}</td><td>{cell(before, field)}</td>"
                f"<td>{cell(after, field, same)}</td></tr>")
    # A set spans both columns, one element per line with + or -, as the text plan.
    items, hidden = list_diff(before, after)
    lines = [f"<code>{sign}</code> {code(value, quoted=True)}" for sign, value in items]
    if hidden:
        lines.append(f"<em>({hidden} unchanged {plural(hidden, 'element')} hidden)</em>")
    return f"<tr><td>{field}</td><td colspan=\"2\">{'<br>'.join(lines)}</td></tr>"


def _notice(left_out: int, total: int) -> str:
    return (
        f"<p><strong>Details of {left_out} of {total} changes are not shown</strong>: "
        f"the comment would exceed GitHub's {GITHUB_COMMENT_LIMIT:,}-character limit. "
        "The counts above are complete; run <code>oauth2-sync plan</code> for every "
        "detail.</p>\n"
    )

