"""``completion``: print the shell completion script (as ``gh completion`` does)."""

from __future__ import annotations

from typing import Literal, get_args

import click

Shell = Literal["bash", "zsh", "fish"]
SHELLS: tuple[Shell, ...] = get_args(Shell)

PROG_NAME = "oauth2-sync"
COMPLETE_VAR = "_OAUTH2_SYNC_COMPLETE"
"""The variable click's scripts set when they ask the program for completions (click
derives it from the program name)."""


@click.command("completion", short_help="Print the shell completion script (bash, zsh, fish).")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: Shell) -> None:
    """Print the completion script for SHELL (bash 4.4 or later, zsh, fish).

    The script asks oauth2-sync for completions as you type: commands, options, choices
    such as --format values and schema names, and file names. For bash, add
    `eval "$(oauth2-sync completion bash)"` to ~/.bashrc; for zsh, the same with zsh
    to ~/.zshrc; for fish, write the script to
    ~/.config/fish/completions/oauth2-sync.fish.
    """
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    if completer is None:  # click ships all three; a future click might not
        raise click.UsageError(f"click cannot complete {shell} here")
    root = ctx.find_root().command
    click.echo(completer(root, {}, PROG_NAME, COMPLETE_VAR).source(), nl=False)
