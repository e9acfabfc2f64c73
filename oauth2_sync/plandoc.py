"""The JSON plan document and the plan file: ``to_dict``, ``save``, ``load``.

The document is what ``plan --format json`` prints and ``plan --out`` saves
(docs/reference/plan-json.md); ``planread.from_dict`` reads it back and refuses anything
malformed. It holds no secret: clients have none in normal form, and versions are
opaque tokens. Re-exported by ``oauth2_sync.plan``.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, NotRequired

from oauth2_sync.diff import ClientJson, JsonFieldValue, client_json, json_value
from oauth2_sync.errors import RuleId, UsageError
from oauth2_sync.files import file_kind, open_regular
from oauth2_sync.model import PLATFORM_DEFAULTS
from oauth2_sync.plandata import Action, Change, Plan
from oauth2_sync.planread import BadPlan, from_dict
from oauth2_sync.records import TypedDict

if TYPE_CHECKING:
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
    """The JSON plan document, keys in the order it is written (docs/reference/plan-json.md)."""

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
    """The plan as the documented JSON object (docs/reference/plan-json.md)."""
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
    except BadPlan as exc:
        raise UsageError(f"{path}: not a valid oauth2-sync plan file: {exc}") from exc
