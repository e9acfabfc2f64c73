"""The CI kit's ground: the example repository, the paths of its CI files, a clean
environment and bash as CI runners start it, and small helpers of the kit tests.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from oauth2_sync.registry.local import LocalRegistry

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
WORKFLOWS = EXAMPLES / ".github" / "workflows"
GITLAB_CI = EXAMPLES / ".gitlab-ci.yml"
STORE_SECRET = EXAMPLES / "ci" / "store-secret"
NOT_RUN = "(not run by tests)"
ACTION = ROOT / "action.yml"
COMPONENT = ROOT / "templates" / "oauth2-sync.yml"
TUTORIAL_ADDRESS = "127.0.0.1:8080"
EXAMPLE_IDS = (
    "acme-billing-sync", "acme-mobile-app", "acme-reporting", "acme-web-portal",
    "globex-analytics", "globex-etl", "globex-partner-portal",
    "initech-batch", "initech-intranet", "initech-kiosk", "initech-legacy-spa",
    "initech-tps-reports",
)
PLAN_MARKER = "<!-- oauth2-sync-plan -->"
DRIFT_LABEL = "oauth2-sync-drift"
TIMEOUT = 120


def clean_env(bin_dir: Path) -> dict[str, str]:
    """The test process's environment without anything a CI system or the user set."""
    prefixes = ("OAUTH2_SYNC_", "_OAUTH2_SYNC_", "VAULT_", "GIT_", "GITHUB_", "GITLAB_", "CI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k != "CI"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        GIT_AUTHOR_NAME="Kit Test", GIT_AUTHOR_EMAIL="kit@example.test",
        GIT_COMMITTER_NAME="Kit Test", GIT_COMMITTER_EMAIL="kit@example.test",
        GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1",
    )
    return env


def program_dir(folder: Path) -> Path:
    """``folder`` with ``oauth2-sync`` (this checkout), ``python3`` and ``python`` (this
    interpreter) in it, to put first on PATH."""
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = folder / "oauth2-sync"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m oauth2_sync "$@"\n')
    wrapper.chmod(0o755)
    (folder / "python3").symlink_to(sys.executable)
    (folder / "python").symlink_to(sys.executable)
    return folder


def copy_examples(target: Path) -> Path:
    """A fresh copy of the example config repository (no store, no secrets)."""
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns(".oauth2-sync", ".secrets"))
    return target


def bash(script: str, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``script`` in bash as CI runners start it (``-eo pipefail``), output combined."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd,
        env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT, check=False,
    )


def edit_local_client(db: Path, client_id: str, **changes: Any) -> None:
    """What someone with the admin form would do, on the embedded store."""
    registry = LocalRegistry(db)
    try:
        current = registry.get_client(client_id)
        assert current is not None
        registry.replace_client(current.client._replace(**changes), current.version)
    finally:
        registry.close()


def no_secret_in(secrets: set[str], *texts: str) -> None:
    assert secrets
    for secret in secrets:
        for text in texts:
            assert secret not in text


def ci_scripts() -> dict[str, str]:
    """Every shell text of the CI files, by where it is."""
    scripts: dict[str, str] = {}
    for path in sorted(WORKFLOWS.glob("*.yml")):
        document = yaml.safe_load(path.read_text())
        for job_name, job in document["jobs"].items():
            for index, step in enumerate(job["steps"]):
                if "run" in step:
                    scripts[f"{path.name}:{job_name}:{step.get('name', index)}"] = step["run"]
    document = yaml.safe_load(GITLAB_CI.read_text())
    for name, job in document.items():
        if isinstance(job, dict) and "script" in job:
            for key in ("before_script", "script", "after_script"):
                scripts[f".gitlab-ci.yml:{name}:{key}"] = "\n".join(job.get(key, []))
    return scripts


def action_runner() -> Any:
    """``action/run_command.py``, the program both the action and the component run."""
    program = ROOT / "action" / "run_command.py"
    spec = importlib.util.spec_from_file_location("oauth2_sync_action", program)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def action_invocations() -> dict[str, list[list[str]]]:
    """The ``oauth2-sync`` argument lists the workflows' uses of the action run, by
    workflow file; an expression for ``allow-unsafe`` counts as true (the longest line)."""
    runner = action_runner()
    found: dict[str, list[list[str]]] = {}
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job["steps"]:
                if not re.fullmatch(r"[\w.-]+/oauth2-sync@v[\w.-]+", step.get("uses", "")):
                    continue
                given = {k.replace("-", "_"): str(v) for k, v in step["with"].items()}
                if "${{" in given.get("allow_unsafe", ""):
                    given["allow_unsafe"] = "true"
                assert "${{" not in str(given), step
                _, argv, _ = runner.command_line(given)
                assert Path(argv[0]).name == "oauth2-sync", argv
                found.setdefault(path.name, []).append(argv[1:])
    return found


def store_secret(
    args: Sequence[str], env: Mapping[str, str], stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(STORE_SECRET), *args], input=stdin, env=dict(env), cwd=cwd,
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )
