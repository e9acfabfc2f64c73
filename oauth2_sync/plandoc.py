"""The JSON plan document and the plan file: ``to_dict``, ``from_dict``, ``save``, ``load``.

The document is what ``plan --format json`` prints and ``plan --out`` saves (README, "The
JSON plan document"); ``from_dict`` reads it back and refuses anything malformed. It
holds no secret: clients have none in normal form, and versions are opaque tokens.
Re-exported by ``oauth2_sync.plan``.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import NotRequired, TypedDict, cast

from oauth2_sync.diff import ClientJson, JsonFieldValue, client_json, diff_clients, json_value
from oauth2_sync.errors import Diagnostic, RuleId, UsageError
from oauth2_sync.files import file_kind, open_regular
from oauth2_sync.model import FIELD_NAMES, PLATFORM_DEFAULTS, Client, TtlDefaults
from oauth2_sync.plandata import ACTIONS, FORMAT_VERSION, Action, Change, Limit, Plan
from oauth2_sync.risk import FieldRisk, RiskClass

# --- the JSON document ------------------------------------------------------------------


class SummaryJson(TypedDict):
    """``summary`` of the plan document."""

    create: int
    update: int
    delete: int
    no_op: int
    unmanaged: int
    managed: int
    undeclared: int


class FieldChangeJson(TypedDict):
    """One entry of a change's ``fields``."""

    field: str
    before: JsonFieldValue
    after: JsonFieldValue
    effective_unchanged: bool
    risk: RiskClass
    reasons: list[str]


class ChangeJson(TypedDict):
    """One entry of ``changes``."""

    action: Action
    client_id: str
    partner: str
    file: str | None
    line: int | None
    version: str | None
    risk: RiskClass
    reasons: list[str]
    fields: list[FieldChangeJson]
    before: ClientJson | None
    after: ClientJson | None


class ErrorJson(TypedDict):
    """One entry of ``errors``: a declared client the registry cannot hold."""

    file: str
    line: int
    column: int
    rule: RuleId
    message: str


class LimitJson(TypedDict):
    """One entry of ``exceeded_limits``."""

    what: str
    figure: str
    maximum: str
    setting: str


class PlanDocument(TypedDict):
    """The JSON plan document, keys in the order it is written (README, "The JSON plan
    document")."""

    format_version: int
    tool_version: str
    created_at: str
    registry: str
    commit: str | None
    uncommitted: list[str] | None
    settings_sha256: str | None
    files: dict[str, str]
    prune: bool
    targets: list[str]
    summary: SummaryJson
    changes: list[ChangeJson]
    errors: list[ErrorJson]
    versions: dict[str, str]
    exceeded_limits: NotRequired[list[LimitJson]]
    ttl_defaults: NotRequired[dict[str, int | None]]
    """Only for a registry whose defaults are not the reference's 12h/30d."""


