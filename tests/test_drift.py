"""Drift: the report (declared clients from real files, hand-built registry), its four
renderers (golden files, injection safety) and the ``drift`` command's exit codes.

Set UPDATE_GOLDEN=1 to rewrite the files under tests/golden/drift/ (then review the diff).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.configrepo import client, commit_all, write_repo

from oauth2_sync.cli import cli
from oauth2_sync.drift import (
    ClientDrift,
    DriftReport,
    FieldDrift,
    Side,
    build_drift,
    locate_sides,
    make_drift,
    to_dict,
)
from oauth2_sync.gitinfo import git_uncommitted, last_commit_time
from oauth2_sync.model import Client
from oauth2_sync.registry.base import Partner, RegistryState, RemoteClient, Unreachable
from oauth2_sync.registry.local import LocalRegistry
from oauth2_sync.render import drift as render
from oauth2_sync.settings import Settings, load_settings
from oauth2_sync.validation import DesiredClient, load_desired

GOLDEN = Path(__file__).parent / "golden" / "drift"
PARTNERS = (
    Partner(1, "acme", "Acme", ()),
    Partner(2, "globex", "Globex", ()),
    Partner(3, "umbrella", "Umbrella", ()),
)
PORTAL = client(
    "acme-portal", grant_types=("authorization_code",),
    redirect_uris=("https://portal.acme.example/cb",),
)
REPORTING = client("acme-reporting", access_token_ttl=43200)
ETL = client("globex-etl")
LAB = client("umbrella-lab")
HOSTILE = (
    "Evil \x1b[2J\x1b]0;pwned\x07 \u202etxt.exe</details></summary><img src=x onerror=alert(1)>"
    " @octocat [click](https://evil.example) <!-- | `tick` **bold** &amp; \r\n"
)


def setup(
    tmp_path: Path, desired: Sequence[Client], **extra: object
) -> tuple[Settings, tuple[DesiredClient, ...]]:
    settings = load_settings(write_repo(tmp_path, desired, extra=extra))
    return settings, load_desired(settings)


def remote(c: Client, version: int = 1, **audit: str) -> RemoteClient:
    return RemoteClient(c, str(version), **audit)


def state(*clients: RemoteClient) -> RegistryState:
    return RegistryState("local:/registry.db", PARTNERS, clients)


# --- what counts as drift ----------------------------------------------------------------


def test_no_drift_when_the_registry_matches(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [PORTAL, REPORTING, ETL])
    report = build_drift(
        desired, state(remote(PORTAL), remote(REPORTING), remote(ETL), remote(LAB)), settings
    )
    assert report.clients == ()
    assert not report.has_drift
    assert dataclasses.astuple(report.summary) == (0, 0, 0, 0, 3, 0, 3, 1, 0)
    assert report.checked == (
        ("acme-portal", "acme"), ("acme-reporting", "acme"), ("globex-etl", "globex"),
    )


def test_the_three_kinds_of_drift(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [PORTAL, REPORTING, ETL])
    edited = PORTAL._replace(redirect_uris=("https://evil.example/cb",))
    handmade = client("acme-handmade")
    report = build_drift(
        desired,
        state(
            remote(edited, 7, updated_at="2024-05-01T10:00:00Z", updated_by="mallory"),
            remote(ETL),
            remote(handmade, 9, created_at="2024-05-01T11:00:00Z"),
            remote(LAB),
        ),
        settings,
    )
    kinds = [(d.kind, d.client_id) for d in report.clients]
    assert kinds == [
        ("undeclared", "acme-handmade"), ("changed", "acme-portal"), ("missing", "acme-reporting"),
    ]
    changed = report.clients[1]
    assert changed.fields == (
        FieldDrift(
            "redirect_uris", ("https://portal.acme.example/cb",), ("https://evil.example/cb",)
        ),
    )
    assert (changed.version, changed.updated_at, changed.updated_by) == (
        "7", "2024-05-01T10:00:00Z", "mallory",
    )
    assert changed.file is not None and changed.file.endswith("clients/acme/clients.yaml")
    assert changed.line == 2
    assert report.clients[0].after == handmade and report.clients[0].before is None
    assert report.clients[0].created_at == "2024-05-01T11:00:00Z"
    assert report.clients[2].before == REPORTING and report.clients[2].after is None
    assert report.has_drift
    assert dataclasses.astuple(report.summary) == (1, 1, 1, 0, 1, 0, 4, 1, 0)


def test_field_policy_warn_reports_without_failing(tmp_path: Path) -> None:
    settings, desired = setup(
        tmp_path, [PORTAL, ETL], drift={"fields": {"name": "warn", "email": "ignore"}}
    )
    renamed = PORTAL._replace(name="Renamed", email="new@acme.example")
    report = build_drift(desired, state(remote(renamed), remote(ETL)), settings)
    (item,) = report.clients
    assert item.fields == (FieldDrift("name", PORTAL.name, "Renamed", "warn"),)
    assert not item.failing
    assert not report.has_drift
    assert report.summary.warning == 1
    assert report.policy == (("email", "ignore"), ("name", "warn"))


def test_field_policy_ignore_counts_the_client_in_sync(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [PORTAL], drift={"fields": {"name": "ignore"}})
    report = build_drift(
        desired, state(remote(PORTAL._replace(name="Renamed"))), settings
    )
    assert report.clients == ()
    assert (report.summary.in_sync, report.summary.ignored) == (1, 1)


def test_an_enforced_field_beside_a_warned_one_fails(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [PORTAL], drift={"fields": {"name": "warn"}})
    edited = PORTAL._replace(name="Renamed", scopes=("read", "write"))
    report = build_drift(desired, state(remote(edited)), settings)
    assert [(f.field, f.mode) for f in report.clients[0].fields] == [
        ("name", "warn"), ("scopes", "enforce"),
    ]
    assert report.has_drift


def test_missing_and_undeclared_clients_fail_whatever_the_field_policy(tmp_path: Path) -> None:
    every_field_ignored = dict.fromkeys(
        ("name", "email", "restrict_to_partner_users", "scopes", "grant_types",
         "redirect_uris", "access_token_ttl", "refresh_token_ttl"), "ignore",
    )
    settings, desired = setup(tmp_path, [PORTAL], drift={"fields": every_field_ignored})
    report = build_drift(desired, state(remote(client("acme-extra"))), settings)
    assert [(d.kind, d.failing) for d in report.clients] == [
        ("undeclared", True), ("missing", True),
    ]


def test_null_and_pinned_default_lifetime_differ_with_same_effect(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [REPORTING])
    unpinned = REPORTING._replace(access_token_ttl=None)
    report = build_drift(desired, state(remote(unpinned)), settings)
    assert report.clients[0].fields == (
        FieldDrift("access_token_ttl", 43200, None, "enforce", effective_unchanged=True),
    )


def test_the_registry_s_own_default_lifetimes_decide_the_same_effect(tmp_path: Path) -> None:
    # 43200 is the platform default: against a registry whose default is an hour, a
    # pinned 12 hours does change what the registry applies.
    settings, desired = setup(tmp_path, [REPORTING])
    unpinned = REPORTING._replace(access_token_ttl=None)
    report = build_drift(desired, state(remote(unpinned)), settings, ttl_defaults=(3600, None))
    assert report.clients[0].fields == (
        FieldDrift("access_token_ttl", 43200, None, "enforce", effective_unchanged=False),
    )
    assert report.ttl_defaults == (3600, None)


def test_declared_client_held_under_an_unmanaged_partner_is_changed(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [PORTAL])
    moved = PORTAL._replace(partner="umbrella")
    report = build_drift(desired, state(remote(moved)), settings)
    assert [(d.kind, [f.field for f in d.fields]) for d in report.clients] == [
        ("changed", ["partner"]),
    ]
    assert report.unmanaged == 0


def test_clients_outside_the_managed_scope_are_only_counted(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [ETL])
    report = build_drift(
        desired, state(remote(ETL), remote(LAB), remote(client("umbrella-x"))), settings
    )
    assert report.clients == ()
    assert report.unmanaged == 2


# --- renderers ---------------------------------------------------------------------------

EDITED = PORTAL._replace(redirect_uris=("https://evil.example/cb", "https://portal.acme.example/cb"),
    name="Portal (edited)",
)
SAMPLE = DriftReport(
    registry="https://registry.example/v1",
    clients=(
        ClientDrift(
            "undeclared", "acme-handmade", "acme", after=client("acme-handmade"), version="9",
            created_at="2024-05-01T11:00:00Z", updated_at="2024-05-01T11:00:00Z",
            updated_by="admin",
        ),
        ClientDrift(
            "changed", "acme-portal", "acme", before=PORTAL, after=EDITED,
            fields=(
                FieldDrift("name", PORTAL.name, EDITED.name, "warn"),
                FieldDrift("redirect_uris", PORTAL.redirect_uris, EDITED.redirect_uris),
            ),
            file="clients/acme/portal.yaml", line=2, version="7",
            updated_at="2024-05-01T10:00:00Z", updated_by="mallory",
        ),
        ClientDrift(
            "changed", "acme-reporting", "acme", before=REPORTING,
            after=REPORTING._replace(access_token_ttl=None),
            fields=(FieldDrift("access_token_ttl", 43200, None, "enforce", True),),
            file="clients/acme/reporting.yaml", line=4, version="3",
        ),
        ClientDrift(
            "missing", "globex-etl", "globex", before=ETL, file="clients/globex/etl.yaml", line=2,
        ),
        ClientDrift(
            "changed", "globex-wiki", "globex", before=client("globex-wiki"),
            after=client("globex-wiki", name="Wiki"),
            fields=(FieldDrift("name", "Service globex-wiki", "Wiki", "warn"),),
            file="clients/globex/wiki.yaml", line=2, version="5",
        ),
    ),
    checked=(
        ("acme-billing", "acme"), ("acme-handmade", "acme"), ("acme-portal", "acme"),
        ("acme-reporting", "acme"), ("globex-etl", "globex"), ("globex-wiki", "globex"),
    ),
    unmanaged=2,
    ignored=0,
    policy=(("name", "warn"),),
    commit="0123456789abcdef0123456789abcdef01234567",
    created_at="2024-05-02T03:00:00Z",
)
SIDES: dict[str, tuple[Side, str]] = {
    "acme-portal": ("registry", "updated in the registry at 2024-05-01T10:00:00Z, after the "
                    "file's last commit at 2024-05-01T09:00:00+00:00"),
    "acme-reporting": ("unknown", "cannot tell which side changed: the registry records no "
                       "update time"),
    "globex-wiki": ("files", "its file has uncommitted changes"),
}
LOCATED = dataclasses.replace(
    SAMPLE, uncommitted=("clients/globex/wiki.yaml",),
    clients=tuple(
        dataclasses.replace(item, side=SIDES[item.client_id][0],
                            side_reason=SIDES[item.client_id][1])
        if item.client_id in SIDES else item
        for item in SAMPLE.clients
    ),
)
"""SAMPLE as ``locate_sides`` leaves it in a git repository: each changed client's side."""
NO_DRIFT = DriftReport(
    registry="https://registry.example/v1", clients=(),
    checked=(("acme-billing", "acme"), ("globex-etl", "globex")), unmanaged=1, ignored=1,
    created_at="2024-05-02T03:00:00Z",
)
def test_a_missing_client_the_registry_cannot_hold_says_so_in_every_format(
    tmp_path: Path,
) -> None:
    settings, desired = setup(tmp_path, [REPORTING, ETL])
    reason = f"client acme-reporting: grant type 'password' {HOSTILE}"
    report = build_drift(
        desired, state(remote(ETL)), settings,
        unsupported=lambda c: [reason] if c.partner == "acme" else [],
    )
    (missing,) = report.clients
    assert (missing.kind, missing.unsupported) == ("missing", (reason,))
    assert to_dict(report)["clients"][0]["unsupported"] == [reason]
    text = rendered(report, "txt")
    assert (
        "      # fix: the registry cannot hold it (client acme-reporting: grant type "
        "'password' Evil \\x1b[2J" in text
    )
    assert "change its declaration or remove it\n" in text
    assert "apply creates it again" not in text
    for kind in ("md", "xml"):
        output = rendered(report, kind)
        assert "the registry cannot hold it" in output
        assert "apply creates it again" not in output
        assert "\x1b" not in output and "<img" not in output


