"""The documentation site's pages as the tests read them: fenced blocks, the command
lines they show (```sh blocks and ```console blocks with ``$ `` prompts) and the output a
```console block says each command prints.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

from support.kit import ROOT
from support.shell import ShellCommand, invocations, split_commands

DOCS = ROOT / "docs"
SHELL_FENCES = {"sh", "bash", "shell"}
PROMPT = "$ "


@dataclasses.dataclass(frozen=True)
class Fence:
    lang: str
    line: int
    end: int
    lines: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ConsoleCommand:
    """A ``$ `` command of a ```console block and the lines it must print."""

    command: ShellCommand
    output: tuple[str, ...]


def pages() -> list[Path]:
    """Every Markdown page of the site, those other work adds included, and the README
    (the package's long description)."""
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def doc_location(page: Path, line: int) -> str:
    return f"{page.relative_to(ROOT)}:{line}"


def fences(text: str, first_line: int = 1) -> list[Fence]:
    """The fenced blocks of a Markdown text (indented ones too), with their line numbers."""
    found: list[Fence] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^(\s*)```(\w*)\s*$", lines[i])
        if not opening:
            i += 1
            continue
        indent, start = len(opening.group(1)), i
        i += 1
        while not lines[i].lstrip().startswith("```"):
            i += 1
        body = tuple(line[indent:] for line in lines[start + 1 : i])
        found.append(Fence(opening.group(2), first_line + start, first_line + i, body))
        i += 1
    return found


def console_commands(fence: Fence) -> list[ConsoleCommand]:
    """The ``$ `` commands of a ```console block: continuation lines (a trailing
    backslash, an open quote, a heredoc) belong to their command, the lines up to the
    next prompt are its output."""
    found: list[ConsoleCommand] = []
    lines = list(fence.lines)
    i = 0
    while i < len(lines):
        if not lines[i].startswith(PROMPT):
            i += 1
            continue
        start = i
        rest = [lines[i][len(PROMPT) :], *lines[i + 1 :]]
        command = split_commands(rest, fence.line + 1 + start)[0]
        i += command.text.count("\n") + 1
        output: list[str] = []
        while i < len(lines) and not lines[i].startswith(PROMPT):
            output.append(lines[i])
            i += 1
        found.append(ConsoleCommand(command, tuple(output)))
    return found


def page_console_commands(page: Path) -> list[ConsoleCommand]:
    """Every ``$ `` command of a page, in order."""
    text = page.read_text(encoding="utf-8")
    return [c for f in fences(text) if f.lang == "console" for c in console_commands(f)]


def command_lines(page: Path) -> Iterator[tuple[str, list[str]]]:
    """Every ``oauth2-sync`` invocation a page shows, with where it is: in shell blocks
    and in ```console blocks, run or only shown."""
    for fence in fences(page.read_text(encoding="utf-8")):
        if fence.lang in SHELL_FENCES:
            for command in split_commands(fence.lines, fence.line + 1):
                for args in invocations(command.text):
                    yield doc_location(page, command.line), args
        elif fence.lang == "console":
            for console in console_commands(fence):
                for args in invocations(console.command.text):
                    yield doc_location(page, console.command.line), args
