"""Every command against broken environments: one line, exit 1, never a traceback or a hang.

Each cell runs a real ``oauth2-sync`` process in a copy of the example repository,
wired to a real reference server over HTTP (the examples applied once), after breaking
one thing: a missing folder, a folder that cannot be written, a full device, a FIFO, a
directory or a device where a file is expected. The tests run as root, so permissions
stop nothing: a folder is made immutable (``chattr +i``, undone after the cell), and
``/proc`` and ``/dev/full`` fail as they do for anyone.

A FIFO would block a process that opens it for reading: every run has a timeout, and a
hang fails the cell. ``validate`` writes its findings to stdout (they are its report),
so its cells check stdout's first line and an empty stderr instead.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.registry import RegistryServer, examples_against, launch_registry_server

TIMEOUT = 60


@dataclasses.dataclass
class Env:
    """A copy of the converged examples, and what a cell broke (undone afterwards)."""

    root: Path
    env: dict[str, str]
    immutable: list[Path] = dataclasses.field(default_factory=list)

    def run(self, *args: str, stdout: int | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "oauth2_sync", *args], cwd=self.root, env=self.env,
            stdin=subprocess.DEVNULL, stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, timeout=TIMEOUT, check=False,
        )

    def fifo(self, name: str) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        return name

    def folder(self, name: str) -> str:
        (self.root / name).mkdir(parents=True, exist_ok=True)
        return name

    def freeze(self, name: str) -> str:
        """Make ``name`` immutable: nothing can be created, renamed or removed in it."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["chattr", "+i", str(path)], check=True)
        self.immutable.append(path)
        return name


@pytest.fixture(scope="module")
def converged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """The examples, applied once to a server of this module's own."""
    server: RegistryServer = launch_registry_server(tmp_path_factory.mktemp("registry"))
    root, env = examples_against(tmp_path_factory.mktemp("broken"), server)
    applied = subprocess.run(
        [sys.executable, "-m", "oauth2_sync", "apply", "--auto-approve"], cwd=root, env=env,
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    try:
        yield root, env
    finally:
        server.stop()


@pytest.fixture
def broken(converged: tuple[Path, dict[str, str]], tmp_path: Path) -> Iterator[Env]:
    source, env = converged
    root = tmp_path / "repo"
    shutil.copytree(source, root, symlinks=True)
    made = Env(root, env)
    try:
        yield made
    finally:
        for path in made.immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)


def new_client_file(env: Env) -> None:
    """Declare a client the registry does not hold, so that apply has a create to make."""
    (env.root / "clients" / "payments" / "ops.yaml").write_text(
        "clients:\n"
        "  - client_id: acme-ops-cli\n"
        "    name: Ops CLI\n"
        "    email: ops@acme.example\n"
        "    partner: acme\n"
        "    grant_types: [password]\n"
    )


def make_plan_file(env: Env) -> None:
    planned = env.run("plan", "--out", "plan.json")
    assert planned.returncode == 2, planned.stderr


def _unformat(env: Env) -> None:
    """Put a key of a client file out of schema order, so that fmt has a file to rewrite."""
    path = env.root / "clients" / "payments" / "reporting.yaml"
    text = path.read_text()
    swapped = text.replace(
        "    name: Reporting service\n    email: data-team@acme.example\n",
        "    email: data-team@acme.example\n    name: Reporting service\n", 1,
    )
    assert swapped != text
    path.write_text(swapped)


def _fmt_in_an_immutable_folder(env: Env) -> list[str]:
    _unformat(env)
    env.freeze("clients/payments")
    return ["fmt"]


def _out_links_to_a_fifo(env: Env) -> list[str]:
    os.symlink(env.fifo("plan.fifo"), env.root / "plan.json")
    return ["plan", "--out", "plan.json"]


def _apply_with_an_immutable_journal_folder(env: Env) -> list[str]:
    new_client_file(env)
    make_plan_file(env)
    env.freeze(".oauth2-sync")
    return ["apply", "plan.json"]


Cell = tuple[str, Callable[[Env], list[str]], str]
"""(name, break the environment and return the command line, the one line expected)"""

WRITE_IN = "check that the folder is writable and has free space"
PLANFILE = "pass the file that `oauth2-sync plan --out FILE` wrote"

