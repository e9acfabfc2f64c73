"""The few exception classes of oauth2-sync.

Every error a user can cause ends up as one of these; the CLI turns them into one
line each and an exit code. Messages are built once, where the error is raised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Literal

from oauth2_sync.records import NamedTuple

Severity = Literal["error", "warning"]
RuleId = Literal[
    # loader: reading the bytes and the YAML
    "file",
    "file-size",
    "encoding",
    "yaml-syntax",
    "yaml-depth",
    "yaml-key",
    "yaml-1.1",
    "duplicate-key",
    "anchor",
    "merge-key",
    "tab-indent",
    # schema check
    "schema",
    "unknown-key",
    "missing-key",
    # validation: OAuth rules, ownership and policy
    "no-files",
    "client-id",
    "duplicate-client-id",
    "redirect-uri",
    "redirect-uri-duplicate",
    "redirect-uris-required",
    "redirect-uris-forbidden",
    "refresh-token-never",
    "team-ownership",
    "policy-max-ttl",
    "policy-grant-type",
    "outside-root",
    "settings",
    "unmatched-file",
    "unrestricted-users",
    "implicit-grant",
    "non-expiring-access-token",
    "refresh-ttl-without-grant",
    # plan: what the registry cannot hold or does not know
    "registry-unsupported",
    "registry-unreachable",
    "client-unmanaged",
    "partner-unknown",
    "user-unknown",
    # plan files and fmt
    "plan-refused",
    "fmt",
]
"""Every rule ID a diagnostic can carry; the table of docs/reference/client-files.md lists
the user-facing ones."""


class Diagnostic(NamedTuple):
    """One finding about user input, pointing at file, line and column (1-based)."""

    file: str
    line: int
    column: int
    severity: Severity
    rule: RuleId
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}:{self.column}: {self.severity}: [{self.rule}] {self.message}"
        )


ORDER = attrgetter("file", "line", "column", "severity", "rule", "message")
"""The order of ``Diagnostic`` as a sort key: ``sorted(found, key=ORDER)`` sorts as
``sorted(found)`` does, a third of the time (no comparison method called per pair)."""


class Oauth2SyncError(Exception):
    """Base class: an error the CLI reports as one line, without a traceback."""


class InputError(Oauth2SyncError):
    """User input (a client file or the settings) is invalid; carries every finding."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(sorted(diagnostics, key=ORDER))
        first = self.diagnostics[0] if self.diagnostics else None
        super().__init__(str(first) if first else "invalid input")


class UsageError(Oauth2SyncError):
    """The command line or the environment asks for something impossible."""


class RegistryError(Oauth2SyncError):
    """The registry refused a request or could not be reached.

    ``status`` is the HTTP status (0 when there was no response); ``fields`` holds the
    registry's per-field messages for a 400.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.fields: dict[str, str] = dict(fields or {})


class NotFoundError(RegistryError):
    """404: the client (or partner) does not exist."""


class ConflictError(RegistryError):
    """409: a client with that client ID already exists."""


class CreatedResponseLostError(ConflictError):
    """A create's response was lost, and the client exists now.

    Our request (or a concurrent one) created it; its secret was never received.
    ``rotate-secret`` issues a new one.
    """


class PreconditionFailedError(RegistryError):
    """412: the client changed since the version we hold (If-Match mismatch)."""


class SafetyLimitError(Oauth2SyncError):
    """A plan exceeds a safety limit; apply refuses before any write."""


class SecretSinkError(Oauth2SyncError):
    """A new client secret could not be delivered to the configured sink."""


class RegistryUnavailableError(RegistryError):
    """The registry could not be reached for a whole retry budget, or the command's
    deadline passed: apply stops scheduling writes and reports the rest as not attempted."""
