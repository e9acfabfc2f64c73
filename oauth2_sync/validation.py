"""Offline validation of client files: schema, OAuth rules, ownership and policy.

(Work in progress: the public API below is stable; the rules are being written.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from oauth2_sync.errors import Diagnostic, InputError
from oauth2_sync.loader import Document
from oauth2_sync.model import Client
from oauth2_sync.settings import Settings


@dataclass(frozen=True, slots=True)
class DesiredClient:
    """A client declared in a file, with where it was declared."""

    client: Client
    document: Document
    index: int

    @property
    def file(self) -> str:
        """The file, as named in messages."""
        return self.document.display

    @property
    def line(self) -> int:
        """The line of the client's entry (computed on demand)."""
        return self.document.locate(("clients", self.index))[0]


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """Every finding, sorted by file and line, and the clients that passed."""

    diagnostics: tuple[Diagnostic, ...]
    clients: tuple[DesiredClient, ...]
    files: tuple[str, ...]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "warning")


def validate(settings: Settings, paths: Sequence[Path] | None = None) -> ValidationResult:
    """Check the client files (default: those the settings name) offline."""
    raise NotImplementedError


def load_desired(settings: Settings) -> tuple[DesiredClient, ...]:
    """The desired clients, sorted by client ID; ``InputError`` if any file has an error."""
    result = validate(settings)
    if result.errors:
        raise InputError(result.errors)
    return tuple(sorted(result.clients, key=lambda d: d.client.client_id))
