"""Conventions every command of ``oauth2_sync.cli`` keeps: the help texts (whole short
summaries, no document the user does not have), options only where they are used, and
one style for warnings, logged ones included."""

from __future__ import annotations

import gc
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from oauth2_sync.cli import cli, main
from oauth2_sync.commands.base import LogFormatter


def commands(group: click.Group = cli, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    """Every command and group under ``group``, with its full name."""
    for name, command in sorted(group.commands.items()):
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix}{name} ")


NAMES = [name for name, _ in commands()]


def test_the_command_list_shows_whole_short_summaries() -> None:
    result = CliRunner().invoke(cli, ["--help"], terminal_width=80)
    assert result.exit_code == 0
    listing = result.stdout.split("Commands:\n", 1)[1]
    assert "..." not in listing
    shown = dict(re.findall(r"^  (\S+) +(.+)$", listing, re.M))
    for name, command in cli.commands.items():
        # Set by hand, not cut from the help at the terminal's width by click.
        assert command.short_help is not None, name
        assert shown[name] == command.short_help, name
        assert command.short_help.endswith(".") and len(command.short_help) <= 62, name
    assert sorted(shown) == sorted(cli.commands)


@pytest.mark.parametrize("name", NAMES)
def test_help_cites_no_document_the_user_does_not_have(name: str) -> None:
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0
    assert not re.search(r"\bSPEC\b|\bsection\b|README", result.stdout, re.I), result.stdout
    command = dict(commands())[name]
    if isinstance(command, click.Group):
        return
    assert command.short_help is not None and "..." not in command.short_help


def test_registry_serve_offers_no_config_and_refuses_one_before_it(tmp_path: Path) -> None:
    serve = dict(commands())["registry serve"]
    options = {opt for param in serve.params for opt in param.opts}
    assert "--config" not in options and "--no-color" not in options
    assert {"--db", "-v", "-q"} <= options
    # Given before the command (a group option), it is refused rather than ignored.
    done = subprocess.run(
        [sys.executable, "-m", "oauth2_sync", "--config", "oauth2-sync.yaml", "registry",
         "serve", "--db", str(tmp_path / "r.db"), "--port", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "Error: registry serve reads no settings file: leave out --config (its options "
        "are --db, --seed, --host, --port, ...)\n"
    )
    assert not (tmp_path / "r.db").exists()


def record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("oauth2_sync.apply", level, __file__, 1, message, ("x",), None)


def test_logged_warnings_read_as_every_other_warning() -> None:
    formatter = LogFormatter()
    assert formatter.format(record(logging.WARNING, "limit %s exceeded")) == (
        "Warning: limit x exceeded"
    )
    assert formatter.format(record(logging.INFO, "formatted %s")) == (
        "INFO oauth2_sync.apply: formatted x"
    )
    assert formatter.format(record(logging.ERROR, "failed: %s")) == (
        "ERROR oauth2_sync.apply: failed: x"
    )


def test_every_command_is_found_where_the_group_says_under_its_own_name() -> None:
    from oauth2_sync.cli import COMMANDS

    assert sorted(cli.commands) == sorted(COMMANDS)
    for name in COMMANDS:
        assert cli.commands[name].name == name, name
    with pytest.raises(KeyError):
        cli.commands["plna"]


def test_the_console_script_freezes_the_heap_on_the_way_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The interpreter's shutdown then skips every object alive in its full collections
    (benchmarks/run.py: 27 ms of a plan of 1,000 clients), on success and on error."""
    for argv, code in ((["oauth2-sync", "--version"], 0), (["oauth2-sync", "no-such"], 1)):
        monkeypatch.setattr(sys, "argv", argv)
        before = gc.get_freeze_count()
        try:
            with pytest.raises(SystemExit) as exited:
                main()
            assert exited.value.code == code
            assert gc.get_freeze_count() > before + 1000
        finally:
            gc.unfreeze()  # this test process goes on
    assert capsys.readouterr().out.startswith("oauth2-sync, version ")