def test_an_unreachable_client_is_its_own_kind_in_every_format(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [REPORTING, ETL])
    reason = (
        "reading client acme-reporting: the registry refused the registration access "
        f"token {HOSTILE}; if it is gone, run `oauth2-sync forget acme-reporting`"
    )
    gone = RegistryState(
        "rfc7592+http://127.0.0.1:9/reg", PARTNERS, (remote(ETL),),
        (Unreachable("acme-reporting", reason), Unreachable("acme-orphan", "refused")),
    )
    report = build_drift(desired, gone, settings, ttl_defaults=(None, None))
    assert [(d.kind, d.client_id, d.reason) for d in report.clients] == [
        ("unreachable", "acme-orphan", "refused"),
        ("unreachable", "acme-reporting", reason),
    ]
    assert report.has_drift
    assert report.summary.unreachable == 2 and report.summary.missing == 0
    document = to_dict(report)
    assert document["summary"].get("unreachable") == 2
    assert document["clients"][1]["reason"] == reason
    assert "unreachable" not in to_dict(SAMPLE)["summary"]
    text = rendered(report, "txt")
    assert "Drift: 0 changed, 0 missing, 0 undeclared, 2 unreachable.\n" in text
    assert '  ? client "acme-reporting" refused by the registry' in text
    assert "run `oauth2-sync forget acme-reporting`\n" in text
    # The declared client is shown with the registry's (unknown) default lifetimes.
    assert "refresh_token_ttl         = null # the registry's default\n" in text
    for kind in ("md", "xml"):
        output = rendered(report, kind)
        assert "refused by the registry" in output
        assert "oauth2-sync forget acme-reporting" in output
        assert "\x1b" not in output and "<img" not in output


