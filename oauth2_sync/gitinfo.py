"""The git commit a configuration was read from (recorded in plans and drift reports)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit(root: Path) -> str | None:
    """The commit checked out in the git repository holding ``root``, if there is one."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--verify", "--quiet", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None