def to_dict(plan: Plan) -> PlanDocument:
    """The plan as the documented JSON object (README, "The JSON plan document")."""
    summary = plan.summary
    document: PlanDocument = {
        "format_version": plan.format_version,
        "tool_version": plan.tool_version,
        "created_at": plan.created_at,
        "registry": plan.registry,
        "commit": plan.commit,
        "uncommitted": None if plan.uncommitted is None else list(plan.uncommitted),
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
    if plan.ttl_defaults != PLATFORM_DEFAULTS:
        access, refresh = plan.ttl_defaults
        document["ttl_defaults"] = {"access_token_ttl": access, "refresh_token_ttl": refresh}
    return document


def _change_dict(change: Change) -> ChangeJson:
    risk = change.risk
    field_risks: dict[str, FieldRisk] = {r.field: r for r in risk.fields}
    return {
        "action": change.action,
        "client_id": change.client_id,
        "partner": change.partner,
        "file": change.file,
        "line": change.line,
        "version": change.version,
        "risk": risk.risk,
        "reasons": list(risk.reasons),
        "fields": [
            {
                "field": f.field,
                "before": json_value(f.before),
                "after": json_value(f.after),
                "effective_unchanged": f.effective_unchanged,
                "risk": field_risks[f.field].risk,
                "reasons": list(field_risks[f.field].reasons),
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
    import tempfile  # only a saved plan needs it (#14: the fixed cost of every plan)

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
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not an oauth2-sync plan file (not JSON)") from exc
    try:
        return from_dict(data)
    except _BadPlan as exc:
        raise UsageError(f"{path}: not a valid oauth2-sync plan file: {exc}") from exc


class _BadPlan(Exception):
    pass


_OLDER = {
    1: "digests of the configuration, so it cannot be re-checked before apply",
    2: "access review of its changes, so a reviewer may not have seen which widen access",
}
"""Why plan files of older versions are refused."""


def from_dict(data: object) -> Plan:
    """Rebuild a plan from ``to_dict``'s document; raises ``_BadPlan`` on any malformation."""
    obj = _mapping(data, "plan")
    version = obj.get("format_version")
    if version in _OLDER:
        raise _BadPlan(
            f"format_version {version} records no {_OLDER[version]}; make the plan again "
            "with this oauth2-sync"
        )
    if version != FORMAT_VERSION:
        raise _BadPlan(
            f"format_version {version!r} is not supported (this oauth2-sync reads {FORMAT_VERSION})"
        )
    files = _mapping(obj.get("files"), "files")
    summary = _mapping(obj.get("summary"), "summary")
    versions = _mapping(obj.get("versions"), "versions")
    defaults = _ttl_defaults(obj.get("ttl_defaults"))
    changes = tuple(
        _change(c, i, defaults) for i, c in enumerate(_list(obj.get("changes"), "changes"))
    )
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
        uncommitted=_opt_strings(obj.get("uncommitted"), "uncommitted"),
        ttl_defaults=defaults,
    )


def _ttl_defaults(data: object) -> TtlDefaults:
    if data is None:
        return PLATFORM_DEFAULTS
    obj = _mapping(data, "ttl_defaults")
    return (
        _opt_int(obj.get("access_token_ttl"), "ttl_defaults.access_token_ttl"),
        _opt_int(obj.get("refresh_token_ttl"), "ttl_defaults.refresh_token_ttl"),
    )


def _limit(data: object, index: int) -> Limit:
    where = f"exceeded_limits[{index}]"
    obj = _mapping(data, where)
    return Limit(*(
        _str(obj.get(key), f"{where}.{key}") for key in ("what", "figure", "maximum", "setting")
    ))


def _change(data: object, index: int, defaults: TtlDefaults) -> Change:
    where = f"changes[{index}]"
    obj = _mapping(data, where)
    action = _action(obj.get("action"), f"{where}.action")
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
        fields=diff_clients(before, after, defaults) if before and after else (),
        version=version,
        file=_opt_str(obj.get("file"), f"{where}.file"),
        line=None if line is None else _int(line, f"{where}.line"),
    )


def _error(data: object, index: int) -> Diagnostic:
    where = f"errors[{index}]"
    obj = _mapping(data, where)
    # Read as written, not checked against RuleId: a plan made by a newer release may
    # carry a rule this one does not know, and it is shown as it is.
    rule = cast("RuleId", _str(obj.get("rule"), f"{where}.rule"))
    return Diagnostic(
        _str(obj.get("file"), f"{where}.file"), _int(obj.get("line"), f"{where}.line"),
        _int(obj.get("column"), f"{where}.column"), "error",
        rule, _str(obj.get("message"), f"{where}.message"),
    )


def _action(value: object, where: str) -> Action:
    for action in ACTIONS:
        if value == action:
            return action
    raise _BadPlan(f"{where} must be one of {', '.join(ACTIONS)}")


def _needs(before: bool, after: bool) -> str:
    wanted = [name for name, needed in (("before", before), ("after", after)) if needed]
    unwanted = [name for name, needed in (("before", before), ("after", after)) if not needed]
    text = " and ".join(wanted)
    return f"{text} (and no {unwanted[0]})" if unwanted else text


def _client(data: object, where: str) -> Client | None:
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


def _mapping(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _BadPlan(f"{where} must be an object")
    return value


def _list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise _BadPlan(f"{where} must be a list")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _BadPlan(f"{where} must be a string")
    return value


def _opt_str(value: object, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _int(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _BadPlan(f"{where} must be an integer")
    return value


def _opt_int(value: object, where: str) -> int | None:
    return None if value is None else _int(value, where)


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise _BadPlan(f"{where} must be true or false")
    return value


def _strings(value: object, where: str) -> tuple[str, ...]:
    items = [_str(v, where) for v in _list(value, where)]
    # The normal form keeps sets sorted; a hand-edited file must not smuggle in another order.
    return tuple(sorted(set(items)))


def _opt_strings(value: object, where: str) -> tuple[str, ...] | None:
    return None if value is None else tuple(_str(v, where) for v in _list(value, where))