RENDERERS = {
    "txt": render.render_text, "json": render.render_json,
    "md": render.render_markdown, "xml": render.render_junit,
}


def rendered(report: DriftReport, kind: str, *, color: bool = False) -> str:
    out = io.StringIO()
    RENDERERS[kind](report, out, color=color)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "report", "kind", "color"),
    [
        ("drift.txt", SAMPLE, "txt", False),
        ("drift-color.txt", SAMPLE, "txt", True),
        ("drift.json", SAMPLE, "json", False),
        ("drift.md", SAMPLE, "md", False),
        ("drift.xml", SAMPLE, "xml", False),
        ("drift-sides.txt", LOCATED, "txt", False),
        ("drift-sides.md", LOCATED, "md", False),
        ("drift-sides.xml", LOCATED, "xml", False),
        ("no-drift.txt", NO_DRIFT, "txt", False),
        ("no-drift.md", NO_DRIFT, "md", False),
        ("no-drift.xml", NO_DRIFT, "xml", False),
    ],
)
def test_golden(name: str, report: DriftReport, kind: str, color: bool) -> None:
    output = rendered(report, kind, color=color)
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(output, encoding="utf-8")
    assert output == path.read_text(encoding="utf-8")


def test_text_lines_and_colour() -> None:
    output = rendered(SAMPLE, "txt")
    assert "Drift: 2 changed, 1 missing, 1 undeclared.\n" in output
    assert "1 with warnings only; 1 in sync; 2 outside the managed scope (only counted).\n" in output
    assert "\x1b" not in output
    assert "\x1b[33m" in rendered(SAMPLE, "txt", color=True)


