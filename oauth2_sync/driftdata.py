"""The drift report's data: the kinds, one client's and one field's difference, the counts.

``drift.build_drift`` makes a ``DriftReport``; ``driftdoc`` writes it as JSON; the
renderers read it. Frozen dataclasses only, so that this module depends on nothing
but the model; re-exported by ``oauth2_sync.drift``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from oauth2_sync import __version__
from oauth2_sync.diff import FieldValue
from oauth2_sync.model import PLATFORM_DEFAULTS, Client, TtlDefaults
from oauth2_sync.settings import DriftMode

__all__ = [
    "DRIFT_KINDS",
    "FORMAT_VERSION",
    "ClientDrift",
    "DriftKind",
    "DriftReport",
    "DriftSummary",
    "FieldDrift",
    "FieldMode",
    "Side",
]

FORMAT_VERSION = 1
"""Version of the JSON drift document; bumped on any incompatible change."""

DriftKind = Literal["changed", "missing", "undeclared", "unreachable"]
DRIFT_KINDS: tuple[DriftKind, ...] = get_args(DriftKind)
Side = Literal["registry", "files", "unknown"]
"""Which side of a ``changed`` client differs, as far as git and the registry's audit
fields tell: changed in the registry, in the files (not applied yet, or uncommitted),
or cannot tell."""
FieldMode = Literal["enforce", "warn"]
"""How a reported field difference counts (``ignore``d fields are not reported)."""


@dataclass(frozen=True, slots=True)
class FieldDrift:
    """One field that differs: ``before`` in the files, ``after`` in the registry.

    ``mode`` is the field's drift policy; ``effective_unchanged`` marks a lifetime that
    went from pinned to the platform default (or back) with the same effect.
    """

    field: str
    before: FieldValue
    after: FieldValue
    mode: FieldMode = "enforce"
    effective_unchanged: bool = False


@dataclass(frozen=True, slots=True)
class ClientDrift:
    """How one managed client differs.

    ``before`` is the client as the files declare it (``None`` when undeclared),
    ``after`` as the registry holds it (``None`` when missing). ``fields`` lists the
    differing fields of a ``changed`` client (a missing or undeclared client differs as
    a whole, whatever the field policy). ``unsupported`` says, for a missing client,
    why the registry cannot hold it (so apply cannot create it). The audit fields come
    from the registry when it gives them.
    """

    kind: DriftKind
    client_id: str
    partner: str
    before: Client | None = None
    after: Client | None = None
    fields: tuple[FieldDrift, ...] = ()
    file: str | None = None
    line: int | None = None
    version: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None
    unsupported: tuple[str, ...] = ()
    side: Side | None = None
    """Set by ``locate_sides`` (``make_drift``) in a git repository; ``None`` otherwise."""
    side_reason: str = ""
    reason: str | None = None
    """Why an ``unreachable`` client could not be read, and how to recover it."""

    @property
    def failing(self) -> bool:
        """Whether this counts as drift (a ``changed`` client with only ``warn`` fields does not)."""
        return self.kind != "changed" or any(f.mode == "enforce" for f in self.fields)


@dataclass(frozen=True, slots=True)
class DriftSummary:
    """Counts of a drift report (clients)."""

    changed: int
    missing: int
    undeclared: int
    warning: int
    """Changed clients whose every difference is in a ``warn`` field (not counted as drift)."""
    in_sync: int
    ignored: int
    """Of the clients in sync, those whose only differences are in ``ignore`` fields."""
    managed: int
    unmanaged: int
    unreachable: int = 0

    @property
    def drifted(self) -> int:
        """Clients that count as drift."""
        return self.changed + self.missing + self.undeclared + self.unreachable


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Every difference in the managed scope, and the counts of everything else."""

    registry: str
    clients: tuple[ClientDrift, ...]
    """Clients with a reported difference (warnings included), sorted by client ID."""
    checked: tuple[tuple[str, str], ...]
    """``(client_id, partner)`` of every managed client compared, sorted by client ID."""
    unmanaged: int
    ignored: int
    policy: tuple[tuple[str, DriftMode], ...] = ()
    """The ``drift.fields`` settings in effect, sorted by field."""
    commit: str | None = None
    created_at: str = ""
    tool_version: str = __version__
    format_version: int = FORMAT_VERSION
    uncommitted: tuple[str, ...] | None = None
    """The files the settings name with uncommitted changes (``None``: not in git)."""
    ttl_defaults: TtlDefaults = PLATFORM_DEFAULTS
    """The registry's default lifetimes, for the lifetime notes."""

    @property
    def summary(self) -> DriftSummary:
        """How many clients drifted, in which way, and how many are in sync."""
        counts = dict.fromkeys(DRIFT_KINDS, 0)
        warning = 0
        for item in self.clients:
            if item.failing:
                counts[item.kind] += 1
            else:
                warning += 1
        return DriftSummary(
            changed=counts["changed"], missing=counts["missing"],
            undeclared=counts["undeclared"], warning=warning,
            in_sync=len(self.checked) - len(self.clients), ignored=self.ignored,
            managed=len(self.checked), unmanaged=self.unmanaged,
            unreachable=counts["unreachable"],
        )

    @property
    def has_drift(self) -> bool:
        """Whether any client counts as drift (the exit code 2 of ``drift``)."""
        return any(item.failing for item in self.clients)
