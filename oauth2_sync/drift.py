"""Drift: where the registry differs from the repository, out-of-band edits included.

A drift report is a plan read the other way round. Where a plan says what apply would
change in the registry (registry -> files), drift says what someone changed in the
registry behind the repository's back (files -> registry): ``before`` is what the files
declare, ``after`` what the registry holds. The field comparison is the plan's
(``diff.diff_clients``), and the registry is read the way the plan reads it
(``registry.base.read_registry_beside``, in a thread while the files load).

Three kinds of drift, all in the managed scope (partners named by a team):

- ``changed``: declared and in the registry, with fields that differ;
- ``missing``: declared, absent from the registry (deleted, or never applied);
- ``undeclared``: in the registry under a managed partner, declared by no file;
- ``unreachable``: known to the registry's adapter but refused when read (a standard
  server's 401/403/404: deleted there, or its token revoked or rotated elsewhere), with
  the reason and the adopt/forget commands that recover it.

``drift.fields`` in the settings decides per field whether a difference counts
(``enforce``, the default), is reported without failing (``warn``) or is not looked at
(``ignore``). Clients outside the managed scope are only counted.

Unlike ``plan.build_plan``, drift runs no online checks: a partner user removed in the
registry is part of what a drift report should show, not a reason to refuse to report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from oauth2_sync import clock
from oauth2_sync.diff import diff_clients

# The report's data and its JSON document live in modules of their own (as the plan's
# do); their names are part of this module's interface, as they were before the split.
from oauth2_sync.driftdata import (
    FORMAT_VERSION,
    ClientDrift,
    DriftKind,
    DriftReport,
    DriftSummary,
    FieldDrift,
    FieldMode,
    Side,
)
from oauth2_sync.driftdoc import DriftDocument, to_dict
from oauth2_sync.gitinfo import git_commit, git_uncommitted, last_commit_time
from oauth2_sync.model import PLATFORM_DEFAULTS, Client, TtlDefaults
from oauth2_sync.registry.base import (
    Registry,
    RegistryState,
    RemoteClient,
    read_registry_beside,
    registry_defaults,
)
from oauth2_sync.settings import DriftMode, Settings
from oauth2_sync.validation import DesiredClient

__all__ = [
    "FORMAT_VERSION",
    "ClientDrift",
    "DriftDocument",
    "DriftKind",
    "DriftReport",
    "DriftSummary",
    "FieldDrift",
    "FieldMode",
    "Side",
    "build_drift",
    "locate_sides",
    "make_drift",
    "to_dict",
]

logger = logging.getLogger(__name__)

def build_drift(
    desired: Sequence[DesiredClient],
    state: RegistryState,
    settings: Settings,
    *,
    commit: str | None = None,
    created_at: str | None = None,
    unsupported: Callable[[Client], Sequence[str]] | None = None,
    ttl_defaults: TtlDefaults = PLATFORM_DEFAULTS,
) -> DriftReport:
    """Compare the registry's clients with the declared ones, the registry being the news.

    ``unsupported`` (usually ``Registry.unsupported``) explains missing clients that
    the registry cannot hold.
    """
    policy: Mapping[str, DriftMode] = settings.drift_fields
    managed_partners = settings.managed_partners
    remote = {rc.client.client_id: rc for rc in state.clients}
    declared = {d.client.client_id: d for d in desired}
    found = _unreachable(state, declared)
    checked: dict[str, str] = {d.client_id: d.partner for d in found}
    ignored = 0
    for client_id, item in declared.items():
        if client_id in checked:
            continue  # unreachable: reported as such, not as missing
        checked[client_id] = item.client.partner
        current = remote.get(client_id)
        if current is None:
            found.append(ClientDrift(
                "missing", client_id, item.client.partner, before=item.client,
                file=item.file, line=item.line,
                unsupported=tuple(unsupported(item.client)) if unsupported else (),
            ))
            continue
        changes = diff_clients(item.client, current.client, ttl_defaults)
        if not changes:
            continue
        fields = tuple(
            FieldDrift(c.field, c.before, c.after, mode, c.effective_unchanged)
            for c in changes
            if (mode := _mode(policy, c.field)) != "ignore"
        )
        if not fields:
            ignored += 1
            continue
        found.append(_with_audit(
            ClientDrift(
                "changed", client_id, item.client.partner, before=item.client,
                after=current.client, fields=fields, file=item.file, line=item.line,
            ),
            current,
        ))
    unmanaged = 0
    for client_id, current in remote.items():
        if client_id in declared:
            continue
        if current.client.partner not in managed_partners:
            unmanaged += 1
            continue
        checked[client_id] = current.client.partner
        found.append(_with_audit(
            ClientDrift(
                "undeclared", client_id, current.client.partner, after=current.client,
            ),
            current,
        ))
    found.sort(key=lambda d: d.client_id)
    return DriftReport(
        registry=state.url,
        clients=tuple(found),
        checked=tuple(sorted(checked.items())),
        unmanaged=unmanaged,
        ignored=ignored,
        policy=tuple(sorted(policy.items())),
        commit=commit,
        created_at=created_at if created_at is not None else clock.timestamp(),
        ttl_defaults=ttl_defaults,
    )


def make_drift(settings: Settings, registry: Registry) -> DriftReport:
    """Load the declared clients, read the registry and build the report (what ``drift`` runs)."""
    from oauth2_sync.validation import load_desired

    desired, state = read_registry_beside(registry, lambda: load_desired(settings))
    report = build_drift(
        desired, state, settings, commit=git_commit(settings.root),
        unsupported=registry.unsupported, ttl_defaults=registry_defaults(registry),
    )
    logger.info(
        "drift: %d of %d managed clients differ", len(report.clients), len(report.checked)
    )
    return locate_sides(
        report, settings, git_uncommitted(settings.root, settings.read_patterns)
    )


def locate_sides(
    report: DriftReport, settings: Settings, uncommitted: tuple[str, ...] | None
) -> DriftReport:
    """Say which side of each changed client differs, as far as git tells.

    A file with uncommitted changes is the files' side (never "changed in the
    registry"); otherwise the registry's ``updatedAt`` against the file's last commit.
    Outside git (``uncommitted`` is ``None``) nothing is said."""
    if uncommitted is None:
        return report
    times: dict[str, str | None] = {}
    located = []
    for item in report.clients:
        name = settings.relative(item.file) if item.file else None
        if item.kind != "changed" or name is None:
            located.append(item)
            continue
        if name not in times:
            times[name] = last_commit_time(settings.root, name)
        side, reason = _side(name in uncommitted, times[name], item.updated_at)
        located.append(replace(item, side=side, side_reason=reason))
    return replace(report, clients=tuple(located), uncommitted=uncommitted)


def _side(dirty: bool, committed: str | None, updated: str | None) -> tuple[Side, str]:
    if dirty:
        return "files", "its file has uncommitted changes"
    if committed is None or updated is None:
        missing = "the file was never committed" if committed is None else (
            "the registry records no update time"
        )
        return "unknown", f"cannot tell which side changed: {missing}"
    try:
        registry_later = datetime.fromisoformat(updated) > datetime.fromisoformat(committed)
    except ValueError:
        return "unknown", f"cannot tell which side changed: update time {updated!r} unreadable"
    if registry_later:
        return "registry", f"updated in the registry at {updated}, after the file's last " \
            f"commit at {committed}"
    return "files", f"the file was committed at {committed}, after the registry's last " \
        f"update at {updated}: not applied yet"


def _unreachable(
    state: RegistryState, declared: Mapping[str, DesiredClient]
) -> list[ClientDrift]:
    """The clients the registry refused to show: whether they still hold what the files
    declare cannot be told, so each counts as drift of its own kind."""
    found: list[ClientDrift] = []
    for gone in state.unreachable:
        item = declared.get(gone.client_id)
        found.append(ClientDrift(
            "unreachable", gone.client_id, item.client.partner if item else "",
            before=item.client if item else None, file=item.file if item else None,
            line=item.line if item else None, reason=gone.reason,
        ))
    return found


def _mode(policy: Mapping[str, DriftMode], field: str) -> DriftMode:
    return policy.get(field, "enforce")


def _with_audit(item: ClientDrift, current: RemoteClient) -> ClientDrift:
    return ClientDrift(
        item.kind, item.client_id, item.partner, before=item.before, after=item.after,
        fields=item.fields, file=item.file, line=item.line, version=current.version,
        created_at=current.created_at, updated_at=current.updated_at,
        updated_by=current.updated_by,
    )
