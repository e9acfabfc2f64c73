"""A saved plan is re-checked against the current configuration before apply writes.

A plan file is data anyone with write access to a CI workspace or an artifact store
can edit; ``apply PLANFILE`` must not trust it more than the files it came from. So:

1. The plan is *stale* (refused whole, like Terraform's "Saved plan is stale") when
   it was made under another settings file, at another commit of the configuration,
   or from client files that have changed since (``Plan.settings_sha256``,
   ``Plan.commit``, ``Plan.files``). Those fields can be edited too; they only tell an
   honest stale plan from a current one.
2. Every change is then checked on its own against the desired state derived *now*
   from the current files, whatever the plan file says: a create or update must write
   exactly what a file declares (so the client passed validation, ownership and policy
   under the current settings), a delete needs prune in the plan, a client no file
   declares, and a client the registry holds in the managed scope. The registry is
   asked, not the plan's ``before``. A change that fails is left out with one error
   naming it and why (rule ``plan-refused``); the others are applied.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from oauth2_sync import plan as planning
from oauth2_sync import plandoc
from oauth2_sync.diff import diff_clients
from oauth2_sync.errors import Diagnostic, UsageError
from oauth2_sync.loader import Document, display_path
from oauth2_sync.plan import Change, Plan
from oauth2_sync.plandata import REFUSED_RULE
from oauth2_sync.records import NamedTuple
from oauth2_sync.registry.base import Registry
from oauth2_sync.settings import Settings
from oauth2_sync.validation import DesiredClient, load_desired

__all__ = ["REFUSED_RULE", "check_fresh", "load_checked", "recheck"]

logger = logging.getLogger(__name__)

_AGAIN = "make the plan again (`oauth2-sync plan --out FILE`)"


def load_checked(path: Path, settings: Settings, registry: Registry) -> Plan:
    """Read the plan file ``path`` and keep only what the current configuration allows.

    Raises ``UsageError`` for an unreadable, invalid or stale plan (nothing applied) and
    ``InputError`` when the current files do not validate; otherwise returns the plan
    with the refused changes moved to ``Plan.errors``, one each.
    """
    text = plandoc.read_text(path)
    made = plandoc.parse(text, path)
    desired = load_desired(settings)
    check_fresh(made, settings, desired)
    return recheck(made, settings, desired, registry, Document(display_path(path), text, None))


def check_fresh(made: Plan, settings: Settings, desired: Sequence[DesiredClient]) -> None:
    """Raise ``UsageError`` when ``made`` was not made from the current configuration."""
    if made.settings_sha256 is None:
        raise UsageError(
            "Saved plan cannot be checked: it records no digest of the settings file it was "
            f"made under; {_AGAIN}"
        )
    settings_sha256, files = planning.config_digests(settings, desired)
    if made.settings_sha256 != settings_sha256:
        raise UsageError(
            f"Saved plan is stale: the settings file {display_path(settings.path)} changed "
            f"since the plan was made; {_AGAIN}"
        )
    commit = planning.git_commit(settings.root)
    if made.commit != commit:
        raise UsageError(
            f"Saved plan is stale: it was made at {_commit(made.commit)} and the "
            f"configuration is at {_commit(commit)}; {_AGAIN}"
        )
    changed = _changed_files(dict(made.files), dict(files))
    if changed:
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        raise UsageError(
            f"Saved plan is stale: the client file {changed[0]}{more} changed since the plan "
            f"was made; {_AGAIN}"
        )


def _commit(commit: str | None) -> str:
    return f"commit {commit[:12]}" if commit else "no git commit"


def _changed_files(then: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """The files added, removed or edited between two digest maps, sorted."""
    return sorted(name for name in then.keys() | now.keys() if then.get(name) != now.get(name))


class _Context(NamedTuple):
    """What every change is checked against."""

    managed: frozenset[str]
    declared: Mapping[str, DesiredClient]
    held_by: Mapping[str, str]
    """The partner under which the registry holds each client now."""
    prune: bool


def recheck(
    made: Plan,
    settings: Settings,
    desired: Sequence[DesiredClient],
    registry: Registry,
    plan_file: Document,
) -> Plan:
    """``made`` without the changes the current configuration does not allow.

    Reads the registry once. Each refused change becomes an error (``plan-refused``) at
    its place in ``plan_file`` (the plan file's text); kept changes take ``file`` and
    ``line`` from the current files; the managed and unmanaged counts are the registry's
    now.
    """
    state = planning.read_registry(registry)
    held_by = {rc.client.client_id: rc.client.partner for rc in state.clients}
    context = _Context(
        settings.managed_partners, {d.client.client_id: d for d in desired}, held_by,
        made.prune,
    )
    # The safety shares divide by the managed clients: counted now, not taken from a
    # file that could inflate them.
    managed = sum(1 for partner in held_by.values() if partner in context.managed)
    kept: list[Change] = []
    refused: list[Diagnostic] = []
    for index, change in enumerate(made.changes):
        reason = _refusal(change, context)
        if reason is None:
            kept.append(_current(change, context))
            continue
        line, column = _locate(plan_file, index)
        refused.append(Diagnostic(
            plan_file.display, line, column, "error", REFUSED_RULE,
            f"{change.action} of '{change.client_id}' refused: {reason}",
        ))
    for diagnostic in refused:
        logger.info("saved plan: %s", diagnostic.message)
    return made._replace(changes=tuple(kept), errors=tuple(sorted((*made.errors, *refused))),
        managed=managed, unmanaged=len(held_by) - managed,
    )


def _refusal(change: Change, context: _Context) -> str | None:
    """Why the current configuration does not allow ``change``, or ``None``."""
    client = change.after or change.before
    assert client is not None, "a change has a before or an after"
    held = context.held_by.get(change.client_id)
    if held is not None and held not in context.managed:
        return f"the registry holds it under partner '{held}', outside the managed scope"
    if client.partner not in context.managed:
        return f"partner '{client.partner}' is outside the managed scope (no team names it)"
    declared = context.declared.get(change.client_id)
    if change.action == "delete":
        return _delete_refusal(declared, context)
    if declared is None:
        return "no client file declares it; a saved plan may only write what the files declare"
    if change.after != declared.client:
        assert change.after is not None, "a create or update has an after"
        fields = ", ".join(f.field for f in diff_clients(declared.client, change.after))
        return (
            f"it differs from what {declared.file}:{declared.line} declares ({fields}); "
            "a saved plan may only write what the files declare"
        )
    return None


def _delete_refusal(declared: DesiredClient | None, context: _Context) -> str | None:
    if not context.prune:
        return "the plan was made with prune off"
    if declared is not None:
        return f"{declared.file}:{declared.line} declares it"
    return None


def _current(change: Change, context: _Context) -> Change:
    """``change`` citing where the current files declare its client."""
    declared = context.declared.get(change.client_id)
    if declared is None:
        return change
    return change._replace(file=declared.file, line=declared.line)


def _locate(document: Document, index: int) -> tuple[int, int]:
    """Line and column of ``changes[index]`` in the plan file (JSON is YAML enough)."""
    try:
        return document.locate(("changes", index))
    except yaml.YAMLError:
        return 1, 1
