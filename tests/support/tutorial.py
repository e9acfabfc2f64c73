"""The README tutorial: its ```sh blocks, the ```text output each must show.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import pytest

from support.kit import NOT_RUN, README
from support.shell import ShellCommand, split_commands


@dataclasses.dataclass(frozen=True)
class Fence:
    lang: str
    line: int
    end: int
    lines: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class TutorialBlock:
    """A ```sh block and the output its last command must show (a ```text block)."""

    commands: tuple[ShellCommand, ...]
    output: tuple[str, ...] | None


def tutorial_text() -> tuple[str, int]:
    """The tutorial between its markers, and the README line it starts on."""
    text = README.read_text(encoding="utf-8")
    begin = re.search(r"^<!-- BEGIN tutorial.*-->$", text, re.M)
    end = re.search(r"^<!-- END tutorial -->$", text, re.M)
    assert begin and end and begin.end() < end.start(), "README: tutorial markers missing"
    return text[begin.end() : end.start()], text[: begin.end()].count("\n") + 1


def fences(text: str, first_line: int) -> list[Fence]:
    found: list[Fence] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^```(\w*)\s*$", lines[i])
        if not opening:
            i += 1
            continue
        start = i
        i += 1
        while not lines[i].startswith("```"):
            i += 1
        found.append(Fence(opening.group(1), first_line + start, first_line + i,
                           tuple(lines[start + 1 : i])))
        i += 1
    return found


def tutorial_blocks() -> list[TutorialBlock]:
    text, first_line = tutorial_text()
    all_fences = fences(text, first_line)
    lines = text.splitlines()
    blocks: list[TutorialBlock] = []
    for index, fence in enumerate(all_fences):
        if fence.lang != "sh":
            continue
        first = next((line for line in fence.lines if line.strip()), "")
        run = not (first.lstrip().startswith("#") and NOT_RUN in first)
        commands = split_commands(fence.lines, fence.line + 1, run)
        output = None
        following = all_fences[index + 1] if index + 1 < len(all_fences) else None
        if following and following.lang == "text":
            between = lines[fence.end - first_line + 1 : following.line - first_line]
            if not any(line.strip() for line in between):
                output = following.lines
        blocks.append(TutorialBlock(tuple(commands), output))
    return blocks


def assert_shows(expected: Sequence[str], output: str, where: str) -> None:
    """Every expected line appears in ``output``, in order; ``...`` stands for any lines."""
    lines = [line.rstrip() for line in output.splitlines()]
    position = 0
    for want in expected:
        if want.strip() == "...":
            continue
        try:
            position = lines.index(want.rstrip(), position) + 1
        except ValueError:
            pytest.fail(
                f"{where}: the output lacks (in this order) the line\n{want}\n--- output:\n{output}"
            )
