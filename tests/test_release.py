"""The release build: the wheel as ``python -m build`` makes it carries the schemas and
``py.typed``, has the one version, and installed into a fresh venv (its dependencies from
the package index, as a user's pip gets them) validates the examples.

``scripts/test`` builds the wheel and sdist once, checks them with twine, and points
``OAUTH2_SYNC_DIST`` at them; run alone, this module builds the wheel itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from oauth2_sync import __version__

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCHEMAS = ROOT / "oauth2_sync" / "schemas"
TIMEOUT = 600


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built wheel: from ``OAUTH2_SYNC_DIST`` when the test command built it, else
    built here once."""
    given = os.environ.get("OAUTH2_SYNC_DIST")
    if given:
        folder = Path(given)
    else:
        folder = tmp_path_factory.mktemp("dist")
        built = subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--outdir", str(folder), str(ROOT)],
            capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wheels = sorted(folder.glob("oauth2_sync-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site-packages) with the wheel pip-installed; its bin/."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=TIMEOUT)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return venv / "bin"


def test_the_wheel_carries_schemas_and_py_typed_and_the_one_version(wheel: Path) -> None:
    assert wheel.name == f"oauth2_sync-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"oauth2_sync-{__version__}.dist-info/METADATA").decode()
    schemas = {f"oauth2_sync/schemas/{p.name}" for p in SCHEMAS.iterdir()}
    assert len(schemas) == 4
    assert schemas | {"oauth2_sync/py.typed"} <= names
    assert not {n for n in names if n.startswith(("tests/", "benchmarks/", "examples/"))}
    assert re.search(rf"^Version: {re.escape(__version__)}$", metadata, re.M)
    assert re.search(r"^Description-Content-Type: text/markdown$", metadata, re.M)


def test_the_installed_wheel_validates_the_examples(installed: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo, ignore=shutil.ignore_patterns(".oauth2-sync", ".secrets"))
    # Only the venv's program on PATH, run outside the checkout: nothing of it is imported.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "OAUTH2_SYNC"))}
    env["PATH"] = f"{installed}{os.pathsep}{env.get('PATH', '')}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(installed / "oauth2-sync"), *args], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT, check=False)

    version = run("--version")
    assert (version.returncode, version.stdout) == (0, f"oauth2-sync, version {__version__}\n")
    validated = run("validate")
    assert (validated.returncode, validated.stderr) == (0, ""), validated.stdout
    assert validated.stdout.endswith("\n4 files, 12 clients: 0 errors, 3 warnings.\n")
    # The schemas come out of the installed package, as an editor's copy is made.
    schema = run("schema", "clients")
    assert schema.returncode == 0
    assert schema.stdout == (SCHEMAS / "clients.schema.json").read_text()
    where = subprocess.run(
        [str(installed / "python"), "-c", "import oauth2_sync; print(oauth2_sync.__file__)"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=True,
    )
    assert where.stdout.startswith(str(installed.parent))


def test_the_changelog_keeps_a_changelog_form() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    versions = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.M)
    assert versions[0] == ("Unreleased", "")
    # The current version has its dated section: the one source and the log agree.
    assert (__version__, versions[1][1]) == versions[1] and versions[1][1]
    kinds = set(re.findall(r"^### (.+)$", text, re.M))
    assert kinds <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_the_github_action_installs_from_its_own_checkout_and_runs(tmp_path: Path) -> None:
    """The action's two steps exactly as action.yml has them (the kit tests replace the
    install with this checkout's interpreter): pip installs the action's checkout into a
    venv under RUNNER_TEMP, puts it on GITHUB_PATH, and the run step validates the
    examples and records its exit code as an output."""
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    install, run_step = action["runs"]["steps"]
    checkout = tmp_path / "action"
    # What `uses: OWNER/oauth2-sync@TAG` checks out: the repository's files, no local state.
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "dist", "build", "*.egg-info", "__pycache__",
        ".oauth2-sync", ".secrets", "site", ".mypy_cache", ".ruff_cache", ".pytest_cache",
        ".hypothesis", "mutants", ".coverage*", ".work",
    ))
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo, ignore=shutil.ignore_patterns(".oauth2-sync", ".secrets"))
    runner_temp, github_path, outputs = tmp_path / "runner", tmp_path / "path", tmp_path / "out"
    runner_temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "OAUTH2_SYNC"))}
    env.update(RUNNER_TEMP=str(runner_temp), GITHUB_ACTION_PATH=str(checkout),
               GITHUB_PATH=str(github_path), GITHUB_OUTPUT=str(outputs))
    installed = subprocess.run(["bash", "-eo", "pipefail", "-c", install["run"]], cwd=repo,
                               env=env, capture_output=True, text=True, timeout=TIMEOUT,
                               check=False)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    venv_bin = runner_temp / "oauth2-sync-action" / "bin"
    assert github_path.read_text() == f"{venv_bin}\n"
    script = run_step["run"].replace("${{ github.action_path }}", str(checkout))
    inputs = {f"OAUTH2_SYNC_INPUT_{k.upper()}": "" for k in ("config", "format", "document",
                                                               "args")}
    inputs.update(OAUTH2_SYNC_INPUT_COMMAND="validate", OAUTH2_SYNC_INPUT_ALLOW_UNSAFE="false",
                  OAUTH2_SYNC_INPUT_SUMMARY="false")
    ran = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=repo,
                         env={**env, **inputs}, capture_output=True, text=True,
                         timeout=TIMEOUT, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.endswith("\n4 files, 12 clients: 0 errors, 3 warnings.\n")
    assert outputs.read_text() == "exit-code=0\n"
