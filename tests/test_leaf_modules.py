"""The leaf modules: the injectable clock, the git facts, work in the background, Secret,
safe text."""

from __future__ import annotations

import os
import subprocess
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from support.configrepo import commit_all

from oauth2_sync import clock, gitinfo
from oauth2_sync.background import in_background
from oauth2_sync.gitinfo import git_commit, git_uncommitted, last_commit_time, outside_git
from oauth2_sync.registry import base
from oauth2_sync.safetext import escape, printable, quote
from oauth2_sync.secret import Secret


def test_the_clock_can_be_replaced_and_is_restored() -> None:
    fixed = datetime(2026, 1, 31, 12, 0, 0, 987_654, tzinfo=UTC)
    with clock.use(lambda: fixed):
        assert clock.timestamp() == "2026-01-31T12:00:00Z"
        later = fixed + timedelta(hours=1)
        with clock.use(lambda: later):
            assert clock.timestamp() == "2026-01-31T13:00:00Z"
        assert clock.now() == fixed
    assert clock.now() != fixed


def test_the_timestamp_is_in_utc_whatever_the_clock_s_zone() -> None:
    east = timezone(timedelta(hours=2))
    with clock.use(lambda: datetime(2026, 1, 31, 14, 0, 0, tzinfo=east)):
        assert clock.timestamp() == "2026-01-31T12:00:00Z"


def test_no_commit_outside_a_repository(tmp_path: Path) -> None:
    assert gitinfo.git_commit(tmp_path) is None


def test_secret_keeps_its_old_import_path_and_never_shows() -> None:
    assert base.Secret is Secret
    secret = Secret("s3cr3t")
    assert "s3cr3t" not in repr(secret) + str(secret) + f"{[secret]}"
    assert secret == Secret("s3cr3t") and secret.reveal() == "s3cr3t"


def test_safe_text_escapes_a_quote_without_a_backslash() -> None:
    # The shortcut for plain ASCII must not skip a value holding only a double quote.
    assert escape('say "hi"') == 'say \\"hi\\"'
    assert quote('a"b') == '"a\\"b"'


