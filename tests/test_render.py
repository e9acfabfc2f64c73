"""Plan renderers: golden outputs, escaping of untrusted data, the comment size limit.

Set UPDATE_GOLDEN=1 to rewrite the files under tests/golden/ (then review the diff).
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest

from oauth2_sync.diff import diff_clients
from oauth2_sync.errors import Diagnostic
from oauth2_sync.model import Client
from oauth2_sync.plan import Change, Plan, safety_violations
from oauth2_sync.planread import from_dict
from oauth2_sync.render import markdown as render_markdown
from oauth2_sync.render import plan as render_plan
from oauth2_sync.render import text as render_text
from oauth2_sync.safetext import escape, printable, quote
from oauth2_sync.settings import Safety

GOLDEN = Path(__file__).parent / "golden"
HOSTILE = (
    "Evil \x1b[2J\x1b]0;pwned\x07 \u202etxt.exe</details></summary><img src=x onerror=alert(1)>"
    " @octocat [click](https://evil.example) <!-- | `tick` **bold** &amp; \r\n"
)

REPORTING = Client(
    "acme-reporting", "Reporting service", "data-team@acme.example", "acme",
    access_token_ttl=43200,
)
BILLING_BEFORE = Client("acme-billing", "Billing", "billing@acme.example", "acme")
BILLING_AFTER = Client(
    "acme-billing", "Billing sync", "billing@acme.example", "acme",
    scopes=("read", "write"), access_token_ttl=43200, refresh_token_ttl=604800,
)
OLD = Client(
    "acme-old", "Old portal", "old@acme.example", "acme",
    grant_types=("authorization_code",), redirect_uris=("https://old.acme.example/cb",),
    access_token_ttl=-1,
)
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def make_plan(
    *changes: Change, no_op: int = 5, unmanaged: int = 2, errors: tuple[Diagnostic, ...] = ()
) -> Plan:
    return Plan(
        registry="local:/srv/registry.db",
        changes=changes,
        no_op=no_op,
        unmanaged=unmanaged,
        managed=8,
        versions=(("acme-billing", 'W/"7"'), ("acme-old", 'W/"3"')),
        commit=COMMIT,
        prune=True,
        errors=errors,
        created_at="2024-05-01T12:00:00Z",
        settings_sha256="5d41402abc4b2a76b9719d911017c592" * 2,
        files=(("clients/acme.yaml", "7d793037a0760186574b0282f2f435e7" * 2),),
    )


SAMPLE = make_plan(
    Change(
        "update", "acme-billing", before=BILLING_BEFORE, after=BILLING_AFTER,
        fields=diff_clients(BILLING_BEFORE, BILLING_AFTER), version='W/"7"',
        file="clients/acme.yaml", line=12,
    ),
    Change("delete", "acme-old", before=OLD, version='W/"3"'),
    Change("create", "acme-reporting", after=REPORTING, file="clients/acme.yaml", line=2),
)
NO_CHANGES = make_plan()
LEFT_OUT = (
    Diagnostic(
        "clients/acme.yaml", 20, 3, "error", "registry-unsupported",
        "client acme-batch: the registry does not support grant type 'password' "
        "(it supports authorization_code, refresh_token)",
    ),
    Diagnostic(
        "clients/acme.yaml", 31, 3, "error", "registry-unsupported",
        "client acme-kiosk: the registry does not support grant type 'password' "
        "(it supports authorization_code, refresh_token)",
    ),
)
WITH_ERRORS = make_plan(*SAMPLE.changes[2:], errors=LEFT_OUT)
NO_CHANGES_WITH_ERRORS = make_plan(errors=LEFT_OUT[:1])
UNSAFE = SAMPLE._replace(exceeded=tuple(safety_violations(SAMPLE, Safety(max_changes=1, max_deletes=0)))
)

# Through render.plan, the renderers' one entry-point convention: the goldens hold.
RENDERERS = {
    "txt": render_plan.render_text, "json": render_plan.render_json,
    "md": render_plan.render_markdown,
}


def rendered(plan: Plan, kind: str, *, color: bool = False) -> str:
    out = io.StringIO()
    RENDERERS[kind](plan, out, color=color)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "plan", "kind", "color"),
    [
        ("plan.txt", SAMPLE, "txt", False),
        ("plan-color.txt", SAMPLE, "txt", True),
        ("plan.json", SAMPLE, "json", False),
        ("plan.md", SAMPLE, "md", False),
        ("no-changes.txt", NO_CHANGES, "txt", False),
        ("no-changes.md", NO_CHANGES, "md", False),
        ("left-out.txt", WITH_ERRORS, "txt", False),
        ("left-out.json", WITH_ERRORS, "json", False),
        ("left-out.md", WITH_ERRORS, "md", False),
        ("left-out-no-changes.txt", NO_CHANGES_WITH_ERRORS, "txt", False),
        ("left-out-no-changes.md", NO_CHANGES_WITH_ERRORS, "md", False),
        ("unsafe.txt", UNSAFE, "txt", False),
        ("unsafe.json", UNSAFE, "json", False),
        ("unsafe.md", UNSAFE, "md", False),
    ],
)
def test_golden(name: str, plan: Plan, kind: str, color: bool) -> None:
    output = rendered(plan, kind, color=color)
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(output, encoding="utf-8")
    assert output == path.read_text(encoding="utf-8")


def test_text_uses_terraform_wording() -> None:
    output = rendered(SAMPLE, "txt")
    assert "  + create\n  ~ update in-place\n  - destroy\n" in output
    assert "Plan: 1 to add, 1 to change, 1 to destroy.\n" in output
    assert rendered(NO_CHANGES, "txt").count("No changes.") == 1
    assert "\x1b" not in output


def test_text_is_coloured_only_when_asked() -> None:
    assert "\x1b[32m" in rendered(SAMPLE, "txt", color=True)
    assert "\x1b" not in rendered(SAMPLE, "txt", color=False)


def test_the_json_output_is_a_loadable_plan() -> None:
    document = json.loads(rendered(SAMPLE, "json"))
    assert from_dict(document) == SAMPLE
    assert "exceeded_limits" not in document  # optional: only when a limit is exceeded
    assert from_dict(json.loads(rendered(UNSAFE, "json"))) == UNSAFE
    assert [c["action"] for c in document["changes"]] == ["update", "delete", "create"]
    assert document["changes"][0]["fields"][2] == {
        "field": "access_token_ttl", "before": None, "after": 43200, "effective_unchanged": True,
        "risk": "neutral", "reasons": ["access token lifetime 12h -> 12h (effective value unchanged)"],
    }
    assert document["changes"][0]["risk"] == "widens"
    assert document["changes"][0]["reasons"] == ["scope 'write' added"]


def hostile_plan() -> Plan:
    evil_before = Client(
        "acme-evil", HOSTILE, "x@acme.example", "acme",
        redirect_uris=("https://evil.example/cb?x=</details>",),
    )
    evil_after = Client("acme-evil", "Evil", "x@acme.example", "acme")
    return make_plan(
        Change("delete", "acme-old\x1b[31m</details>@team", before=OLD, version="v\x1b[0m"),
        Change(
            "update", "acme-evil", before=evil_before, after=evil_after,
            fields=diff_clients(evil_before, evil_after), version="1",
        ),
        # Registries name what they support: a hostile one names anything.
        errors=(Diagnostic("clients/x.yaml", 1, 3, "error", "registry-unsupported", HOSTILE),),
    )


def test_text_output_escapes_terminal_control_sequences() -> None:
    output = rendered(hostile_plan(), "txt")
    assert not any(
        ch in output for ch in ("\x1b", "\x07", "\r", "\u202e")
    )
    assert '"Evil \\x1b[2J\\x1b]0;pwned\\x07 \\u202etxt.exe</details>' in output


def test_markdown_output_is_safe_against_injection() -> None:
    output = rendered(hostile_plan(), "md")
    # Our own sections only: two changes, two closing tags.
    assert output.count("</details>") == 2
    assert output.count("<details>") == 2
    outside_code = re.sub(r"<code>.*?</code>", "", output)
    for fragment in ("@", "<img", "](", "<!--", "\x1b", "\u202e", "`tick`", "**bold**"):
        assert fragment not in outside_code
    for fragment in ("<img", "</summary><", "<!--", "\x1b", "\r"):
        assert fragment not in output
    assert "&lt;img src=x onerror=alert(1)&gt;" in output
    # No blank line inside a section: it would end the raw HTML block.
    for section in re.findall(r"<details>.*?</details>", output, re.S):
        assert "\n\n" not in section


def test_markdown_stays_under_the_comment_limit_with_a_notice() -> None:
    creates = tuple(
        Change("create", f"acme-svc{i:05d}", after=Client(
            f"acme-svc{i:05d}", f"Service {i}", "team@acme.example", "acme",
        ), file="clients/acme.yaml", line=2 + 5 * i)
        for i in range(2000)
    )
    output = rendered(make_plan(*creates), "md")
    assert len(output) <= render_markdown.DEFAULT_LIMIT < render_markdown.GITHUB_COMMENT_LIMIT
    shown = output.count("</details>")
    assert 0 < shown < 2000
    assert output.endswith(
        f"<p><strong>Details of {2000 - shown} of 2000 changes are not shown</strong>: "
        "the comment would exceed GitHub's 65,536-character limit. The counts above are "
        "complete; run <code>oauth2-sync plan</code> for every detail.</p>\n"
    )
    assert "| `+` | create | 2000 |" in output


@pytest.mark.parametrize("limit", [1500, 2500, 4000])
def test_markdown_truncation_respects_any_limit(limit: int) -> None:
    out = io.StringIO()
    render_markdown.render(SAMPLE, out, limit=limit)
    assert len(out.getvalue()) <= limit


def test_a_long_value_is_cut_in_markdown() -> None:
    long = Client("acme-long", "n" * 1000, "x@acme.example", "acme")
    output = rendered(make_plan(Change("create", "acme-long", after=long)), "md")
    assert f"<code>&quot;{'n' * 300}… (700 more characters)&quot;</code>" in output


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ('a"b\\c', 'a\\"b\\\\c'),
        ("tab\there\nnew", "tab\\there\\nnew"),
        ("\x00\x7f\x9b", "\\x00\\x7f\\x9b"),
        ("nb\u00a0sp zw\u200bj bidi\u202e", "nb\\xa0sp zw\\u200bj bidi\\u202e"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("é ü 中", "é ü 中"),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped
    assert quote(raw) == f'"{escaped}"'


def test_printable_keeps_quotes_and_escapes_controls() -> None:
    assert printable('say "hi"\x1b[0m') == 'say "hi"\\x1b[0m'


def test_clients_left_out_on_one_line_are_counted_apart() -> None:
    flow = tuple(
        Diagnostic("clients/flow.yaml", 1, column, "error", "registry-unsupported", "nope")
        for column in (11, 117)
    )
    assert render_text.errors_line(make_plan(errors=flow)) == (
        "2 clients are left out of this plan: the registry cannot hold them."
    )


def test_clients_the_registry_refused_to_show_are_said_apart() -> None:
    refused = Diagnostic(
        "clients/acme.yaml", 40, 3, "error", "registry-unreachable",
        "reading client acme-gone: the registry refused the registration access token",
    )
    assert render_text.errors_line(make_plan(errors=(refused,))) == (
        "1 client is left out of this plan: the registry refused to show it."
    )
    assert render_text.errors_line(make_plan(errors=(refused, *LEFT_OUT))) == (
        "3 clients are left out of this plan: the registry cannot hold 2 and refused to "
        "show 1."
    )


STANDARD = make_plan(
        Change("create", "acme-billing", after=BILLING_BEFORE, file="clients/acme.yaml", line=2),
        Change(
            "update", "acme-billing", before=BILLING_AFTER,
            after=BILLING_AFTER._replace(access_token_ttl=None),
            fields=diff_clients(
                BILLING_AFTER, BILLING_AFTER._replace(access_token_ttl=None), (43200, None)
            ),
            version='W/"7"', file="clients/acme.yaml", line=12,
        ),
    )._replace(
    registry="rfc7592+https://id.example/reg", ttl_defaults=(43200, None),
)


def test_lifetimes_are_explained_with_the_registrys_own_defaults() -> None:
    text = rendered(STANDARD, "txt")
    # The declared access-token default, and no invented refresh-token default.
    assert "      + access_token_ttl          = null # platform default, 12h\n" in text
    assert "      + refresh_token_ttl         = null # the registry's default\n" in text
    assert "      ~ access_token_ttl = 43200 -> null # effective value unchanged (12h)\n" in text
    assert "30d" not in text
    md = rendered(STANDARD, "md")
    assert (
        "<tr><td>refresh_token_ttl</td><td><code>null</code> (the registry's default)</td></tr>"
    ) in md
    # Saved and loaded, the plan keeps them; a reference plan's document has no such key.
    document = json.loads(rendered(STANDARD, "json"))
    assert document["ttl_defaults"] == {"access_token_ttl": 43200, "refresh_token_ttl": None}
    assert from_dict(document).ttl_defaults == (43200, None)
    assert "ttl_defaults" not in json.loads(rendered(SAMPLE, "json"))


def test_an_unknown_default_never_has_the_same_effect() -> None:
    pinned = BILLING_AFTER._replace(refresh_token_ttl=30 * 86400)
    unpinned = BILLING_AFTER._replace(refresh_token_ttl=None)
    [change] = diff_clients(pinned, unpinned, (43200, None))
    assert not change.effective_unchanged
    [change] = diff_clients(pinned, unpinned)
    assert change.effective_unchanged
