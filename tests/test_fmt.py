"""``fmt``: golden rewrites, byte-for-byte preservation, the CLI, and a property test.

Set UPDATE_GOLDEN=1 to rewrite the files under tests/golden/fmt/ (then review the diff).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from oauth2_sync.cli import cli
from oauth2_sync.errors import InputError
from oauth2_sync.fmt import FileResult, format_bytes, format_paths, is_normal

ROOT = Path(__file__).parent.parent
GOLDEN = Path(__file__).parent / "golden" / "fmt"
EXAMPLES = ROOT / "examples"


def fmt(text: str, display: str = "clients.yaml") -> FileResult:
    return format_bytes(text.encode("utf-8"), display)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


# --- golden ----------------------------------------------------------------------------


def test_mixed_file_matches_golden() -> None:
    source = (GOLDEN / "mixed.in.yaml").read_text(encoding="utf-8")
    result = fmt(source, "mixed.in.yaml")
    golden = GOLDEN / "mixed.out.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(result.after, encoding="utf-8")
    assert result.after == golden.read_text(encoding="utf-8")
    assert result.changed


def test_golden_output_is_a_fixed_point() -> None:
    result = fmt((GOLDEN / "mixed.out.yaml").read_text(encoding="utf-8"))
    assert not result.changed


def test_file_in_normal_form_is_kept_byte_for_byte() -> None:
    source = (GOLDEN / "normal.yaml").read_text(encoding="utf-8")
    result = fmt(source)
    assert result.after == source
    assert result.diff() == ""


def test_every_comment_survives_the_golden_rewrite() -> None:
    source = (GOLDEN / "mixed.in.yaml").read_text(encoding="utf-8")
    after = fmt(source).after
    comments = sorted(line[line.index("#") :] for line in source.splitlines() if "#" in line)
    kept = sorted(line[line.index("#") :] for line in after.splitlines() if "#" in line)
    assert kept == comments


# --- what normal form means --------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "clients:\n- name: N\n  client_id: acme-a\n  email: a@acme.example\n  partner: acme\n",
            "clients:\n- client_id: acme-a\n  name: N\n  email: a@acme.example\n  partner: acme\n",
            id="key-order-indentless",
        ),
        pytest.param(
            "clients:\n  - client_id: acme-a\n    name: N\n    email: a@acme.example\n"
            "    partner: acme\n    scopes: [ write ,read ]\n",
            "clients:\n  - client_id: acme-a\n    name: N\n    email: a@acme.example\n"
            "    partner: acme\n    scopes: [ read ,write ]\n",
            id="flow-set-keeps-spacing",
        ),
        pytest.param(
            "clients:\n  - client_id: acme-a\n    name: N\n    email: a@acme.example\n"
            "    partner: acme\n    refresh_token_ttl: 1d\n    access_token_ttl: 3600",
            "clients:\n  - client_id: acme-a\n    name: N\n    email: a@acme.example\n"
            "    partner: acme\n    access_token_ttl: 3600\n    refresh_token_ttl: 1d",
            id="no-newline-at-end-of-file",
        ),
        pytest.param(
            "clients:\r\n  - email: a@acme.example\r\n    client_id: acme-a\r\n    name: N\r\n"
            "    partner: acme\r\n",
            "clients:\r\n  - client_id: acme-a\r\n    name: N\r\n    email: a@acme.example\r\n"
            "    partner: acme\r\n",
            id="crlf-line-breaks",
        ),
        pytest.param(
            "clients:\n  - client_id: acme-a\n    name: >-\n      A folded\n      name\n\n"
            "    partner: acme\n    email: a@acme.example\n",
            "clients:\n  - client_id: acme-a\n    name: >-\n      A folded\n      name\n\n"
            "    email: a@acme.example\n    partner: acme\n",
            id="block-scalar-value",
        ),
        pytest.param(
            "clients:\n  - client_id: acme-a\n    name: N\n    email: a@acme.example\n"
            "    partner: acme\n    redirect_uris:\n    - https://b.example/  # b\n"
            "    - https://a.example/  # a\n    grant_types: [implicit]\n",
            "clients:\n  - client_id: acme-a\n    name: N\n    email: a@acme.example\n"
            "    partner: acme\n    grant_types: [implicit]\n    redirect_uris:\n"
            "    - https://a.example/  # a\n    - https://b.example/  # b\n",
            id="block-set-and-keys-together",
        ),
        pytest.param(
            "clients:\n  - client_id: acme-a\n    name: N\n    email: a@acme.example\n"
            "    partner: acme\n    access_token_ttl: 43200\n    refresh_token_ttl: null\n",
            "clients:\n  - client_id: acme-a\n    name: N\n    email: a@acme.example\n"
            "    partner: acme\n    access_token_ttl: 43200\n    refresh_token_ttl: null\n",
            id="durations-and-null-as-written",
        ),
    ],
)
def test_normal_form(source: str, expected: str) -> None:
    assert fmt(source).after == expected


def test_byte_order_mark_is_kept() -> None:
    raw = "\ufeffclients:\n- name: N\n  client_id: acme-a\n".encode()
    result = format_bytes(raw, "bom.yaml")
    assert result.after == "\ufeffclients:\n- client_id: acme-a\n  name: N\n"


def test_unknown_keys_go_last_in_their_order() -> None:
    source = "clients:\n- zeta: 1\n  name: N\n  alpha: 2\n  client_id: acme-a\n"
    assert fmt(source).after == "clients:\n- client_id: acme-a\n  name: N\n  zeta: 1\n  alpha: 2\n"


def test_client_order_is_kept() -> None:
    source = "clients:\n- client_id: acme-z\n- client_id: acme-a\n"
    assert not fmt(source).changed


def test_is_normal_ignores_what_is_not_a_client_file() -> None:
    assert is_normal([1, 2])
    assert is_normal({"clients": "nope"})
    assert is_normal({"clients": [{"scopes": ["write", 1]}]})


def test_explicit_key_cannot_be_reordered() -> None:
    source = "clients:\n- ? name\n  : N\n  client_id: acme-a\n"
    with pytest.raises(InputError) as caught:
        fmt(source, "odd.yaml")
    assert str(caught.value) == (
        "odd.yaml:2:5: error: [fmt] cannot reorder this client: its first key does not "
        "start the entry's line; reorder its keys by hand"
    )


# --- files and the command line ----------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the examples as the working directory."""
    target = tmp_path / "repo"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns(".oauth2-sync", ".secrets"))
    monkeypatch.chdir(target)
    return target