def test_json_document() -> None:
    document = json.loads(rendered(SAMPLE, "json"))
    assert document == to_dict(SAMPLE)
    assert document["format_version"] == 1
    assert document["drift"] is True
    assert document["summary"] == {
        "changed": 2, "missing": 1, "undeclared": 1, "warning": 1, "in_sync": 1,
        "ignored": 0, "managed": 6, "unmanaged": 2,
    }
    assert document["clients"][1]["fields"][1] == {
        "field": "redirect_uris", "before": ["https://portal.acme.example/cb"],
        "after": ["https://evil.example/cb", "https://portal.acme.example/cb"],
        "mode": "enforce", "effective_unchanged": False,
    }


def test_junit_has_one_case_per_managed_client() -> None:
    root = ET.fromstring(rendered(SAMPLE, "xml"))
    assert (root.get("tests"), root.get("failures")) == ("6", "4")
    cases = {str(c.get("name")): c for c in root.iter("testcase")}
    assert sorted(cases) == [cid for cid, _ in SAMPLE.checked]
    failed = sorted(n for n, c in cases.items() if c.find("failure") is not None)
    assert failed == ["acme-handmade", "acme-portal", "acme-reporting", "globex-etl"]
    portal = cases["acme-portal"].find("failure")
    assert portal is not None
    assert portal.get("message") == "changed in the registry: name, redirect_uris"
    wiki = cases["globex-wiki"].find("system-out")
    assert wiki is not None and wiki.text is not None
    assert wiki.text.startswith("warning only (drift.fields: warn): changed in the registry: name")


