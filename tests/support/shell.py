"""Shell text as the kit reads it: commands (continuations, heredocs, ``# exit N``) and
the ``oauth2-sync`` invocations in them, parsed by the real click command tree.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Sequence

import click

from oauth2_sync.cli import cli
from support.kit import NOT_RUN

HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_]\w*)\1")
EXPECT_EXIT = re.compile(r"#\s*exit\s+(\d+)\b")
OPERATORS = {"|", "||", "&&", ";", "&", "(", ")", ";;", "!"}
SHELL_KEYWORDS = {"if", "then", "elif", "else", "do", "while", "until", "{", "time", "exec"}


@dataclasses.dataclass(frozen=True)
class ShellCommand:
    """One command of a shell text: its head (continuation lines) and heredoc bodies."""

    text: str
    head: str
    line: int
    expect: int
    run: bool


def split_commands(lines: Sequence[str], first_line: int, run: bool = True) -> list[ShellCommand]:
    """The commands of ``lines``: backslash continuations and open quotes join lines, a
    heredoc's body belongs to its command, comment lines are skipped."""
    commands: list[ShellCommand] = []
    i = 0
    while i < len(lines):
        if not lines[i].strip() or lines[i].lstrip().startswith("#"):
            i += 1
            continue
        start = i
        head = [lines[i]]
        while head[-1].endswith("\\") or not _complete(head):
            i += 1
            assert i < len(lines), f"line {first_line + start}: unterminated command"
            head.append(lines[i])
        body: list[str] = []
        heredoc = HEREDOC.search("\n".join(head))
        if heredoc:
            while not body or body[-1].strip() != heredoc.group(2):
                i += 1
                assert i < len(lines), f"line {first_line + start}: unterminated heredoc"
                body.append(lines[i])
        i += 1
        expect = EXPECT_EXIT.search(head[-1])
        head_text = "\n".join(head)
        commands.append(
            ShellCommand(
                text="\n".join(head + body), head=head_text, line=first_line + start,
                expect=int(expect.group(1)) if expect else 0,
                run=run and NOT_RUN not in head_text,
            )
        )
    return commands


def _complete(head: Sequence[str]) -> bool:
    try:
        shlex.split("\n".join(head), comments=True)
    except ValueError:
        return False  # an open quote: the command goes on
    return True


def invocations(shell: str) -> list[list[str]]:
    """The argument lists of every ``oauth2-sync`` command in a shell text."""
    found: list[list[str]] = []
    for command in split_commands(shell.splitlines(), 1):
        lexer = shlex.shlex(command.head.replace("\\\n", " "), posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        simple: list[str] = []
        for token in [*lexer, ";"]:
            if token not in OPERATORS:
                simple.append(token)
                continue
            words = _words(simple)
            if words and words[0] == "oauth2-sync":
                found.append(words[1:])
            simple = []
    return found


def _words(tokens: list[str]) -> list[str]:
    # Leading keywords and VAR=value assignments go; so does everything from the first
    # redirection. A completion request (_OAUTH2_SYNC_COMPLETE=...) is no command line.
    while tokens and (tokens[0] in SHELL_KEYWORDS or re.match(r"^[A-Za-z_]\w*=", tokens[0])):
        if tokens[0].startswith("_OAUTH2_SYNC_COMPLETE="):
            return []
        tokens = tokens[1:]
    for index, token in enumerate(tokens):
        if token and set(token) <= set("<>&"):
            cut = index - 1 if index and tokens[index - 1].isdigit() else index
            return tokens[:cut]
    return tokens


def parse_with_click(args: Sequence[str]) -> list[str]:
    """Parse ``oauth2-sync ARGS`` with the real command tree, invoking nothing; the path
    of command names. Raises click's errors for unknown commands, options and values."""
    path: list[str] = []
    try:
        ctx = cli.make_context("oauth2-sync", list(args))
    except click.exceptions.Exit as done:  # --version, --help
        assert done.exit_code == 0
        return path
    command: click.Command = cli
    rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
    while isinstance(command, click.Group) and rest:
        name, sub, rest = command.resolve_command(ctx, rest)
        assert name is not None and sub is not None
        path.append(name)
        ctx = sub.make_context(name, rest, parent=ctx)
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        command = sub
    assert not rest, f"unexpected arguments {rest}"
    return path