CELLS: list[Cell] = [
    # --- the settings file ------------------------------------------------------------
    ("plan, settings file missing",
     lambda e: ["--config", "missing/oauth2-sync.yaml", "plan"],
     "missing/oauth2-sync.yaml:1:1: error: [file] No such file or directory"),
    ("plan, settings file is a directory",
     lambda e: ["--config", e.folder("settings.d"), "plan"],
     "settings.d:1:1: error: [file] not a regular file (a directory)"),
    ("drift, settings file is a FIFO",
     lambda e: ["--config", e.fifo("settings.fifo"), "drift"],
     "settings.fifo:1:1: error: [file] not a regular file (a FIFO)"),
    ("export, settings file is a device",
     lambda e: ["--config", "/dev/full", "export"],
     "/dev/full:1:1: error: [file] not a regular file (a character device)"),
    ("rotate-secret, settings file is a FIFO",
     lambda e: ["--config", e.fifo("settings.fifo"), "rotate-secret", "acme-reporting"],
     "settings.fifo:1:1: error: [file] not a regular file (a FIFO)"),
    ("forget, settings file is a directory",
     lambda e: ["--config", e.folder("settings.d"), "forget", "acme-reporting"],
     "settings.d:1:1: error: [file] not a regular file (a directory)"),
    ("apply, settings file is under /proc",
     lambda e: ["--config", "/proc/self/oauth2-sync.yaml", "apply", "--auto-approve"],
     "/proc/self/oauth2-sync.yaml:1:1: error: [file] No such file or directory"),
    # --- client files -------------------------------------------------------------------
    ("fmt, a client file is a FIFO",
     lambda e: ["fmt", e.fifo("clients/payments/pipe.yaml")],
     "clients/payments/pipe.yaml:1:1: error: [file] not a regular file (a FIFO)"),
    ("fmt, the folder of a file to rewrite is immutable",
     _fmt_in_an_immutable_folder,
     "clients/payments/reporting.yaml:1:1: error: [file] cannot rewrite the file: Operation "
     "not permitted; check that the file and its folder are writable"),
    # --- plan --out -----------------------------------------------------------------------
    ("plan, --out in a missing folder",
     lambda e: ["plan", "--out", "build/tfplan"],
     "Error: build/tfplan: cannot write the plan file: the folder build does not exist; "
     "create it first"),
    ("plan, --out under /proc",
     lambda e: ["plan", "--out", "/proc/version"],
     f"Error: /proc/version: cannot write the plan file in /proc: No such file or directory; "
     f"{WRITE_IN}"),
    ("plan, --out is /dev/full",
     lambda e: ["plan", "--out", "/dev/full"],
     "Error: /dev/full: cannot write the plan file: it is a character device, and --out "
     "writes only regular files; choose a file name"),
    ("plan, --out is a FIFO",
     lambda e: ["plan", "--out", e.fifo("plan.fifo")],
     "Error: plan.fifo: cannot write the plan file: it is a FIFO, and --out writes only "
     "regular files; choose a file name"),
    ("plan, --out is a link to a FIFO",
     _out_links_to_a_fifo,
     "Error: plan.json: cannot write the plan file: it is a FIFO, and --out writes only "
     "regular files; choose a file name"),
    ("plan, --out is a directory",
     lambda e: ["plan", "--out", e.folder("build")],
     "Error: build: cannot write the plan file: it is a directory, and --out writes only "
     "regular files; choose a file name"),
    ("plan, --out in an immutable folder",
     lambda e: ["plan", "--out", f"{e.freeze('build')}/tfplan"],
     f"Error: build/tfplan: cannot write the plan file in build: Operation not permitted; "
     f"{WRITE_IN}"),
    ("plan, stdout is a full device",
     lambda e: ["plan", "--format", "json"],
     "Error: No space left on device; check where the output goes, free space, and the "
     "folders in use"),
    # --- apply ----------------------------------------------------------------------------
    ("apply PLANFILE, missing",
     lambda e: ["apply", "missing.json"],
     f"Error: missing.json: cannot read the plan file: No such file or directory; {PLANFILE}"),
    ("apply PLANFILE, a FIFO",
     lambda e: ["apply", e.fifo("plan.fifo")],
     f"Error: plan.fifo: cannot read the plan file: not a regular file (a FIFO); {PLANFILE}"),
    ("apply PLANFILE, a device",
     lambda e: ["apply", "/dev/full"],
     "Error: /dev/full: cannot read the plan file: not a regular file (a character device); "
     f"{PLANFILE}"),
    ("apply PLANFILE, a directory",
     lambda e: ["apply", e.folder("plans")],
     "Error: plans: cannot read the plan file: not a regular file (a directory); "
     f"{PLANFILE}"),
    ("apply PLANFILE, the journal's folder is immutable",
     _apply_with_an_immutable_journal_folder,
     "Error: .oauth2-sync/pending-secrets.jsonl: cannot open the pending-secrets journal: "
     "Operation not permitted"),
    # --- export, schema, adopt --------------------------------------------------------------
    ("export, --out under /proc",
     lambda e: ["export", "--include-declared", "--out", "/proc/self/exported"],
     "Error: --out /proc/self/exported: No such file or directory; check that it is a "
     "folder, or can be created, and is writable"),
    ("export, --out is a file",
     lambda e: ["export", "--include-declared", "--out", "/proc/version"],
     "Error: --out /proc/version: File exists and is not a folder; choose a folder"),
    ("schema, stdout is a full device",
     lambda e: ["schema"],
     "Error: No space left on device; check where the output goes, free space, and the "
     "folders in use"),
    ("adopt, the token file is a FIFO",
     lambda e: ["adopt", "acme-reporting", "--registration-client-uri",
                "http://127.0.0.1:9/reg/acme-reporting",
                "--registration-access-token-file", e.fifo("token.fifo")],
     "Error: token.fifo: cannot read the registration access token: not a regular file "
     "(a FIFO)"),
]

