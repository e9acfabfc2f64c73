"""The JSON drift document: what ``drift --format json`` prints (``to_dict``).

Keys are written in the order the ``TypedDict``s declare them (docs/reference/drift-json.md).
Re-exported by ``oauth2_sync.drift``.
"""

from __future__ import annotations

from typing import NotRequired

from oauth2_sync.diff import ClientJson, JsonFieldValue, client_json, json_value
from oauth2_sync.driftdata import ClientDrift, DriftKind, DriftReport, FieldMode, Side
from oauth2_sync.records import TypedDict
from oauth2_sync.settings import DriftMode

__all__ = ["ClientDriftJson", "DriftDocument", "DriftSummaryJson", "FieldDriftJson", "to_dict"]


class DriftSummaryJson(TypedDict):
    """``summary`` of the drift document."""

    changed: int
    missing: int
    undeclared: int
    warning: int
    in_sync: int
    ignored: int
    managed: int
    unmanaged: int
    unreachable: NotRequired[int]
    """Only when some client is unreachable (a standard registry), so that the
    documents of registries that show every client are as they were."""


class FieldDriftJson(TypedDict):
    """One entry of a client's ``fields``."""

    field: str
    before: JsonFieldValue
    after: JsonFieldValue
    mode: FieldMode
    effective_unchanged: bool


class ClientDriftJson(TypedDict):
    """One entry of ``clients``."""

    kind: DriftKind
    client_id: str
    partner: str
    failing: bool
    file: str | None
    line: int | None
    version: str | None
    created_at: str | None
    updated_at: str | None
    updated_by: str | None
    side: Side | None
    side_reason: str
    unsupported: list[str]
    fields: list[FieldDriftJson]
    before: ClientJson | None
    after: ClientJson | None
    reason: NotRequired[str]
    """Only for an ``unreachable`` client: why, and the adopt/forget commands."""


class DriftDocument(TypedDict):
    """The JSON drift document, keys in the order it is written."""

    format_version: int
    tool_version: str
    created_at: str
    registry: str
    commit: str | None
    uncommitted: list[str] | None
    drift: bool
    summary: DriftSummaryJson
    policy: dict[str, DriftMode]
    clients: list[ClientDriftJson]


def to_dict(report: DriftReport) -> DriftDocument:
    """The report as the documented JSON object (docs/reference/drift-json.md)."""
    s = report.summary
    doc: DriftDocument = {
        "format_version": report.format_version,
        "tool_version": report.tool_version,
        "created_at": report.created_at,
        "registry": report.registry,
        "commit": report.commit,
        "uncommitted": None if report.uncommitted is None else list(report.uncommitted),
        "drift": report.has_drift,
        "summary": {
            "changed": s.changed,
            "missing": s.missing,
            "undeclared": s.undeclared,
            "warning": s.warning,
            "in_sync": s.in_sync,
            "ignored": s.ignored,
            "managed": s.managed,
            "unmanaged": s.unmanaged,
        },
        "policy": dict(report.policy),
        "clients": [_client_drift_dict(item) for item in report.clients],
    }
    if s.unreachable:
        doc["summary"]["unreachable"] = s.unreachable
    return doc


def _client_drift_dict(item: ClientDrift) -> ClientDriftJson:
    made: ClientDriftJson = {
        "kind": item.kind,
        "client_id": item.client_id,
        "partner": item.partner,
        "failing": item.failing,
        "file": item.file,
        "line": item.line,
        "version": item.version,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
        "updated_by": item.updated_by,
        "side": item.side,
        "side_reason": item.side_reason,
        "unsupported": list(item.unsupported),
        "fields": [
            {
                "field": f.field,
                "before": json_value(f.before),
                "after": json_value(f.after),
                "mode": f.mode,
                "effective_unchanged": f.effective_unchanged,
            }
            for f in item.fields
        ],
        "before": client_json(item.before),
        "after": client_json(item.after),
    }
    if item.reason is not None:
        made["reason"] = item.reason
    return made
