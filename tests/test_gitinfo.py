"""``gitinfo``: git is asked only where a repository may be, and answers ``None`` outside."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from oauth2_sync.gitinfo import git_commit, git_uncommitted, outside_git


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
