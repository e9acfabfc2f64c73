"""The plan: what apply would do, as frozen, sorted data.

``build_plan`` compares the desired clients (from the files) with the registry's and
returns a ``Plan``: one ``Change`` per client to create, update or delete (sorted by
client ID), the number of managed clients that already match, the number outside the
managed scope (only counted, never touched), and the version of every client read so
that apply can make each write conditional (``If-Match``).

A plan is saved as JSON (``save``/``load``); the same document is what
``plan --format json`` prints (``to_dict``). It holds no secret: clients have none in
normal form, and versions are opaque tokens.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

from oauth2_sync import __version__, clock
from oauth2_sync.diff import FieldChange, client_json, diff_clients, json_value
from oauth2_sync.errors import Diagnostic, InputError, UsageError
from oauth2_sync.gitinfo import git_commit
from oauth2_sync.loader import file_kind, open_regular
from oauth2_sync.model import FIELD_NAMES, Client
from oauth2_sync.registry.base import Registry, RegistryState, RemoteClient, read_registry
from oauth2_sync.settings import Safety, Settings
from oauth2_sync.validation import DesiredClient, load_desired

__all__ = [
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
    "from_dict",
    "git_commit",
    "load",
    "make_plan",
    "parse",
    "read_registry",
    "safety_violations",
    "save",
    "to_dict",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
"""Version of the JSON plan document; bumped on any incompatible change.

2 added ``settings_sha256`` and ``files``, without which ``apply PLANFILE`` cannot tell
whether the plan still matches the configuration: plan files of version 1 are refused."""

Action = Literal["create", "update", "delete"]
ACTIONS: tuple[Action, ...] = get_args(Action)


@dataclass(frozen=True, slots=True)
class Change:
    """What apply does to one client.

    ``before`` is the registry's client (update, delete), ``after`` the desired one
    (create, update); ``fields`` lists the differing fields of an update; ``version`` is
    the registry version the change was planned against (``None`` for a create);
    ``file`` and ``line`` say where the desired client is declared.
    """

    action: Action
    client_id: str
    before: Client | None = None
    after: Client | None = None
    fields: tuple[FieldChange, ...] = ()
    version: str | None = None
    file: str | None = None
    line: int | None = None

    @property
    def partner(self) -> str:
        """The partner of the client (the desired one when both exist)."""
        client = self.after or self.before
        assert client is not None, "a change has a before or an after"
        return client.partner


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts of a plan."""

    create: int
    update: int
    delete: int
    no_op: int
    unmanaged: int
    managed: int
    """Managed clients in the registry when the plan was made (the base of the safety shares)."""
    undeclared: int = 0
    """Managed clients no file declares, kept because prune is off."""


@dataclass(frozen=True, slots=True)
class Limit:
    """One safety limit a plan exceeds: ``what`` is counted, ``figure`` is the plan's
    count, ``maximum`` the limit, ``setting`` its name under ``safety``."""

    what: str
    figure: str
    maximum: str
    setting: str

    def __str__(self) -> str:
        return f"{self.what}: {self.figure} exceeds {self.maximum} (safety.{self.setting})"


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything apply needs, and everything a reviewer should see."""

    registry: str
    changes: tuple[Change, ...]
    no_op: int
    unmanaged: int
    managed: int
    versions: tuple[tuple[str, str], ...]
    """``(client_id, version)`` of every client read, sorted by client ID."""
    commit: str | None = None
    prune: bool = False
    targets: tuple[str, ...] = ()
    undeclared: int = 0
    """Managed clients no file declares, left alone because prune is off (with prune
    they are deletes)."""
    errors: tuple[Diagnostic, ...] = ()
    """Declared clients left out of the plan because the registry cannot hold them
    (``Registry.unsupported``): each one an error, so the plan fails (exit 1) while the
    other clients are still planned and applied."""
    created_at: str = ""
    exceeded: tuple[Limit, ...] = ()
    """The safety limits of the settings the plan exceeds, as they were when it was
    made: the verdict a reviewer sees. ``apply`` checks the limits again itself."""
    tool_version: str = __version__
    format_version: int = FORMAT_VERSION
    settings_sha256: str | None = None
    """SHA-256 (hex) of the settings file the plan was made under."""
    files: tuple[tuple[str, str], ...] = ()
    """``(path, sha256)`` of every client file that declared a client, the path relative
    to the settings' folder, sorted: with ``commit``, what tells a stale saved plan."""

    @property
    def summary(self) -> Summary:
        """How many creates, updates, deletes, no-ops and unmanaged clients."""
        counts = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            counts[change.action] += 1
        return Summary(
            counts["create"], counts["update"], counts["delete"],
            self.no_op, self.unmanaged, self.managed, self.undeclared,
        )

    @property
    def has_changes(self) -> bool:
        """Whether apply would write anything."""
        return bool(self.changes)


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
        ) from None
    selected = [d for d in desired if d.client.client_id in wanted] if wanted else list(desired)
    left_out = _unrepresentable(selected, unsupported)
    problems = _online_checks(selected, state, remote, managed_partners)
    if problems:
        # Reported with the clients left out: one run shows everything to fix.
        raise InputError([*problems, *(d for _, d in left_out)])
    if left_out:
        # Only these are left out: what the registry cannot hold is a fact about the
        # registry, and one such client must not hold back every other team's changes.
        skipped = {d.client.client_id for d, _ in left_out}
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
                    fields=diff_clients(current.client, client), version=current.version,
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
    )
    # The verdict of the limits travels with the plan, so that the pull request shows
    # it, not only the apply job after the merge.
    return replace(made, exceeded=tuple(safety_violations(made, settings.safety)))


