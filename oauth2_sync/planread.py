"""Reading a plan document back: ``from_dict`` rebuilds a ``Plan`` and refuses anything else.

A plan file is data anyone with write access to a CI workspace can edit, so every key
is checked for its type, every change for the clients its action needs, and the field
changes are recomputed rather than trusted. ``plandoc.parse`` turns ``BadPlan`` into the
one-line ``UsageError`` naming the file. Re-exported by ``oauth2_sync.plan``.
"""

from __future__ import annotations

from typing import cast

from oauth2_sync.diff import AUTH_METHOD, diff_clients
from oauth2_sync.errors import Diagnostic, RuleId
from oauth2_sync.model import CONFIDENTIAL, FIELD_NAMES, PLATFORM_DEFAULTS, Client, TtlDefaults
from oauth2_sync.plandata import ACTIONS, FORMAT_VERSION, Action, Change, Limit, Plan

__all__ = ["BadPlan", "from_dict"]


class BadPlan(Exception):
    """A plan document that is not what ``plandoc.to_dict`` writes; the message says where."""


_OLDER = {
    1: "digests of the configuration, so it cannot be re-checked before apply",
    2: "access review of its changes, so a reviewer may not have seen which widen access",
}
"""Why plan files of older versions are refused."""


def from_dict(data: object) -> Plan:
    """Rebuild a plan from ``plandoc.to_dict``'s document; raises ``BadPlan`` on any malformation."""
    obj = _mapping(data, "plan")
    version = obj.get("format_version")
    if version in _OLDER:
        raise BadPlan(
            f"format_version {version} records no {_OLDER[version]}; make the plan again "
            "with this oauth2-sync"
        )
    if version != FORMAT_VERSION:
        raise BadPlan(
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
        raise BadPlan(f"{where}: a {action} needs {_needs(needs_before, needs_after)}")
    for client in (before, after):
        if client is not None and client.client_id != client_id:
            raise BadPlan(f"{where}: client_id does not match its clients")
    version = _opt_str(obj.get("version"), f"{where}.version")
    if needs_before and version is None:
        raise BadPlan(f"{where}: a {action} needs the version it was planned against")
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
    raise BadPlan(f"{where} must be one of {', '.join(ACTIONS)}")


def _needs(before: bool, after: bool) -> str:
    wanted = [name for name, needed in (("before", before), ("after", after)) if needed]
    unwanted = [name for name, needed in (("before", before), ("after", after)) if not needed]
    text = " and ".join(wanted)
    return f"{text} (and no {unwanted[0]})" if unwanted else text


def _client(data: object, where: str) -> Client | None:
    if data is None:
        return None
    obj = _mapping(data, where)
    if set(obj) - {AUTH_METHOD} != set(_REQUIRED_FIELDS):
        # (Plus the auth method of a client that is not confidential: diff.ClientJson.)
        raise BadPlan(f"{where} must have exactly the fields {', '.join(_REQUIRED_FIELDS)}")
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
        token_endpoint_auth_method=_str(
            obj.get(AUTH_METHOD, CONFIDENTIAL), f"{where}.{AUTH_METHOD}"
        ),
    )


_REQUIRED_FIELDS = tuple(f for f in FIELD_NAMES if f != AUTH_METHOD)


def _mapping(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise BadPlan(f"{where} must be an object")
    return value


def _list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise BadPlan(f"{where} must be a list")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise BadPlan(f"{where} must be a string")
    return value


def _opt_str(value: object, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _int(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadPlan(f"{where} must be an integer")
    return value


def _opt_int(value: object, where: str) -> int | None:
    return None if value is None else _int(value, where)


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise BadPlan(f"{where} must be true or false")
    return value


def _strings(value: object, where: str) -> tuple[str, ...]:
    items = [_str(v, where) for v in _list(value, where)]
    # The normal form keeps sets sorted; a hand-edited file must not smuggle in another order.
    return tuple(sorted(set(items)))


def _opt_strings(value: object, where: str) -> tuple[str, ...] | None:
    return None if value is None else tuple(_str(v, where) for v in _list(value, where))
