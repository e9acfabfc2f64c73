"""The git facts a configuration was read under (recorded in plans and drift reports):
the commit checked out, which of the files read have uncommitted changes, and when a
file was last committed. Each is one cheap git call; outside a git repository, or
without git, each answers ``None``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from oauth2_sync.background import in_background

GIT_TIMEOUT = 10


def outside_git(root: Path) -> bool:
    """Whether ``root`` is surely outside any git repository: no ``.git`` in it or any
    folder above it, and no ``GIT_DIR`` naming one elsewhere. Then git is not asked
    (two process starts fewer for every plan outside git); when in doubt, it is."""
    if "GIT_DIR" in os.environ:
        return False
    try:
        folder = os.path.realpath(root)
    except (OSError, ValueError):
        return False
    while True:
        if os.path.lexists(os.path.join(folder, ".git")):
            return False
        parent = os.path.dirname(folder)
        if parent == folder:
            return True
        folder = parent


def _git(root: Path, *args: str) -> str | None:
    if outside_git(root):
        return None
    import subprocess  # outside git, no process is started (#14: the fixed cost of a plan)

    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_commit(root: Path) -> str | None:
    """The commit checked out in the git repository holding ``root``, if there is one."""
    out = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    commit = (out or "").strip()
    return commit or None


def git_uncommitted(root: Path, patterns: Iterable[str]) -> tuple[str, ...] | None:
    """The files matching ``patterns`` (globs relative to ``root``, ``**`` allowed) that
    differ from HEAD in the working tree or index, untracked ones included, relative to
    ``root`` and sorted; ``None`` outside a git repository.

    Only these paths are asked about, so a large repository costs what its
    configuration costs."""
    specs = [f":(glob){p}" for p in patterns]
    # Porcelain paths are relative to the top of the repository; the settings' folder
    # may be below it.
    prefix = _git(root, "rev-parse", "--show-prefix")
    if prefix is None:
        return None
    prefix = prefix.strip()
    out = _git(root, "-c", "core.quotePath=false", "status", "--porcelain=v1", "-z",
               "--untracked-files=all", "--", *specs)
    if out is None:
        return None
    found: set[str] = set()
    entries = out.split("\0")
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:  # "XY path": two status letters and a space
            continue
        found.add(entry[3:].removeprefix(prefix))
        if entry[0] in "RC":  # a rename or copy is followed by its source path
            index += 1
    return tuple(sorted(found))


def last_commit_time(root: Path, file: str) -> str | None:
    """When ``file`` (relative to ``root``) was last committed (ISO 8601), if ever."""
    out = _git(root, "log", "-1", "--format=%cI", "--", file)
    stamp = (out or "").strip()
    return stamp or None


GitFacts = tuple[str | None, tuple[str, ...] | None]
"""``git_commit`` and ``git_uncommitted`` of one configuration."""


def git_facts_later(root: Path, patterns: Iterable[str]) -> Callable[[], GitFacts]:
    """Start asking git for ``git_commit(root)`` and ``git_uncommitted(root, patterns)``
    in a thread, and return the function that waits for the answers.

    The git processes then run beside the caller's work (a plan reads its files
    meanwhile) instead of after it: three process starts, a few milliseconds each, off
    the fixed cost of every plan (#14). Outside git there is nothing to ask: no thread.
    """
    if outside_git(root):
        return lambda: (None, None)
    wanted = tuple(patterns)
    return in_background(
        lambda: (git_commit(root), git_uncommitted(root, wanted)), "oauth2-sync-git"
    )