def hostile_report() -> DriftReport:
    evil = Client(
        "acme-evil", HOSTILE, "x@acme.example", "acme",
        grant_types=("authorization_code",),
        redirect_uris=("https://evil.example/cb?x=</details>",),
    )
    good = client("acme-evil")
    return DriftReport(
        registry="https://registry.example/v1",
        clients=(
            ClientDrift(
                "changed", "acme-evil", "acme", before=good, after=evil,
                fields=(FieldDrift("name", good.name, HOSTILE),), version="1",
                updated_by="@octocat</details>\x1b[31m", updated_at="\x07now",
            ),
            ClientDrift("undeclared", "acme-x", "acme", after=evil, updated_by="<b>@team</b>"),
        ),
        checked=(("acme-evil", "acme"), ("acme-x", "acme")),
        unmanaged=0, ignored=0, created_at="2024-05-02T03:00:00Z",
    )


def test_text_escapes_terminal_control_sequences() -> None:
    output = rendered(hostile_report(), "txt")
    assert not any(ch in output for ch in ("\x1b", "\x07", "\r", "\u202e"))
    assert '"Evil \\x1b[2J\\x1b]0;pwned\\x07 \\u202etxt.exe</details>' in output
    assert 'last updated at \\x07now by "@octocat</details>\\x1b[31m"' in output


def test_markdown_is_safe_against_injection() -> None:
    output = rendered(hostile_report(), "md")
    assert output.count("<details>") == output.count("</details>") == 2
    outside_code = re.sub(r"<code>.*?</code>", "", output)
    for fragment in ("@", "<img", "](", "<!--", "\x1b", "\u202e", "`tick`", "**bold**", "<b>"):
        assert fragment not in outside_code
    for fragment in ("<img", "</summary><", "<!--", "\x1b", "\x07", "\r", "<b>"):
        assert fragment not in output
    assert "&lt;img src=x onerror=alert(1)&gt;" in output
    for section in re.findall(r"<details>.*?</details>", output, re.S):
        assert "\n\n" not in section


def test_junit_is_well_formed_xml_without_control_characters() -> None:
    output = rendered(hostile_report(), "xml")
    root = ET.fromstring(output)
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", output)
    failure = root.find(".//testcase[@name='acme-evil']/failure")
    assert failure is not None and failure.text is not None
    assert '\\x1b[2J' in failure.text


