"""The command line: the group of ``commands/`` and the console script's entry point.

Each command lives in a module of its own under ``oauth2_sync/commands/``; this module
assembles them and keeps the names tests and scripts import (``cli``, ``main``).
"""

from __future__ import annotations

from oauth2_sync.commands.adopt import adopt
from oauth2_sync.commands.apply import apply
from oauth2_sync.commands.base import Context, cli, common_options, os_error_line, pass_ctx
from oauth2_sync.commands.completion import completion
from oauth2_sync.commands.drift import drift
from oauth2_sync.commands.export import export
from oauth2_sync.commands.fmt import fmt_command
from oauth2_sync.commands.forget import forget
from oauth2_sync.commands.plan import plan
from oauth2_sync.commands.registry import registry
from oauth2_sync.commands.rotate_secret import rotate_secret
from oauth2_sync.commands.schema import schema
from oauth2_sync.commands.validate import validate

__all__ = ["Context", "cli", "common_options", "main", "os_error_line", "pass_ctx"]

for _command in (
    validate, schema, plan, apply, rotate_secret, registry, adopt, forget, fmt_command,
    drift, export, completion,
):
    cli.add_command(_command)


def main() -> None:
    """Entry point of the console script."""
    cli(prog_name="oauth2-sync")