def test_examples_are_formatted(repo: Path) -> None:
    assert run("fmt", "--check") == (0, "4 files would be left unchanged.\n", "")
    assert run("fmt", "-q", "--check") == (0, "", "")


def test_check_lists_files_and_changes_nothing(repo: Path) -> None:
    path = repo / "clients" / "payments" / "reporting.yaml"
    before = path.read_text()
    path.write_text(before.replace("scopes: [read, write]", "scopes: [write, read]"))
    unformatted = path.read_text()
    assert run("fmt", "--check") == (
        1,
        "would reformat clients/payments/reporting.yaml\n"
        "1 file would be reformatted, 3 files would be left unchanged.\n",
        "",
    )
    assert run("fmt", "--check", "-q") == (1, "", "")
    assert path.read_text() == unformatted


def test_diff_alone_writes_nothing_and_exits_0_as_black_does(repo: Path) -> None:
    path = repo / "clients" / "payments" / "reporting.yaml"
    path.write_text(path.read_text().replace("scopes: [read, write]", "scopes: [write, read]"))
    unformatted = path.read_text()
    code, out, err = run("fmt", "--diff")
    assert code == 0
    assert out.startswith("--- a/clients/payments/reporting.yaml\n")
    assert err == (
        "would reformat clients/payments/reporting.yaml\n"
        "1 file would be reformatted, 3 files would be left unchanged.\n"
    )
    assert path.read_text() == unformatted
    # The diff on stdout is a patch that brings the file into normal form.
    patch = subprocess.run(["patch", "-p1"], input=out, cwd=repo, capture_output=True,
                           text=True, check=False)
    assert patch.returncode == 0, patch.stdout + patch.stderr
    assert run("fmt", "--check") == (0, "4 files would be left unchanged.\n", "")


def test_check_with_diff(repo: Path) -> None:
    path = repo / "clients" / "payments" / "reporting.yaml"
    path.write_text(path.read_text().replace("scopes: [read, write]", "scopes: [write, read]"))
    code, out, err = run("fmt", "--check", "--diff", "clients/payments")
    assert code == 1
    assert err == (
        "would reformat clients/payments/reporting.yaml\n"
        "1 file would be reformatted, 1 file would be left unchanged.\n"
    )
    assert out == (
        "--- a/clients/payments/reporting.yaml\n"
        "+++ b/clients/payments/reporting.yaml\n"
        "@@ -15,7 +15,7 @@\n"
        "     name: Billing synchronisation\n"
        "     email: billing@acme.example\n"
        "     partner: acme\n"
        "-    scopes: [write, read]\n"
        "+    scopes: [read, write]\n"
        "     grant_types: [password, refresh_token]\n"
        "     access_token_ttl: 15m\n"
        "     refresh_token_ttl: 7d\n"
    )


def test_fmt_rewrites_and_keeps_the_mode(repo: Path) -> None:
    path = repo / "clients" / "platform" / "initech.yaml"
    formatted = path.read_text()
    path.write_text(formatted.replace("scopes: [read, write]\n    access_token_ttl: 7200",
                                      "scopes: [write, read]\n    access_token_ttl: 7200"))
    path.chmod(0o640)
    assert run("fmt") == (
        0, "reformatted clients/platform/initech.yaml\n"
        "1 file reformatted, 3 files left unchanged.\n", "",
    )
    assert path.read_text() == formatted
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert run("fmt") == (0, "4 files left unchanged.\n", "")


def test_a_folder_without_client_files_says_so(repo: Path) -> None:
    (repo / "empty").mkdir()
    assert run("fmt", "empty") == (0, "No client files to format.\n", "")
    assert run("fmt", "clients/platform") == (0, "1 file left unchanged.\n", "")


def test_unreadable_file_is_reported_and_others_still_formatted(repo: Path) -> None:
    broken = repo / "clients" / "payments" / "broken.yaml"
    broken.write_text("clients:\n  - client_id: acme-x\n    client_id: acme-y\n")
    other = repo / "clients" / "analytics" / "globex.yaml"
    other.write_text(other.read_text().replace(
        "grant_types: [authorization_code, refresh_token]",
        "grant_types: [refresh_token, authorization_code]",
    ))
    code, out, err = run("fmt")
    assert code == 1
    assert out == (
        "reformatted clients/analytics/globex.yaml\n"
        "1 file reformatted, 3 files left unchanged, 1 file failed to reformat.\n"
    )
    assert err == (
        "clients/payments/broken.yaml:3:5: error: [duplicate-key] duplicate key 'client_id' "
        "(first defined at line 2, column 5)\n"
    )
    assert "[authorization_code, refresh_token]" in other.read_text()


def test_format_paths_without_write_reports_only(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("clients:\n- name: N\n  client_id: acme-a\n")
    report = format_paths([path], write=False)
    assert [r.path for r in report.changed] == [path]
    assert path.read_text() == "clients:\n- name: N\n  client_id: acme-a\n"


# --- property: any key order, any set order, any style -----------------------------------

VALUES: dict[str, str] = {
    "client_id": "acme-app",
    "name": '"App name"',
    "email": "app@acme.example",
    "partner": "acme",
    "restrict_to_partner_users": "false",
    "access_token_ttl": "1h",
    "refresh_token_ttl": "86400",
}
SETS: dict[str, list[str]] = {
    "scopes": ["read", "write"],
    "grant_types": ["authorization_code", "implicit", "refresh_token"],
    "redirect_uris": ["https://c.example/cb", "http://127.0.0.1/cb", "https://a.example/cb"],
}


@st.composite
def client_files(draw: st.DrawFn) -> str:
    counter = iter(range(10_000))

    def comment() -> str:
        return f"# c{next(counter)}" if draw(st.booleans()) else ""

    def eol() -> str:
        text = comment()
        return f"  {text}" if text else ""

    keys = draw(st.permutations([*VALUES, *SETS]))
    lines = ["clients:"]
    for index, key in enumerate(keys):
        above = comment()
        if above and index > 0:
            lines.append(f"    {above}")
        lead = "  - " if index == 0 else "    "
        if key in VALUES:
            lines.append(f"{lead}{key}: {VALUES[key]}{eol()}")
            continue
        items = draw(st.permutations(SETS[key]))
        if draw(st.booleans()):
            lines.append(f"{lead}{key}: [{', '.join(items)}]{eol()}")
        else:
            lines.append(f"{lead}{key}:{eol()}")
            for item in items:
                above = comment()
                if above:
                    lines.append(f"      {above}")
                lines.append(f"      - {item}{eol()}")
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None)
@given(client_files())
def test_any_layout_becomes_normal_with_same_data_and_comments(source: str) -> None:
    result = fmt(source)
    data = yaml.safe_load(result.after)
    assert is_normal(data)
    original = yaml.safe_load(source)["clients"][0]
    expected = {k: sorted(v) if k in SETS else v for k, v in original.items()}
    assert data["clients"][0] == expected
    assert sorted(re.findall(r"# c[0-9]+", result.after)) == sorted(
        re.findall(r"# c[0-9]+", source)
    )
    assert not fmt(result.after).changed
