"""The tutorial (docs/tutorial.md): its ```sh blocks, the ```text output each must show.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import pytest

from support.docs import DOCS, fences
from support.kit import NOT_RUN
from support.shell import ShellCommand, split_commands

TUTORIAL = DOCS / "tutorial.md"


@dataclasses.dataclass(frozen=True)
class TutorialBlock:
    """A ```sh block and the output its last command must show (a ```text block)."""

    commands: tuple[ShellCommand, ...]
    output: tuple[str, ...] | None


def tutorial_text() -> tuple[str, int]:
    """The tutorial between its markers, and the line of docs/tutorial.md it starts on."""
    text = TUTORIAL.read_text(encoding="utf-8")
    begin = re.search(r"^<!-- BEGIN tutorial.*-->$", text, re.M)
    end = re.search(r"^<!-- END tutorial -->$", text, re.M)
    assert begin and end and begin.end() < end.start(), "docs/tutorial.md: tutorial markers missing"
    return text[begin.end() : end.start()], text[: begin.end()].count("\n") + 1


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