FULL_STDOUT = {"plan, stdout is a full device", "schema, stdout is a full device"}


@pytest.mark.parametrize(("name", "setup", "expected"), CELLS, ids=[c[0] for c in CELLS])
def test_one_line_and_exit_1(
    broken: Env, name: str, setup: Callable[[Env], list[str]], expected: str
) -> None:
    args = setup(broken)
    if name in FULL_STDOUT:
        with open("/dev/full", "w") as full:
            result = broken.run(*args, stdout=full.fileno())
    else:
        result = broken.run(*args)
    assert "Traceback" not in result.stderr
    assert (result.returncode, result.stderr) == (1, expected + "\n"), result.stdout


VALIDATE_CELLS: list[Cell] = [
    ("validate, settings file is a FIFO",
     lambda e: ["--config", e.fifo("settings.fifo"), "validate"],
     "settings.fifo:1:1: error: [file] not a regular file (a FIFO)"),
    ("validate, settings file is a directory",
     lambda e: ["--config", e.folder("settings.d"), "validate"],
     "settings.d:1:1: error: [file] not a regular file (a directory)"),
    ("validate, a client file given is a FIFO",
     lambda e: ["validate", e.fifo("clients/payments/pipe.yaml")],
     "clients/payments/pipe.yaml:1:1: error: [file] not a regular file (a FIFO)"),
    ("validate, a client file given is a device",
     lambda e: ["validate", "/dev/zero"],
     "/dev/zero:1:1: error: [file] not a regular file (a character device)"),
]


@pytest.mark.parametrize(
    ("name", "setup", "expected"), VALIDATE_CELLS, ids=[c[0] for c in VALIDATE_CELLS]
)
def test_validate_reports_the_finding_and_exits_1(
    broken: Env, name: str, setup: Callable[[Env], list[str]], expected: str
) -> None:
    result = broken.run(*setup(broken))
    assert (result.returncode, result.stderr) == (1, ""), name
    assert result.stdout.splitlines()[0] == expected


def test_nothing_was_written_by_a_refused_plan_file(broken: Env) -> None:
    """The FIFO and the device are left as they were: not replaced by a regular file."""
    broken.fifo("plan.fifo")
    result = broken.run("plan", "--out", "plan.fifo")
    assert result.returncode == 1
    assert (broken.root / "plan.fifo").is_fifo()
    assert sorted(p.name for p in broken.root.iterdir() if p.name.startswith(".plan")) == []
