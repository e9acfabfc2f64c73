"""Renderers of validation findings: text, JSON and GitHub workflow commands."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TextIO

import click

from oauth2_sync.errors import Diagnostic
from oauth2_sync.safetext import printable

FORMAT_VERSION = 1


def render_text(
    diagnostics: Sequence[Diagnostic], files: int, clients: int, stream: TextIO, *, color: bool,
    quiet: bool = False,
) -> None:
    """``FILE:LINE:COL: error: [RULE] message`` lines, then a one-line summary.

    ``quiet`` leaves out the warnings' lines (the summary still counts them).
    """
    for d in _shown(diagnostics, quiet):
        severity = (
            click.style(d.severity, fg="red" if d.severity == "error" else "yellow", bold=True)
            if color
            else d.severity
        )
        stream.write(
            f"{printable(d.file)}:{d.line}:{d.column}: {severity}: [{d.rule}] {printable(d.message)}\n"
        )
    stream.write(summary(diagnostics, files, clients) + "\n")


def summary(diagnostics: Sequence[Diagnostic], files: int, clients: int) -> str:
    """``3 files, 10 clients: 1 error, 2 warnings.``"""
    errors = sum(1 for d in diagnostics if d.severity == "error")
    warnings = len(diagnostics) - errors
    return (
        f"{_count(files, 'file')}, {_count(clients, 'client')}: "
        f"{_count(errors, 'error')}, {_count(warnings, 'warning')}."
    )


def render_json(
    diagnostics: Sequence[Diagnostic], files: int, clients: int, stream: TextIO
) -> None:
    """A JSON object with ``format_version``, counts and ``diagnostics``."""
    errors = sum(1 for d in diagnostics if d.severity == "error")
    document = {
        "format_version": FORMAT_VERSION,
        "valid": errors == 0,
        "files": files,
        "clients": clients,
        "errors": errors,
        "warnings": len(diagnostics) - errors,
        "diagnostics": [
            {
                "file": d.file,
                "line": d.line,
                "column": d.column,
                "severity": d.severity,
                "rule": d.rule,
                "message": d.message,
            }
            for d in diagnostics
        ],
    }
    stream.write(_json_printable(json.dumps(document, indent=2, ensure_ascii=False)))
    stream.write("\n")


_NOT_PLAIN = re.compile(r"[^\n\x20-\x7e]")


def _json_printable(text: str) -> str:
    """JSON text with every invisible or control character of its strings escaped.

    ``json`` escapes C0 controls only; DEL, C1 controls (ESC's 8-bit form) and
    bidirectional overrides from file names would reach a terminal raw. Readable
    non-ASCII (accents, CJK) stays as it is, and the data parsed back is the same.
    """
    return _NOT_PLAIN.sub(
        lambda found: found[0] if found[0].isprintable() else json.dumps(found[0])[1:-1], text
    )


def render_github(
    diagnostics: Sequence[Diagnostic], files: int, clients: int, stream: TextIO, *,
    quiet: bool = False,
) -> None:
    """GitHub Actions workflow commands, so findings show inline on the pull request.

    ``quiet`` leaves out the warnings' commands (the summary still counts them).
    """
    for d in _shown(diagnostics, quiet):
        # Control characters of file names and messages would reach the log raw: the
        # runner unescapes only %25, %0D, %0A (and %3A, %2C in properties).
        props = ",".join(
            f"{k}={_gh_property(printable(v))}"
            for k, v in (
                ("file", d.file),
                ("line", str(d.line)),
                ("col", str(d.column)),
                ("title", f"oauth2-sync {d.rule}"),
            )
        )
        stream.write(f"::{d.severity} {props}::{_gh_data(printable(d.message))}\n")
    stream.write(summary(diagnostics, files, clients) + "\n")


def _shown(diagnostics: Sequence[Diagnostic], quiet: bool) -> Sequence[Diagnostic]:
    return [d for d in diagnostics if d.severity == "error"] if quiet else diagnostics


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _gh_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(value: str) -> str:
    return _gh_data(value).replace(":", "%3A").replace(",", "%2C")