def _unrepresentable(
    desired: Iterable[DesiredClient], unsupported: Callable[[Client], Sequence[str]] | None
) -> list[tuple[DesiredClient, Diagnostic]]:
    """The declared clients the registry cannot hold, each with its error."""
    if unsupported is None:
        return []
    return [
        (item, item.document.diagnostic(("clients", item.index), "registry-unsupported", reason))
        for item in desired
        for reason in unsupported(item.client)
    ]


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
        where = ("clients", item.index)
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
) -> Plan:
    """Load the desired clients, read the registry and build the plan (what ``plan`` runs)."""
    desired = load_desired(settings)
    state = read_registry(registry)
    made = build_plan(
        desired, state, settings, targets=targets, prune=prune,
        commit=git_commit(settings.root), unsupported=registry.unsupported,
    )
    settings_sha256, files = config_digests(settings, desired)
    return dataclasses.replace(made, settings_sha256=settings_sha256, files=files)


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


# --- the JSON document ------------------------------------------------------------------


def to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as the documented JSON object (README, "The JSON plan document")."""
    summary = plan.summary
    document: dict[str, Any] = {
        "format_version": plan.format_version,
        "tool_version": plan.tool_version,
        "created_at": plan.created_at,
        "registry": plan.registry,
        "commit": plan.commit,
        "settings_sha256": plan.settings_sha256,
        "files": dict(plan.files),
        "prune": plan.prune,
        "targets": list(plan.targets),
        "summary": {
            "create": summary.create,
            "update": summary.update,
            "delete": summary.delete,
            "no_op": summary.no_op,
            "unmanaged": summary.unmanaged,
            "managed": summary.managed,
            "undeclared": summary.undeclared,
        },
        "changes": [_change_dict(c) for c in plan.changes],
        "errors": [
            {
                "file": d.file, "line": d.line, "column": d.column, "rule": d.rule,
                "message": d.message,
            }
            for d in plan.errors
        ],
        "versions": dict(plan.versions),
    }
    if plan.exceeded:
        # Only when there is one: an optional key keeps format_version 1 and the
        # documents of plans within the limits as they were.
        document["exceeded_limits"] = [
            {"what": x.what, "figure": x.figure, "maximum": x.maximum, "setting": x.setting}
            for x in plan.exceeded
        ]
    return document


def _change_dict(change: Change) -> dict[str, Any]:
    return {
        "action": change.action,
        "client_id": change.client_id,
        "partner": change.partner,
        "file": change.file,
        "line": change.line,
        "version": change.version,
        "fields": [
            {
                "field": f.field,
                "before": json_value(f.before),
                "after": json_value(f.after),
                "effective_unchanged": f.effective_unchanged,
            }
            for f in change.fields
        ],
        "before": client_json(change.before),
        "after": client_json(change.after),
    }


def save(plan: Plan, path: Path) -> None:
    """Write the plan file atomically (a reader never sees half a plan).

    Only a regular file is written or replaced (``check_out_path``); ``UsageError``
    naming the path when it cannot be.
    """
    text = json.dumps(to_dict(plan), indent=2, ensure_ascii=True) + "\n"
    target = check_out_path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise _cannot_write(path, exc) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _cannot_write(path, exc) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_out_path(path: Path) -> Path:
    """Where ``plan --out PATH`` may write: the path itself, or what its links lead to.

    Refused (``UsageError``, one line): a missing folder, and anything at the path but a
    regular file -- a directory, FIFO, device or socket, directly or through a link --
    which replacing would destroy or (a FIFO, ``/dev/full``) never finish writing.
    Called before the registry is read, so that a bad path costs nothing.
    """
    try:
        target = path.resolve()
    except RuntimeError as exc:  # Python 3.11 reports a link loop so, not as OSError
        raise UsageError(
            f"{path}: cannot write the plan file: its links lead in a loop; choose a file name"
        ) from exc
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise _cannot_write(path, exc) from exc
    if mode is not None and not stat.S_ISREG(mode):
        raise UsageError(
            f"{path}: cannot write the plan file: it is {file_kind(mode)}, and --out writes only "
            "regular files; choose a file name"
        )
    if not target.parent.is_dir():
        raise UsageError(
            f"{path}: cannot write the plan file: the folder {path.parent} does not exist; "
            "create it first"
        )
    return target


def _cannot_write(path: Path, exc: OSError) -> UsageError:
    return UsageError(
        f"{path}: cannot write the plan file in {path.parent}: {exc.strerror or exc}; "
        "check that the folder is writable and has free space"
    )


def load(path: Path) -> Plan:
    """Read a plan file; ``UsageError`` naming the file when it is not a valid plan."""
    return parse(read_text(path), path)


def read_text(path: Path) -> str:
    """The text of a plan file: a regular file only (a FIFO would block, a device never
    end); ``UsageError`` naming the file otherwise."""
    try:
        with open_regular(path) as stream:
            raw = stream.read()
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot read the plan file: {exc.strerror or exc}; pass the file "
            "that `oauth2-sync plan --out FILE` wrote"
        ) from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not an oauth2-sync plan file (not JSON)") from exc


def parse(text: str, path: Path) -> Plan:
    """A plan from the text of a plan file; ``UsageError`` naming ``path`` when invalid."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise UsageError(f"{path}: not an oauth2-sync plan file (not JSON)") from None
    try:
        return from_dict(data)
    except _BadPlan as exc:
        raise UsageError(f"{path}: not a valid oauth2-sync plan file: {exc}") from None


