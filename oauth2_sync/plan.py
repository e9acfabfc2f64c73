"""The plan: what apply would do, as frozen, sorted data.

``build_plan`` compares the desired clients (from the files) with the registry's and
returns a ``Plan``: one ``Change`` per client to create, update or delete (sorted by
client ID), the number of managed clients that already match, the number outside the
managed scope (only counted, never touched), and the version of every client read so
that apply can make each write conditional (``If-Match``).

A plan is saved as JSON (``plandoc.save``/``plandoc.load``); the same document is what
``plan --format json`` prints (``plandoc.to_dict``). It holds no secret: clients have
none in normal form, and versions are opaque tokens.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

from oauth2_sync import clock
from oauth2_sync.diff import FieldChange, diff_clients
from oauth2_sync.errors import Diagnostic, InputError, UsageError
from oauth2_sync.gitinfo import git_commit, git_facts_later
from oauth2_sync.model import PLATFORM_DEFAULTS, Client, TtlDefaults

# The plan's data lives in a module of its own; its names are part of this module's
# interface, as they were before the split. The JSON document (``plandoc``) is not
# imported here: a plan printed as text never needs it.
from oauth2_sync.plandata import ACTIONS, FORMAT_VERSION, Action, Change, Limit, Plan, Summary
from oauth2_sync.registry.base import (
    Registry,
    RegistryState,
    RemoteClient,
    read_registry,
    read_registry_beside,
    registry_defaults,
)
from oauth2_sync.settings import Safety, Settings
from oauth2_sync.validation import DesiredClient, load_desired

__all__ = [
    "ACTIONS",
    "FORMAT_VERSION",
    "Action",
    "Change",
    "FieldChange",
    "Limit",
    "Plan",
    "RegistryState",
    "Summary",
    "build_plan",
    "config_digests",
    "git_commit",
    "make_plan",
    "read_registry",
    "safety_violations",
]

logger = logging.getLogger(__name__)

def safety_violations(plan: Plan, safety: Safety) -> list[Limit]:
    """The limits ``plan`` exceeds. Shares apply only from ``min_managed_clients`` on."""
    summary = plan.summary
    writes = summary.create + summary.update
    deletes = summary.delete
    managed = summary.managed
    found: list[Limit] = []
    if writes > safety.max_changes:
        found.append(Limit("creates+updates", str(writes), str(safety.max_changes), "max_changes"))
    if deletes > safety.max_deletes:
        found.append(Limit("deletes", str(deletes), str(safety.max_deletes), "max_deletes"))
    if managed >= safety.min_managed_clients and managed > 0:
        for what, count, limit, setting in (
            ("creates+updates", writes, safety.max_changes_percent, "max_changes_percent"),
            ("deletes", deletes, safety.max_deletes_percent, "max_deletes_percent"),
        ):
            share = 100.0 * count / managed
            if share > limit:
                found.append(Limit(
                    f"{what} as a share of the {managed} managed clients",
                    f"{count} ({share:.1f}%)", f"{limit:g}%", setting,
                ))
    return found


def build_plan(
    desired: Sequence[DesiredClient],
    state: RegistryState,
    settings: Settings,
    *,
    targets: Collection[str] = (),
    prune: bool | None = None,
    commit: str | None = None,
    created_at: str | None = None,
    unsupported: Callable[[Client], Sequence[str]] | None = None,
    ttl_defaults: TtlDefaults = PLATFORM_DEFAULTS,
) -> Plan:
    """Compare the desired clients with the registry's and list what apply would do.

    ``targets`` limits the plan to those client IDs; ``prune`` (default: the settings)
    adds deletes of managed clients no file declares. A client the registry cannot
    represent according to ``unsupported`` (usually ``Registry.unsupported``) is left
    out, with an error in ``Plan.errors``. Raises ``InputError`` when another online
    check fails (unknown partner, unknown user, a client ID held outside the managed
    scope), and ``UsageError`` for a target that names no client.
    """
    managed_partners = settings.managed_partners
    do_prune = settings.prune if prune is None else prune
    remote = {rc.client.client_id: rc for rc in state.clients}
    wanted = frozenset(targets)
    desired_ids = {d.client.client_id for d in desired}
    unknown = sorted(wanted - desired_ids - remote.keys())
    if unknown:
        raise UsageError(
            f"--target {unknown[0]} matches no client in the files or the registry"
        )
    selected = [d for d in desired if d.client.client_id in wanted] if wanted else list(desired)
    left_out = _unrepresentable(selected, unsupported) + _unreachable(
        selected, state, settings, wanted, do_prune
    )
    problems = _online_checks(selected, state, remote, managed_partners)
    if problems:
        # Reported with the clients left out: one run shows everything to fix.
        raise InputError([*problems, *(d for _, d in left_out)])
    if left_out:
        # Only these are left out: what the registry cannot hold or show is a fact about
        # the registry, and one such client must not hold back every other team's changes.
        skipped = {d.client.client_id for d, _ in left_out if d is not None}
        selected = [d for d in selected if d.client.client_id not in skipped]

    changes: list[Change] = []
    no_op = 0
    for item in selected:
        client = item.client
        current = remote.get(client.client_id)
        if current is None:
            changes.append(
                Change("create", client.client_id, after=client, file=item.file, line=item.line)
            )
        elif current.client == client:
            no_op += 1
        else:
            changes.append(
                Change(
                    "update", client.client_id, before=current.client, after=client,
                    fields=diff_clients(current.client, client, ttl_defaults),
                    version=current.version,
                    file=item.file, line=item.line,
                )
            )
    managed = undeclared = 0
    for client_id, current in remote.items():
        if current.client.partner not in managed_partners:
            continue
        managed += 1
        if client_id in desired_ids or (wanted and client_id not in wanted):
            continue
        if do_prune:
            changes.append(
                Change("delete", client_id, before=current.client, version=current.version)
            )
        else:
            undeclared += 1
    changes.sort(key=lambda c: c.client_id)
    made = Plan(
        registry=state.url,
        changes=tuple(changes),
        no_op=no_op,
        unmanaged=len(remote) - managed,
        managed=managed,
        versions=tuple(sorted((cid, rc.version) for cid, rc in remote.items())),
        commit=commit,
        prune=do_prune,
        targets=tuple(sorted(wanted)),
        undeclared=undeclared,
        errors=tuple(sorted(d for _, d in left_out)),
        created_at=created_at if created_at is not None else clock.timestamp(),
        ttl_defaults=ttl_defaults,
    )
    # The verdict of the limits travels with the plan, so that the pull request shows
    # it, not only the apply job after the merge.
    return made._replace(exceeded=tuple(safety_violations(made, settings.safety)))


def _unrepresentable(
    desired: Iterable[DesiredClient], unsupported: Callable[[Client], Sequence[str]] | None
) -> list[tuple[DesiredClient | None, Diagnostic]]:
    """The declared clients the registry cannot hold, each with its error."""
    if unsupported is None:
        return []
    # A Problem that names a key points at it (the field the registry cannot keep); a
    # key the file leaves out locates at the client's entry.
    return [
        (item, item.document.diagnostic(
            ("clients", item.position, *((key,) if (key := getattr(reason, "field", None)) else ())),
            "registry-unsupported", reason,
        ))
        for item in desired
        for reason in unsupported(item.client)
    ]


def _unreachable(
    desired: Sequence[DesiredClient], state: RegistryState, settings: Settings,
    wanted: Collection[str], prune: bool,
) -> list[tuple[DesiredClient | None, Diagnostic]]:
    """The clients the registry refused to show (``RegistryState.unreachable``), each
    with its error: at the declaring entry, or, for one no file declares that prune
    would look at, at the state file that holds it (it cannot be deleted unseen)."""
    declared = {d.client.client_id: d for d in desired}
    found: list[tuple[DesiredClient | None, Diagnostic]] = []
    for gone in state.unreachable:
        item = declared.get(gone.client_id)
        if item is not None:
            found.append((item, item.document.diagnostic(
                ("clients", item.position), "registry-unreachable", gone.reason,
            )))
        elif prune and (not wanted or gone.client_id in wanted):
            where = settings.registry.state_file or settings.path
            found.append((None, Diagnostic(
                settings.relative(where) or str(where), 1, 1, "error",
                "registry-unreachable", gone.reason,
            )))
    return found


def _online_checks(
    desired: Iterable[DesiredClient],
    state: RegistryState,
    remote: Mapping[str, RemoteClient],
    managed_partners: Collection[str],
) -> list[Diagnostic]:
    """The errors of the online checks that stop a plan."""
    partners = {p.subdomain: p for p in state.partners}
    # A partner may have thousands of users: look names up in sets, not tuples.
    users = {p.subdomain: frozenset(p.users) for p in state.partners if p.users is not None}
    problems: list[Diagnostic] = []
    for item in desired:
        client = item.client
        partner = partners.get(client.partner)
        where = ("clients", item.position)
        if partner is None:
            problems.append(item.document.diagnostic(
                (*where, "partner"), "partner-unknown",
                f"partner '{client.partner}' does not exist in the registry",
            ))
        elif (
            client.restrict_to_partner_users
            and client.partner in users
            and client.user_name not in users[client.partner]
        ):
            problems.append(item.document.diagnostic(
                (*where, "client_id"), "user-unknown",
                f"'{client.user_name}' is not a user of partner '{client.partner}' "
                "(required by restrict_to_partner_users)",
            ))
        current = remote.get(client.client_id)
        if current is not None and current.client.partner not in managed_partners:
            problems.append(item.document.diagnostic(
                (*where, "client_id"), "client-unmanaged",
                f"the registry holds '{client.client_id}' under partner "
                f"'{current.client.partner}', outside the managed scope",
            ))
    return problems


def make_plan(
    settings: Settings,
    registry: Registry,
    *,
    targets: Collection[str] = (),
    prune: bool | None = None,
    digests: bool = True,
) -> Plan:
    """Load the desired clients, read the registry and build the plan (what ``plan`` runs).

    Without ``digests`` the plan records no digests of the configuration
    (``settings_sha256``, ``files``): only a saved plan or the JSON document needs them,
    and hashing every client file costs about 1% of a plan with no changes.
    """
    # Provenance is always recorded (the commit, and one cheap `git status` of the files
    # the settings name), asked while the files load; the digests only when a saved
    # plan or the JSON document needs them.
    git_facts = git_facts_later(settings.root, settings.read_patterns)
    try:
        desired, state = read_registry_beside(registry, lambda: load_desired(settings))
    finally:
        commit, uncommitted = git_facts()
    made = build_plan(
        desired, state, settings, targets=targets, prune=prune,
        commit=commit, unsupported=registry.unsupported,
        ttl_defaults=registry_defaults(registry),
    )
    made = made._replace(uncommitted=uncommitted)
    if not digests:
        return made
    settings_sha256, files = config_digests(settings, desired)
    return made._replace(settings_sha256=settings_sha256, files=files)


def config_digests(
    settings: Settings, desired: Iterable[DesiredClient]
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """SHA-256 of the settings file, and of each client file declaring ``desired``.

    The client files are hashed from the text already loaded (no second read, and
    exactly what was validated); the settings file is read again, it is one small file.
    """
    try:
        settings_sha256 = hashlib.sha256(settings.path.read_bytes()).hexdigest()
    except OSError as exc:
        raise UsageError(
            f"{settings.path}: cannot read the settings file again: {exc.strerror}; "
            "check that it was not moved while oauth2-sync ran"
        ) from exc
    seen: dict[int, tuple[str, str]] = {}
    for item in desired:
        doc = item.document
        if id(doc) not in seen:
            name = settings.relative(doc.display) or doc.display
            seen[id(doc)] = (name, hashlib.sha256(doc.text.encode("utf-8")).hexdigest())
    return settings_sha256, tuple(sorted(seen.values()))