def test_markdown_stays_under_the_issue_limit_with_a_notice() -> None:
    many = tuple(
        ClientDrift("missing", f"acme-svc{i:05d}", "acme", before=client(f"acme-svc{i:05d}"),
                    file="clients/acme/clients.yaml", line=2 + 5 * i)
        for i in range(2000)
    )
    report = dataclasses.replace(
        NO_DRIFT, clients=many, checked=tuple((d.client_id, "acme") for d in many)
    )
    output = rendered(report, "md")
    assert len(output) <= render.DEFAULT_LIMIT < render.GITHUB_BODY_LIMIT
    shown = output.count("</details>")
    assert 0 < shown < 2000
    assert output.endswith(
        f"<p><strong>Details of {2000 - shown} of 2000 drifted clients are not shown</strong>: "
        "the issue would exceed GitHub's 65,536-character limit. The counts above are "
        "complete; run <code>oauth2-sync drift</code> for every detail.</p>\n"
    )
    assert "| `-` | missing from the registry | 2000 |" in output


# --- the command -------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


SEED = """\
partners:
  - {id: 1, subdomain: acme, name: Acme}
  - {id: 2, subdomain: globex, name: Globex}
  - {id: 3, subdomain: umbrella, name: Umbrella}
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config repo whose embedded registry holds its clients and one unmanaged client."""
    write_repo(tmp_path, [PORTAL, ETL])
    (tmp_path / "seed.yaml").write_text(SEED)
    registry = LocalRegistry(tmp_path / ".oauth2-sync" / "registry.db", tmp_path / "seed.yaml")
    try:
        for c in (PORTAL, ETL, LAB):
            registry.create_client(c)
    finally:
        registry.close()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_command_exit_codes(repo: Path) -> None:
    code, out, err = run("drift")
    assert (code, err) == (0, "")
    assert "No drift. The registry matches the configuration.\n" in out
    registry = LocalRegistry(repo / ".oauth2-sync" / "registry.db")
    try:
        current = registry.get_client("acme-portal")
        assert current is not None
        registry.replace_client(current.client._replace(name="Edited"), current.version)
    finally:
        registry.close()
    code, out, err = run("drift", "--format", "json")
    assert (code, err) == (2, "")
    assert json.loads(out)["summary"]["changed"] == 1
    code, out, _ = run("drift", "--format", "junit")
    assert code == 2
    assert ET.fromstring(out).get("failures") == "1"


def test_command_error_exit_code(repo: Path) -> None:
    (repo / "clients" / "acme" / "clients.yaml").write_text("clients: [\n")
    code, out, err = run("drift")
    assert code == 1
    assert out == ""
    assert err.startswith("clients/acme/clients.yaml:")


# --- provenance: which side differs ------------------------------------------------------


def test_an_uncommitted_edit_is_never_reported_as_changed_in_the_registry(
    tmp_path: Path,
) -> None:
    settings, _ = setup(tmp_path, [PORTAL, REPORTING])
    commit_all(tmp_path, date="2024-05-01T09:00:00Z")
    # The file is edited and not committed; the registry holds what was committed.
    edited = REPORTING._replace(name="Reports v2")
    settings, desired = setup(tmp_path, [PORTAL, edited])
    registry = state(
        remote(PORTAL, updated_at="2024-05-01T08:00:00Z"),
        remote(REPORTING, updated_at="2024-05-01T08:00:00Z"),
    )
    report = locate_sides(build_drift(desired, registry, settings), settings,
                          git_uncommitted(settings.root, settings.read_patterns))
    assert report.uncommitted == ("clients/acme/clients.yaml",)
    (item,) = report.clients
    assert (item.side, item.side_reason) == ("files", "its file has uncommitted changes")
    out = io.StringIO()
    render.render_text(report, out)
    text = out.getvalue()
    assert "changed in the registry" not in text
    assert (
        '  ~ client "acme-reporting" differs from the registry: its file changed '
        f"({item.file}:15)\n"
        '      # last updated at 2024-05-01T08:00:00Z; its file has uncommitted changes\n'
    ) in text
    assert "Commit: none (uncommitted changes to clients/acme/clients.yaml)\n" in text
    assert to_dict(report)["clients"][0]["side"] == "files"


