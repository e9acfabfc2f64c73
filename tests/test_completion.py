"""``oauth2-sync completion bash|zsh|fish``: the scripts click generates, and what they get
back from the real program when a real bash asks (the COMP_WORDS/COMP_CWORD protocol).
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from support.kit import TIMEOUT, clean_env, program_dir


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``oauth2-sync`` of this checkout first on PATH, as the scripts call it by name."""
    return program_dir(tmp_path_factory.mktemp("bin"))


def run(bin_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["oauth2-sync", *args], env=clean_env(bin_dir) | env,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)


@pytest.mark.parametrize(
    ("shell", "needle"),
    [
        ("bash", "complete -o nosort -F _oauth2_sync_completion oauth2-sync\n"),
        ("zsh", "#compdef oauth2-sync\n"),
        ("fish", "complete --no-files --command oauth2-sync "),
    ],
)
def test_completion_prints_the_script_naming_the_program(
    bin_dir: Path, shell: str, needle: str
) -> None:
    done = run(bin_dir, "completion", shell)
    assert (done.returncode, done.stderr) == (0, "")
    assert needle in done.stdout
    # The variable the script sets to ask the program, derived from its name by click.
    assert "_OAUTH2_SYNC_COMPLETE=" in done.stdout
    assert done.stdout.endswith("\n") and not done.stdout.endswith("\n\n")


def test_completion_refuses_an_unknown_shell_in_one_line(bin_dir: Path) -> None:
    done = run(bin_dir, "completion", "tcsh")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines()[-1] == (
        "Error: Invalid value for '{bash|zsh|fish}': 'tcsh' is not one of 'bash', 'zsh', "
        "'fish'."
    )


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("oauth2-sync pl", ["plan"]),
        ("oauth2-sync comp", ["completion"]),
        ("oauth2-sync completion ", ["bash", "zsh", "fish"]),
        ("oauth2-sync drift --format ", ["text", "json", "markdown", "junit"]),
        ("oauth2-sync schema ", ["clients", "settings"]),
        ("oauth2-sync registry ", ["serve"]),
        ("oauth2-sync apply --auto", ["--auto-approve"]),
        ("oauth2-sync apply --no-p", ["--no-prune"]),
    ],
)
def test_bash_completes_commands_options_and_values(
    bin_dir: Path, words: str, expected: list[str]
) -> None:
    # The printed script, sourced into a real bash, completes through the real program.
    parts = [*words.split(), *([""] if words.endswith(" ") else [])]
    script = (
        'eval "$(oauth2-sync completion bash)"\n'
        f"COMP_WORDS=({' '.join(shlex.quote(p) for p in parts)})\n"
        f"COMP_CWORD={len(parts) - 1}\n"
        "_oauth2_sync_completion oauth2-sync\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash", "--noprofile", "--norc", "-c", script], env=clean_env(bin_dir),
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.split() == expected


@pytest.mark.parametrize(("shell", "cword"), [("zsh", "3"), ("fish", "")])
def test_zsh_and_fish_scripts_get_the_same_answers(bin_dir: Path, shell: str, cword: str) -> None:
    # What the printed zsh and fish functions ask the program (fish passes the current
    # token as COMP_CWORD); neither shell is needed to check the answer.
    script = run(bin_dir, "completion", shell).stdout
    assert f"_OAUTH2_SYNC_COMPLETE={shell}_complete" in script
    done = run(bin_dir, _OAUTH2_SYNC_COMPLETE=f"{shell}_complete",
               COMP_WORDS="oauth2-sync drift --format ", COMP_CWORD=cword)
    assert (done.returncode, done.stderr) == (0, "")
    # zsh gets "plain", value, "_" lines; fish "value" (click 8.4) or "plain,value" (8.5).
    lines = [line.removeprefix("plain,") for line in done.stdout.splitlines()]
    values = [line for line in lines if line not in ("plain", "_")]
    assert values == ["text", "json", "markdown", "junit"]