class _BadPlan(Exception):
    pass


def from_dict(data: Any) -> Plan:
    """Rebuild a plan from ``to_dict``'s document; raises ``_BadPlan`` on any malformation."""
    obj = _mapping(data, "plan")
    version = obj.get("format_version")
    if version == 1:
        raise _BadPlan(
            "format_version 1 records no digests of the configuration, so it cannot be "
            "re-checked before apply; make the plan again with this oauth2-sync"
        )
    if version != FORMAT_VERSION:
        raise _BadPlan(
            f"format_version {version!r} is not supported (this oauth2-sync reads {FORMAT_VERSION})"
        )
    files = _mapping(obj.get("files"), "files")
    summary = _mapping(obj.get("summary"), "summary")
    versions = _mapping(obj.get("versions"), "versions")
    changes = tuple(_change(c, i) for i, c in enumerate(_list(obj.get("changes"), "changes")))
    return Plan(
        registry=_str(obj.get("registry"), "registry"),
        changes=changes,
        no_op=_int(summary.get("no_op"), "summary.no_op"),
        unmanaged=_int(summary.get("unmanaged"), "summary.unmanaged"),
        managed=_int(summary.get("managed"), "summary.managed"),
        versions=tuple(sorted(
            (_str(k, "versions"), _str(v, f"versions.{k}")) for k, v in versions.items()
        )),
        commit=_opt_str(obj.get("commit"), "commit"),
        prune=_bool(obj.get("prune"), "prune"),
        targets=tuple(_str(t, "targets") for t in _list(obj.get("targets"), "targets")),
        undeclared=_int(summary.get("undeclared", 0), "summary.undeclared"),
        # Optional: plan files written before plans could leave clients out have none.
        errors=tuple(
            _error(e, i) for i, e in enumerate(_list(obj.get("errors", []), "errors"))
        ),
        created_at=_str(obj.get("created_at"), "created_at"),
        exceeded=tuple(
            _limit(x, i)
            for i, x in enumerate(_list(obj.get("exceeded_limits", []), "exceeded_limits"))
        ),
        tool_version=_str(obj.get("tool_version"), "tool_version"),
        settings_sha256=_opt_str(obj.get("settings_sha256"), "settings_sha256"),
        files=tuple(sorted(
            (_str(k, "files"), _str(v, f"files.{k}")) for k, v in files.items()
        )),
    )


