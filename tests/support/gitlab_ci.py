"""GitLab CI, run locally: a job's scripts as GitLab's shell runner runs them.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path

import yaml

from support.kit import GITLAB_CI, PLACEHOLDER, TIMEOUT, bash


@dataclasses.dataclass
class GitLabJob:
    status: int
    allowed_to_fail: bool
    log: str


def run_gitlab_job(
    workspace: Path, name: str, env: Mapping[str, str], cancel: threading.Event | None = None
) -> GitLabJob:
    """A job's before_script (the install, skipped), script and after_script, as GitLab's
    shell runner runs them: one bash session for the script, another for after_script.
    With ``cancel``: once it is set, the script's processes get SIGTERM, then SIGKILL, and
    after_script runs (what GitLab does to a cancelled or timed-out job)."""
    document = yaml.safe_load(GITLAB_CI.read_text())
    job = document[name]
    before = job.get("before_script", document["default"]["before_script"])
    assert all("pip install" in line and PLACEHOLDER in line for line in before)

    def expand(value: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)

    job_env = {**env, **{k: expand(str(v)) for k, v in job.get("variables", {}).items()}}
    if cancel is None:
        done = bash("\n".join(job["script"]), workspace, job_env)
        status, log = done.returncode, done.stdout
    else:
        process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "\n".join(job["script"])],
            cwd=workspace, env=job_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        assert cancel.wait(TIMEOUT), f"{name}: never reached the point to cancel at"
        os.killpg(process.pid, signal.SIGTERM)
        try:
            log = process.communicate(timeout=2.5)[0]
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            log = process.communicate(timeout=TIMEOUT)[0]
        status = process.returncode
    after = bash("\n".join(job.get("after_script", [])), workspace, job_env)
    allowed = status in job.get("allow_failure", {}).get("exit_codes", [])
    return GitLabJob(status, allowed, log + after.stdout)