def test_the_side_follows_the_registry_update_against_the_file_commit(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [PORTAL, REPORTING])
    commit_all(tmp_path, date="2024-05-01T09:00:00Z")
    edited = PORTAL._replace(name="Edited by hand")
    renamed = REPORTING._replace(name="Old name")
    registry = state(
        remote(edited, updated_at="2024-05-01T10:00:00Z", updated_by="mallory"),
        remote(renamed, updated_at="2024-05-01T08:00:00Z"),
    )
    report = locate_sides(build_drift(desired, registry, settings), settings,
                          git_uncommitted(settings.root, settings.read_patterns))
    assert report.uncommitted == ()
    assert [(d.client_id, d.side, d.side_reason) for d in report.clients] == [
        ("acme-portal", "registry", "updated in the registry at 2024-05-01T10:00:00Z, after "
         "the file's last commit at 2024-05-01T09:00:00+00:00"),
        ("acme-reporting", "files", "the file was committed at 2024-05-01T09:00:00+00:00, "
         "after the registry's last update at 2024-05-01T08:00:00Z: not applied yet"),
    ]
    out = io.StringIO()
    render.render_text(report, out)
    assert '  ~ client "acme-portal" changed in the registry (' in out.getvalue()


def test_without_an_update_time_the_side_is_unknown(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [PORTAL])
    commit_all(tmp_path)
    edited = PORTAL._replace(name="Edited")
    report = locate_sides(build_drift(desired, state(remote(edited)), settings), settings, ())
    assert [(d.side, d.side_reason) for d in report.clients] == [
        ("unknown", "cannot tell which side changed: the registry records no update time"),
    ]
    outside = build_drift(desired, state(remote(edited)), settings)
    assert locate_sides(outside, settings, None) == outside


def test_a_client_no_file_declares_gets_no_side(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [PORTAL])
    commit_all(tmp_path)
    edited = PORTAL._replace(name="Edited")
    held = state(remote(edited), remote(client("acme-extra")))
    report = locate_sides(build_drift(desired, held, settings), settings, ())
    assert [(d.kind, d.client_id, d.file is None, d.side) for d in report.clients] == [
        ("undeclared", "acme-extra", True, None), ("changed", "acme-portal", False, "unknown"),
    ]


def test_make_drift_reads_the_registry_and_says_which_side_changed(repo: Path) -> None:
    # Mutation survivors (docs/development/testing.md): make_drift in process, with git.
    commit = commit_all(repo)
    registry = LocalRegistry(repo / ".oauth2-sync" / "registry.db")
    try:
        registry.delete_client("acme-portal", None)
        edited = repo / "clients" / "globex" / "clients.yaml"
        edited.write_text(
            edited.read_text().replace("name: Service globex-etl", "name: ETL v2")
        )
        settings = load_settings(repo / "oauth2-sync.yaml")
        report = make_drift(settings, registry)
    finally:
        registry.close()
    assert report.commit == commit
    assert report.checked == (("acme-portal", "acme"), ("globex-etl", "globex"))
    assert report.unmanaged == 1
    assert [
        (d.kind, d.client_id, d.partner, d.file, d.line, d.side, d.side_reason)
        for d in report.clients
    ] == [
        # Missing first: the changed client after it is located all the same.
        ("missing", "acme-portal", "acme", "clients/acme/clients.yaml", 2, None, ""),
        ("changed", "globex-etl", "globex", "clients/globex/clients.yaml", 2, "files",
         "its file has uncommitted changes"),
    ]
    assert report.uncommitted == ("clients/globex/clients.yaml",)


def test_the_clients_declared_after_an_unreachable_one_are_still_compared(
    tmp_path: Path,
) -> None:
    settings, desired = setup(tmp_path, [REPORTING, ETL])
    gone = RegistryState(
        "rfc7592+http://127.0.0.1:9/reg", PARTNERS, (),
        (Unreachable("acme-reporting", "refused"),),
    )
    report = build_drift(desired, gone, settings, ttl_defaults=(None, None))
    assert [(d.kind, d.client_id) for d in report.clients] == [
        ("unreachable", "acme-reporting"), ("missing", "globex-etl"),
    ]