def _limit(data: Any, index: int) -> Limit:
    where = f"exceeded_limits[{index}]"
    obj = _mapping(data, where)
    return Limit(*(
        _str(obj.get(key), f"{where}.{key}") for key in ("what", "figure", "maximum", "setting")
    ))


def _change(data: Any, index: int) -> Change:
    where = f"changes[{index}]"
    obj = _mapping(data, where)
    action = obj.get("action")
    if action not in ACTIONS:
        raise _BadPlan(f"{where}.action must be one of {', '.join(ACTIONS)}")
    before = _client(obj.get("before"), f"{where}.before")
    after = _client(obj.get("after"), f"{where}.after")
    client_id = _str(obj.get("client_id"), f"{where}.client_id")
    needs_before = action in ("update", "delete")
    needs_after = action in ("create", "update")
    if (before is None) == needs_before or (after is None) == needs_after:
        raise _BadPlan(f"{where}: a {action} needs {_needs(needs_before, needs_after)}")
    for client in (before, after):
        if client is not None and client.client_id != client_id:
            raise _BadPlan(f"{where}: client_id does not match its clients")
    version = _opt_str(obj.get("version"), f"{where}.version")
    if needs_before and version is None:
        raise _BadPlan(f"{where}: a {action} needs the version it was planned against")
    line = obj.get("line")
    return Change(
        action=action,
        client_id=client_id,
        before=before,
        after=after,
        # Recomputed rather than trusted: the fields shown are those apply will write.
        fields=diff_clients(before, after) if before and after else (),
        version=version,
        file=_opt_str(obj.get("file"), f"{where}.file"),
        line=None if line is None else _int(line, f"{where}.line"),
    )


def _error(data: Any, index: int) -> Diagnostic:
    where = f"errors[{index}]"
    obj = _mapping(data, where)
    return Diagnostic(
        _str(obj.get("file"), f"{where}.file"), _int(obj.get("line"), f"{where}.line"),
        _int(obj.get("column"), f"{where}.column"), "error",
        _str(obj.get("rule"), f"{where}.rule"), _str(obj.get("message"), f"{where}.message"),
    )


def _needs(before: bool, after: bool) -> str:
    wanted = [name for name, needed in (("before", before), ("after", after)) if needed]
    unwanted = [name for name, needed in (("before", before), ("after", after)) if not needed]
    text = " and ".join(wanted)
    return f"{text} (and no {unwanted[0]})" if unwanted else text


def _client(data: Any, where: str) -> Client | None:
    if data is None:
        return None
    obj = _mapping(data, where)
    if set(obj) != set(FIELD_NAMES):
        raise _BadPlan(f"{where} must have exactly the fields {', '.join(FIELD_NAMES)}")
    return Client(
        client_id=_str(obj["client_id"], f"{where}.client_id"),
        name=_str(obj["name"], f"{where}.name"),
        email=_str(obj["email"], f"{where}.email"),
        partner=_str(obj["partner"], f"{where}.partner"),
        restrict_to_partner_users=_bool(
            obj["restrict_to_partner_users"], f"{where}.restrict_to_partner_users"
        ),
        scopes=_strings(obj["scopes"], f"{where}.scopes"),
        grant_types=_strings(obj["grant_types"], f"{where}.grant_types"),
        redirect_uris=_strings(obj["redirect_uris"], f"{where}.redirect_uris"),
        access_token_ttl=_opt_int(obj["access_token_ttl"], f"{where}.access_token_ttl"),
        refresh_token_ttl=_opt_int(obj["refresh_token_ttl"], f"{where}.refresh_token_ttl"),
    )


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _BadPlan(f"{where} must be an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _BadPlan(f"{where} must be a list")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _BadPlan(f"{where} must be a string")
    return value


def _opt_str(value: Any, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _BadPlan(f"{where} must be an integer")
    return value


def _opt_int(value: Any, where: str) -> int | None:
    return None if value is None else _int(value, where)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _BadPlan(f"{where} must be true or false")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    items = [_str(v, where) for v in _list(value, where)]
    # The normal form keeps sets sorted; a hand-edited file must not smuggle in another order.
    return tuple(sorted(set(items)))