def test_uncommitted_files_are_those_the_patterns_name_relative_to_the_folder(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config"
    (config / "clients" / "a").mkdir(parents=True)
    (config / "clients" / "a" / "c.yaml").write_text("x\n")
    (config / "oauth2-sync.yaml").write_text("s\n")
    (tmp_path / "other.txt").write_text("o\n")
    commit_all(tmp_path)
    assert git_uncommitted(config, ["oauth2-sync.yaml", "clients/**/*.yaml"]) == ()
    (config / "clients" / "a" / "c.yaml").write_text("edited\n")
    (config / "clients" / "a" / "new.yaml").write_text("n\n")
    (config / "clients" / "a" / "notes.txt").write_text("not a client file\n")
    (tmp_path / "other.txt").write_text("edited\n")
    assert git_uncommitted(config, ["oauth2-sync.yaml", "clients/**/*.yaml"]) == (
        "clients/a/c.yaml", "clients/a/new.yaml",
    )
    assert last_commit_time(config, "clients/a/c.yaml") == "2024-05-01T09:00:00+00:00"
    assert last_commit_time(config, "clients/a/new.yaml") is None
    outside = tmp_path.parent / f"{tmp_path.name}-not-git"
    outside.mkdir()
    assert git_uncommitted(outside, ["*.yaml"]) is None


def test_safe_text_escapes_each_invisible_character_by_its_code_point_width() -> None:
    # \xNN below U+0100, \uNNNN in the BMP, \UNNNNNNNN beyond (a language tag, U+E0001).
    text = "a\x1b\x7f\x85\u00a0\u202e\u2028\U000e0001\tz"
    shown = "a\\x1b\\x7f\\x85\\xa0\\u202e\\u2028\\U000e0001\\tz"
    assert escape(text) == shown
    assert quote(text) == f'"{shown}"'


def test_safe_text_keeps_printable_non_ascii_and_escapes_what_is_named() -> None:
    assert escape('café "x"\\\n\r') == 'café \\"x\\"\\\\\\n\\r'
    assert escape("ĀĀ\U00010000") == "ĀĀ\U00010000"  # printable, however wide


def test_printable_escapes_only_what_cannot_be_seen() -> None:
    # Quotes, backslashes and printable non-ASCII stay as they are (messages quote
    # values themselves); every invisible character is escaped.
    assert printable('é "q" \\ ok') == 'é "q" \\ ok'
    assert printable("a\nb\u202ec\U000e0001") == "a\\x0ab\\u202ec\\U000e0001"


def test_git_facts_asked_in_the_background_are_those_asked_in_turn(tmp_path: Path) -> None:
    config = tmp_path / "config"
    (config / "clients").mkdir(parents=True)
    (config / "clients" / "c.yaml").write_text("x\n")
    commit_all(tmp_path)
    (config / "clients" / "new.yaml").write_text("n\n")
    patterns = ["oauth2-sync.yaml", "clients/**/*.yaml"]
    wait = gitinfo.git_facts_later(config, patterns)
    commit = gitinfo.git_commit(config)
    assert commit is not None and len(commit) == 40
    assert wait() == (commit, ("clients/new.yaml",)) == (commit, git_uncommitted(config, patterns))
    outside = tmp_path.parent / f"{tmp_path.name}-not-git"
    outside.mkdir()
    assert gitinfo.git_facts_later(outside, patterns)() == (None, None)


@pytest.fixture
def noting_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``git`` first on PATH that notes each call in a file and then runs the real one;
    returns the note file."""
    real = subprocess.run(["which", "git"], capture_output=True, text=True, check=True)
    notes = tmp_path / "git-calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "git"
    script.write_text(f'#!/bin/sh\necho "$*" >> {notes}\nexec {real.stdout.strip()} "$@"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("GIT_DIR", raising=False)
    return notes


def test_outside_any_repository_git_is_not_asked(tmp_path: Path, noting_git: Path) -> None:
    folder = tmp_path / "config"
    folder.mkdir()
    assert outside_git(folder)
    assert git_commit(folder) is None
    assert git_uncommitted(folder, ["clients/**/*.yaml"]) is None
    assert not noting_git.exists()


def test_inside_a_repository_git_is_asked_from_any_folder_below(
    tmp_path: Path, noting_git: Path
) -> None:
    repo = tmp_path / "repo"
    (repo / "config" / "clients").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "config" / "clients" / "a.yaml").write_text("clients: []\n")
    assert not outside_git(repo / "config")
    assert git_uncommitted(repo / "config", ["clients/**/*.yaml"]) == ("clients/a.yaml",)
    assert git_commit(repo / "config") is None  # no commit yet
    asked = [line.split()[2:4] for line in noting_git.read_text().splitlines()[1:]]
    assert asked == [["rev-parse", "--show-prefix"], ["-c", "core.quotePath=false"],
                     ["rev-parse", "--verify"]]


def test_a_git_file_or_git_dir_counts_as_a_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GIT_DIR", raising=False)
    worktree = tmp_path / "worktree"
    worktree.mkdir()
    (worktree / ".git").write_text("gitdir: /elsewhere/.git/worktrees/x\n")
    assert not outside_git(worktree / "sub")
    plain = tmp_path / "plain"
    plain.mkdir()
    assert outside_git(plain)
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere.git"))
    assert not outside_git(plain)


def test_background_work_gives_its_result_or_its_very_exception_to_the_waiter() -> None:
    ran_in: list[threading.Thread] = []

    def work() -> int:
        ran_in.append(threading.current_thread())
        return 42

    assert in_background(work, "oauth2-sync-test")() == 42
    assert [(t.name, t.daemon) for t in ran_in] == [("oauth2-sync-test", True)]
    failure = KeyboardInterrupt()

    def fails() -> int:
        raise failure

    wait = in_background(fails, "oauth2-sync-test")
    with pytest.raises(KeyboardInterrupt) as caught:
        wait()
    assert caught.value is failure
