"""The command line: the group of ``commands/`` and the console script's entry point.

Each command lives in a module of its own under ``oauth2_sync/commands/``; this module
assembles them and keeps the names tests and scripts import (``cli``, ``main``). A
command's module is imported when the command is first looked up, so a run imports
the one it runs, not all thirteen (``--help`` and the docs look every one up).
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator, Mapping, MutableMapping

import click

from oauth2_sync.commands.base import Context, cli, common_options, os_error_line, pass_ctx

__all__ = ["Context", "LazyCommands", "cli", "common_options", "main", "os_error_line", "pass_ctx"]

COMMANDS: Mapping[str, str] = {
    "adopt": "adopt",
    "apply": "apply",
    "completion": "completion",
    "drift": "drift",
    "export": "export",
    "fmt": "fmt:fmt_command",
    "forget": "forget",
    "plan": "plan",
    "registry": "registry",
    "review-status": "review_status",
    "rotate-secret": "rotate_secret",
    "schema": "schema",
    "validate": "validate",
}
"""Each command's name and where it is: ``module[:attribute]`` under ``oauth2_sync.commands``
(the attribute defaults to the module's name)."""


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's commands by name, each imported from its module on first access.

    Names are known without importing anything, so listing, suggestions for a typo and
    completion of names stay cheap; click, mkdocs-click and the tests use it as the
    plain dict click keeps.
    """

    def __init__(self, where: Mapping[str, str]) -> None:
        self._where = dict(where)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            module, _, attribute = self._where[name].partition(":")
            loaded = importlib.import_module(f"oauth2_sync.commands.{module}")
            self._loaded[name] = getattr(loaded, attribute or module)
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._where.setdefault(name, "")
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._where[name]
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


cli.commands = LazyCommands(COMMANDS)


def main() -> None:
    """Entry point of the console script: runs the command, then readies the exit.

    On the way out every object alive is frozen (``gc.freeze``): the interpreter's
    shutdown then skips them in its full collections, which otherwise walk every module,
    function and loaded client several times, for memory the process hands back anyway
    (27 ms of a plan of 1,000 clients, benchmarks/run.py). Exit handlers, flushes and
    the freeing of what nothing else references still happen.
    """
    try:
        cli(prog_name="oauth2-sync")
    finally:
        gc.freeze()
