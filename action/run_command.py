"""Runs one oauth2-sync command for the GitHub Action (action.yml) and the GitLab CI/CD
component (templates/oauth2-sync.yml), and records its outcome for later steps or jobs.

Both pass their inputs in the environment (never in a shell text, where a value could
inject commands): OAUTH2_SYNC_INPUT_COMMAND (validate, plan, apply, drift), _CONFIG,
_FORMAT, _ARGS (split like a shell would, never evaluated), _DOCUMENT, _ALLOW_UNSAFE,
_SUMMARY. Credentials stay in the environment too (OAUTH2_SYNC_CLIENT_ID and _SECRET):
nothing here puts them on a command line.

plan and drift write their document (stdout) to a file; validate and apply write to the
log. The exit status is the command's, except that plan and drift exit 0 on "changes"
(2) with a document: a step fails only on an error. The command's own status is
recorded as ``exit-code`` (GitHub, --outputs "$GITHUB_OUTPUT") or OAUTH2_SYNC_EXIT_CODE
(GitLab, a dotenv report), with the document's path. SIGINT and SIGTERM are passed on
to the command: GitHub's runner signals only the step's process when it cancels a job,
and apply must get the signal to stop cleanly.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Literal, get_args

Command = Literal["validate", "plan", "apply", "drift"]
Style = Literal["github", "dotenv"]
COMMANDS: tuple[str, ...] = get_args(Command)
WRITES_DOCUMENT = ("plan", "drift")
EXTENSIONS = {"markdown": "md", "json": "json", "junit": "xml", "text": "txt"}
CHANGES = 2  # plan: changes; drift: drift


class InputError(Exception):
    """An input the action cannot run with (one line for the log)."""


def inputs() -> dict[str, str]:
    """The action's inputs, from OAUTH2_SYNC_INPUT_* variables, stripped."""
    prefix = "OAUTH2_SYNC_INPUT_"
    return {
        key.removeprefix(prefix).lower(): value.strip()
        for key, value in os.environ.items()
        if key.startswith(prefix)
    }


def flag(values: dict[str, str], name: str, default: bool) -> bool:
    text = values.get(name, "").lower()
    if text in ("", "default"):
        return default
    if text not in ("true", "false"):
        raise InputError(f"{name} must be true or false, not {text!r}")
    return text == "true"


def command_line(values: dict[str, str]) -> tuple[str, list[str], Path | None]:
    """The command, its argument vector and the document it writes (plan, drift)."""
    command = values.get("command", "")
    if command not in COMMANDS:
        raise InputError(f"command must be one of {', '.join(COMMANDS)}, not {command!r}")
    # The oauth2-sync of the venv this program runs in (the action's install), whatever
    # PATH says; else the one on PATH.
    beside = Path(sys.executable).parent / "oauth2-sync"
    argv = [str(beside) if beside.is_file() else "oauth2-sync", command]
    if values.get("config"):
        argv += ["--config", values["config"]]
    fmt = values.get("format", "")
    if fmt:
        if command == "apply":
            raise InputError("format: apply has no --format (its report goes to the log)")
        argv += ["--format", fmt]
    if command == "apply":
        # In CI nobody answers the confirmation prompt: the pull request was the review.
        argv.append("--auto-approve")
        if flag(values, "allow_unsafe", default=False):
            argv.append("--allow-unsafe")
    elif flag(values, "allow_unsafe", default=False):
        raise InputError(f"allow-unsafe: only apply has --allow-unsafe, not {command}")
    try:
        argv += shlex.split(values.get("args", ""))
    except ValueError as exc:
        raise InputError(f"args: {exc}") from None
    document = None
    if command in WRITES_DOCUMENT:
        default = f"{command}.{EXTENSIONS.get(fmt or 'text', 'txt')}"
        document = Path(values.get("document") or default)
    return command, argv, document


def _open_document(document: Path) -> int:
    """The document for writing, never through a link: a pull request may commit
    ``plan.md`` as a link to a file a later step runs, and the plan's text is partly its."""
    try:
        return os.open(document, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise InputError(f"document: cannot write {document}: {exc.strerror} (a link or a "
                         "folder is refused)") from None


def run(argv: list[str], document: Path | None) -> int:
    """The command as a child; SIGINT and SIGTERM reach it, the status is returned."""
    stdout = _open_document(document) if document else None
    try:
        with subprocess.Popen(argv, stdout=stdout) as child:
            def forward(signum: int, _frame: FrameType | None) -> None:
                child.send_signal(signum)

            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, forward)
            return child.wait()
    except OSError as exc:
        raise InputError(f"cannot run {argv[0]}: {exc.strerror}") from None
    finally:
        if stdout is not None:
            os.close(stdout)


def record(outputs: Path | None, style: Style, values: dict[str, str]) -> None:
    """Appends the outputs as GitHub reads $GITHUB_OUTPUT (one file for the step), or
    writes them as a GitLab dotenv report (this job's only)."""
    if outputs is None:
        return
    names = {"exit-code": "OAUTH2_SYNC_EXIT_CODE", "document": "OAUTH2_SYNC_DOCUMENT"}
    with outputs.open("a" if style == "github" else "w", encoding="utf-8") as stream:
        for name, value in values.items():
            stream.write(f"{name if style == 'github' else names[name]}={value}\n")


def main() -> int:
    """Runs the command the inputs name; the exit status says whether the step failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outputs", type=Path, help="append the outputs to this file")
    parser.add_argument("--style", choices=get_args(Style), default="github")
    options = parser.parse_args()
    values = inputs()
    try:
        command, argv, document = command_line(values)
        summary = flag(values, "summary", default=True)
        code = run(argv, document)
    except InputError as exc:
        sys.stderr.write(f"Error: oauth2-sync action: {exc}; check the step's inputs\n")
        record(options.outputs, options.style, {"exit-code": "1"})
        return 1
    # A document that is empty is no document: a usage error prints nothing on stdout.
    has_document = document is not None and code <= CHANGES and document.stat().st_size > 0
    outputs = {"exit-code": str(code)}
    if has_document and document is not None:
        outputs["document"] = str(document)
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary and step_summary and values.get("format") == "markdown":
            with open(step_summary, "a", encoding="utf-8") as stream:
                stream.write(document.read_text(encoding="utf-8"))
    record(options.outputs, options.style, outputs)
    if command in WRITES_DOCUMENT and code == CHANGES:
        return 0 if has_document else 1
    return code


if __name__ == "__main__":
    sys.exit(main())
