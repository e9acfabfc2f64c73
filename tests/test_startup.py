"""Start-up: the command layer imports the library lazily, so ``--help`` and an
offline ``validate`` never load the HTTP stack (and ``--help`` nothing heavy at all).

Run in a fresh interpreter, as the console script runs, and read ``sys.modules`` there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"

_PROBE = """
import sys
started = set(sys.modules)  # the interpreter's start-up (and coverage's, in CI): not the run's
import json
from oauth2_sync.cli import cli
try:
    cli(sys.argv[1:], prog_name="oauth2-sync")
except SystemExit as exc:
    code = exc.code
run = set(sys.modules) - started
print(json.dumps({"code": code, "modules": sorted(
    {m.split(".")[0] for m in run} | {m for m in run if m.startswith("oauth2_sync.")}
)}))
"""


def loaded(*args: str, cwd: Path) -> tuple[int, set[str]]:
    """The exit code of ``oauth2-sync ARGS``, the top-level packages it imported (beyond
    what the interpreter's start-up had) and the package's own modules."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], cwd=cwd, capture_output=True, text=True,
        check=False, timeout=60,
    )
    report = json.loads(done.stdout.splitlines()[-1])
    return report["code"], set(report["modules"])


def test_help_imports_no_library(tmp_path: Path) -> None:
    code, modules = loaded("--help", cwd=tmp_path)
    assert code == 0
    assert not modules & {"requests", "urllib3", "jsonschema", "yaml"}


def test_command_help_imports_no_library(tmp_path: Path) -> None:
    code, modules = loaded("apply", "--help", cwd=tmp_path)
    assert code == 0
    assert not modules & {"requests", "urllib3", "jsonschema", "yaml"}


def test_validate_imports_no_http_stack(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo, ignore=shutil.ignore_patterns(".oauth2-sync", ".secrets"))
    code, modules = loaded("-q", "validate", cwd=repo)
    assert code == 0
    assert "oauth2_sync" in modules  # the probe did run the command
    assert not modules & {"requests", "urllib3"}


def test_a_plan_of_the_local_registry_imports_neither_the_http_stack_nor_apply(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo, ignore=shutil.ignore_patterns(".oauth2-sync", ".secrets"))
    code, modules = loaded("-q", "plan", cwd=repo)
    assert code == 2  # the examples' twelve creates
    assert "oauth2_sync.plan" in modules
    assert not modules & {"requests", "urllib3", "jsonschema", "oauth2_sync.apply",
                          "oauth2_sync.sink", "oauth2_sync.parallel"}
    # Nor what only a write, a saved plan, a JSON plan or git needs (#14).
    assert not modules & {"signal", "subprocess", "oauth2_sync.plandoc",
                          "oauth2_sync.planread", "oauth2_sync.planfile",
                          "oauth2_sync.render.json"}
    # A command's module is imported when it runs: this one, and the group's base.
    assert {m for m in modules if m.startswith("oauth2_sync.commands.")} == {
        "oauth2_sync.commands.base", "oauth2_sync.commands.plan",
    }
