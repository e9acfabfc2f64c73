"""`oauth2-sync validate` through click's test runner: every format and exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from oauth2_sync.cli import cli

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the examples as the working directory."""
    target = tmp_path / "repo"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns(".oauth2-sync", ".secrets"))
    monkeypatch.chdir(target)
    return target


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def break_scope(repo: Path) -> None:
    path = repo / "clients" / "payments" / "reporting.yaml"
    path.write_text(path.read_text().replace("scopes: [read]", "scopes: [raed]"))


def test_examples_are_clean(repo: Path) -> None:
    code, out, err = run("validate")
    assert code == 0
    assert out.splitlines()[-1] == "4 files, 12 clients: 0 errors, 3 warnings."
    assert err == ""


def test_text_error(repo: Path) -> None:
    break_scope(repo)
    code, out, _ = run("validate")
    assert code == 1
    assert out.splitlines()[1] == (
        "clients/payments/reporting.yaml:8:14: error: [schema] clients[0].scopes[0]: 'raed' is "
        "not one of read, write; did you mean 'read'?"
    )
    assert out.splitlines()[-1] == "4 files, 11 clients: 1 error, 3 warnings."


def test_quiet_shows_errors_only(repo: Path) -> None:
    break_scope(repo)
    code, out, _ = run("validate", "-q")
    assert code == 1
    assert [line.split(": ")[1] for line in out.splitlines()[:-1]] == ["error"]
    # The warnings are not shown, but still counted.
    assert out.splitlines()[-1] == "4 files, 11 clients: 1 error, 3 warnings."


@pytest.mark.parametrize("fmt", ["github", "json"])
def test_quiet_keeps_the_counts_in_every_format(repo: Path, fmt: str) -> None:
    code, out, _ = run("validate", "-q", "--format", fmt)
    assert code == 0
    if fmt == "json":
        assert json.loads(out)["warnings"] == 3
    else:
        assert out == "4 files, 12 clients: 0 errors, 3 warnings.\n"


def test_json(repo: Path) -> None:
    break_scope(repo)
    code, out, _ = run("validate", "--format", "json")
    assert code == 1
    document = json.loads(out)
    assert document["format_version"] == 1
    assert (document["valid"], document["errors"], document["warnings"]) == (False, 1, 3)
    assert document["diagnostics"][1] == {
        "file": "clients/payments/reporting.yaml",
        "line": 8,
        "column": 14,
        "severity": "error",
        "rule": "schema",
        "message": "clients[0].scopes[0]: 'raed' is not one of read, write; did you mean 'read'?",
    }


def test_github(repo: Path) -> None:
    break_scope(repo)
    code, out, _ = run("validate", "--format", "github")
    assert code == 1
    assert out.splitlines()[1] == (
        "::error file=clients/payments/reporting.yaml,line=8,col=14,title=oauth2-sync schema::"
        "clients[0].scopes[0]: 'raed' is not one of read, write; did you mean 'read'?"
    )
    assert out.splitlines()[0].startswith("::warning file=clients/analytics/globex.yaml,line=18,")


def test_explicit_paths(repo: Path) -> None:
    code, out, _ = run("validate", "clients/platform")
    assert code == 0
    assert out.splitlines()[-1] == "1 file, 5 clients: 0 errors, 2 warnings."


def test_settings_errors_are_reported_the_same_way(repo: Path) -> None:
    settings = repo / "oauth2-sync.yaml"
    settings.write_text(settings.read_text().replace("prune: false", "prune: nope"))
    code, out, _ = run("validate", "--format", "github")
    assert code == 1
    assert out.splitlines()[0] == (
        "::error file=oauth2-sync.yaml,line=34,col=8,title=oauth2-sync schema::"
        "prune: must be a boolean (true or false), not a string"
    )


def test_config_option_after_the_command(repo: Path, tmp_path: Path) -> None:
    code, _, _ = run("validate", "--config", str(repo / "oauth2-sync.yaml"))
    assert code == 0


def test_missing_settings_file(repo: Path) -> None:
    code, out, _ = run("--config", "nope.yaml", "validate")
    assert code == 1
    assert out.splitlines()[0] == "nope.yaml:1:1: error: [file] No such file or directory"


@pytest.mark.parametrize("args", [["validate", "--bogus"], ["nosuch"], ["plan", "--format", "xml"]])
def test_a_usage_error_exits_1_not_2(repo: Path, args: list[str]) -> None:
    # 2 means "changes" (plan) or "drift": a typo in a CI job must not look like either.
    code, _, err = run(*args)
    assert code == 1
    assert err.splitlines()[-1].startswith("Error: ")


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_control_characters_of_file_names_and_data_are_escaped(repo: Path, fmt: str) -> None:
    # A file name with ESC and BEL and a value with a right-to-left override: no format
    # writes them raw (they would recolour a terminal or a CI log, or disguise a name).
    name = "clients/payments/\x1b[31mred\x07\x9b.yaml"
    (repo / name).write_text(
        "clients:\n  - client_id: acme-x\n    name: X\n    email: x@acme.example\n"
        "    partner: acme\n    scopes: [r\u202eead]\n",
        encoding="utf-8",
    )
    code, out, _ = run("validate", "-q", "--format", fmt)
    assert code == 1
    assert not any(not c.isprintable() for c in out.replace("\n", ""))
    shown = "clients/payments/\\x1b[31mred\\x07\\x9b.yaml"
    message = (
        "clients[0].scopes[0]: 'r\\u202eead' is not one of read, write; did you mean 'read'?"
    )
    expected = {
        "text": f"{shown}:6:14: error: [schema] {message}",
        "github": f"::error file={shown},line=6,col=14,title=oauth2-sync schema::{message}",
        "json": '      "file": "clients/payments/\\u001b[31mred\\u0007\\u009b.yaml",',
    }[fmt]
    assert expected in out.splitlines()
    if fmt == "json":
        errors = [d for d in json.loads(out)["diagnostics"] if d["severity"] == "error"]
        assert [d["file"] for d in errors] == [name]
