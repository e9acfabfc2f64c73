"""GitLab CI, run locally: the pipeline with its ``include: component:`` entries
resolved to this checkout's component (``spec: inputs`` checked and interpolated), and a
job's scripts as GitLab's shell runner runs them.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from oauth2_sync import __version__
from support.kit import COMPONENT, GITLAB_CI, ROOT, TIMEOUT, bash

COMPONENT_REFERENCE = re.compile(r"\$CI_SERVER_FQDN/[\w./-]+/oauth2-sync/oauth2-sync@(v[\w.-]+)")
INTERPOLATION = re.compile(r"\$\[\[\s*(inputs|component)\.([\w-]+)\s*\]\]")
COMPONENT_SHA = "c" * 40
"""The commit the include resolves to (``$[[ component.sha ]]``): this checkout."""


@dataclasses.dataclass
class GitLabJob:
    status: int
    allowed_to_fail: bool
    log: str


def component_jobs(given: Mapping[str, Any]) -> dict[str, Any]:
    """The jobs of the component with ``given`` inputs, as GitLab includes them: inputs
    checked against ``spec: inputs`` (known, required, options, type), then every
    ``$[[ inputs.x ]]`` and ``$[[ component.x ]]`` replaced."""
    spec_text, body = COMPONENT.read_text().split("\n---\n", 1)
    spec = yaml.safe_load(spec_text)["spec"]
    declared: dict[str, Any] = spec["inputs"]
    assert set(given) <= set(declared), f"inputs the component does not declare: {given}"
    values: dict[str, Any] = {}
    for name, rules in declared.items():
        assert name in given or "default" in rules, f"input {name} is required"
        value = given.get(name, rules.get("default"))
        assert "options" not in rules or value in rules["options"], (name, value)
        kind = rules.get("type", "string")
        assert isinstance(value, bool if kind == "boolean" else str), (name, value, kind)
        values[name] = value
    context = {"inputs": values, "component": {"sha": COMPONENT_SHA}}

    def interpolate(match: re.Match[str]) -> str:
        scope, name = match.groups()
        assert scope == "inputs" or name in spec.get("component", []), match.group(0)
        value = context[scope][name]
        return str(value).lower() if isinstance(value, bool) else str(value)

    jobs: dict[str, Any] = yaml.safe_load(INTERPOLATION.sub(interpolate, body))
    return jobs


def merge(base: Any, local: Any) -> Any:
    """GitLab's merge of a pipeline's keys over included ones: mappings deep, the rest
    replaced."""
    if isinstance(base, dict) and isinstance(local, dict):
        return {**base, **{k: merge(base.get(k), v) for k, v in local.items()}}
    return local


def pipeline(text: str | None = None) -> dict[str, Any]:
    """The shipped pipeline (or ``text``) with its components included."""
    document: dict[str, Any] = yaml.safe_load(text if text is not None else GITLAB_CI.read_text())
    included: dict[str, Any] = {}
    for entry in document.pop("include", []):
        reference = COMPONENT_REFERENCE.fullmatch(entry["component"])
        assert reference, entry
        # The tag a pipeline pins is the release it was written for: this checkout.
        assert reference.group(1) == f"v{__version__}", entry["component"]
        for name, job in component_jobs(entry.get("inputs", {})).items():
            assert name not in included, f"two includes define {name}"
            included[name] = job
    return {**document, **{k: merge(included.get(k), v) for k, v in document.items()},
            **{k: v for k, v in included.items() if k not in document}}


def variables(job: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """A job's variables as the runner sets them: ``$NAME`` expanded from ``env`` unless
    ``expand: false``."""

    def expand(value: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)

    result: dict[str, str] = {}
    for name, value in job.get("variables", {}).items():
        if isinstance(value, dict):
            result[name] = str(value["value"]) if value.get("expand") is False else expand(
                str(value["value"]))
        else:
            result[name] = expand(str(value))
    return result


def install_from_checkout(home: Path) -> None:
    """What the component's install leaves in OAUTH2_SYNC_HOME, made from this checkout
    as the test process runs it (its interpreter, coverage included): the clone is this
    checkout, the venv's programs are this interpreter."""
    (home / "venv" / "bin").mkdir(parents=True)
    (home / "src").symlink_to(ROOT)
    for name in ("python", "python3"):
        (home / "venv" / "bin" / name).symlink_to(sys.executable)
    wrapper = home / "venv" / "bin" / "oauth2-sync"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m oauth2_sync "$@"\n')
    wrapper.chmod(0o755)


def run_gitlab_job(
    workspace: Path, name: str, env: Mapping[str, str], cancel: threading.Event | None = None,
    pipeline_text: str | None = None,
) -> GitLabJob:
    """A job's before_script, script and after_script, as GitLab's shell runner runs
    them: one bash session for before_script and script, another for after_script. The
    component's install (the first before_script entry, git clone and pip install) is
    not run: its result is made from this checkout. With ``cancel``: once it is set, the
    script's processes get SIGTERM, then SIGKILL, and after_script runs (what GitLab
    does to a cancelled or timed-out job)."""
    job = pipeline(pipeline_text)[name]
    install, *before = job["before_script"]
    assert "git clone" in install and "pip install" in install, install
    env = {**env, "CI_BUILDS_DIR": str(workspace.parent), "CI_JOB_ID": f"{name}-{os.getpid()}"}
    job_env = {**env, **variables(job, env)}
    home = Path(job_env["OAUTH2_SYNC_HOME"])
    if not home.exists():
        install_from_checkout(home)
    script = "\n".join([*before, *job["script"]])
    if cancel is None:
        done = bash(script, workspace, job_env)
        status, log = done.returncode, done.stdout
    else:
        process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
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