def test_every_field_of_each_kind_of_drift(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [PORTAL, REPORTING, ETL, client("globex-gone")])
    edited = PORTAL._replace(name="Edited")
    handmade = client("acme-handmade")
    held = RegistryState(
        "local:/registry.db", PARTNERS,
        (
            remote(edited, 7, created_at="2024-05-01T08:00:00Z", updated_at="2024-05-01T10:00:00Z",
                   updated_by="mallory"),
            remote(ETL), remote(handmade, 9, created_at="2024-05-01T11:00:00Z"), remote(LAB),
        ),
        (Unreachable("globex-gone", "refused"), Unreachable("acme-orphan", "gone")),
    )
    report = build_drift(
        desired, held, settings, commit="abc123", created_at="2024-05-02T00:00:00Z",
        unsupported=lambda c: [f"{c.client_id} cannot be held"],
    )
    file = desired[0].file
    assert report.clients == (
        ClientDrift("undeclared", "acme-handmade", "acme", after=handmade, version="9",
                    created_at="2024-05-01T11:00:00Z"),
        ClientDrift("unreachable", "acme-orphan", "", reason="gone"),
        ClientDrift(
            "changed", "acme-portal", "acme", before=PORTAL, after=edited,
            fields=(FieldDrift("name", PORTAL.name, "Edited"),), file=file, line=2, version="7",
            created_at="2024-05-01T08:00:00Z", updated_at="2024-05-01T10:00:00Z",
            updated_by="mallory",
        ),
        ClientDrift("missing", "acme-reporting", "acme", before=REPORTING, file=file, line=15,
                    unsupported=("acme-reporting cannot be held",)),
        ClientDrift("unreachable", "globex-gone", "globex", before=client("globex-gone"),
                    file=desired[3].file, line=desired[3].line, reason="refused"),
    )
    assert report.checked == (
        ("acme-handmade", "acme"), ("acme-orphan", ""), ("acme-portal", "acme"), ("acme-reporting", "acme"),
        ("globex-etl", "globex"), ("globex-gone", "globex"),
    )
    assert (report.commit, report.created_at, report.unmanaged, report.ignored) == (
        "abc123", "2024-05-02T00:00:00Z", 1, 0,
    )


def test_each_client_whose_changes_are_all_ignored_is_counted(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [PORTAL, REPORTING, ETL], drift={"fields": {"name": "ignore"}})
    held = state(*(remote(c._replace(name="Renamed")) for c in (PORTAL, REPORTING, ETL)))
    report = build_drift(desired, held, settings)
    assert (report.clients, report.ignored) == ((), 3)


@pytest.mark.parametrize(
    ("committed", "updated", "side", "reason"),
    [
        (True, "2024-05-01T10:00:00+00:00", "registry",
         "updated in the registry at 2024-05-01T10:00:00+00:00, after the file's last commit "
         "at {commit}"),
        (True, "{commit}", "files",
         "the file was committed at {commit}, after the registry's last update at {commit}: "
         "not applied yet"),
        (True, "yesterday", "unknown",
         "cannot tell which side changed: update time 'yesterday' unreadable"),
        (True, None, "unknown",
         "cannot tell which side changed: the registry records no update time"),
        (False, "2024-05-01T10:00:00+00:00", "unknown",
         "cannot tell which side changed: the file was never committed"),
    ],
    ids=["registry-later", "same-time", "unreadable", "no-update-time", "never-committed"],
)
def test_the_side_of_a_change_from_the_commit_and_update_times(
    tmp_path: Path, committed: bool, updated: str | None, side: str, reason: str
) -> None:
    settings, desired = setup(tmp_path, [PORTAL])
    if committed:
        commit_all(tmp_path)
    at = last_commit_time(tmp_path, "clients/acme/clients.yaml") or ""
    held = RemoteClient(PORTAL._replace(name="E"), "1",
                        updated_at=updated.format(commit=at) if updated else None)
    report = build_drift(desired, state(held), settings)
    (item,) = locate_sides(report, settings, ()).clients
    assert (item.side, item.side_reason) == (side, reason.format(commit=at))
