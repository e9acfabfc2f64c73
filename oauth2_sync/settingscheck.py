"""The checks of ``oauth2-sync.yaml`` that its JSON Schema cannot make, each finding at
the file, line and column of the value it is about.

They run once the schema check passes (so every key has its type): paths stay inside
the settings file's folder, ``registry.capabilities`` only for a standard server, and
``review.widening_approvers[].for_teams`` names teams the file defines (a typo there
would silently make an approval required for no change at all).
"""

from __future__ import annotations

from typing import Any

from oauth2_sync.errors import Diagnostic
from oauth2_sync.loader import DataPath, Document

__all__ = ["problems"]


def problems(doc: Document) -> list[Diagnostic]:
    """Every finding of the checks beyond the schema, of the first check that finds any."""
    return _path_problems(doc) or _capability_problems(doc) or _approver_problems(doc)


def _approver_problems(doc: Document) -> list[Diagnostic]:
    """Each ``for_teams`` entry names a team of ``teams``."""
    teams = sorted(doc.data["teams"])
    approvers = doc.data.get("review", {}).get("widening_approvers", [])
    found = []
    for index, approver in enumerate(approvers):
        for position, name in enumerate(approver.get("for_teams", [])):
            if name in teams:
                continue
            import difflib  # a did-you-mean for a mistake only

            hint = difflib.get_close_matches(name, teams, n=1, cutoff=0.6)
            known = f"did you mean '{hint[0]}'?" if hint else f"teams: {', '.join(teams)}"
            found.append(doc.diagnostic(
                ("review", "widening_approvers", index, "for_teams", position), "settings",
                f"for_teams names {name!r}, which is not a team of this file ({known})",
            ))
    return found


def _capability_problems(doc: Document) -> list[Diagnostic]:
    """``registry.capabilities`` describes a standard server; the reference registry's
    are fixed (read/write, its four grants, 12h/30d), so declaring them is a mistake."""
    reg = doc.data["registry"]
    if "capabilities" not in reg or str(reg["url"]).startswith("rfc7592+"):
        return []
    return [doc.diagnostic(
        ("registry", "capabilities"), "settings", "registry.capabilities is for rfc7592+ "
        "registries only: the reference registry's capabilities are fixed", key=True,
    )]


_BOUNDED_PATHS: tuple[tuple[str, str], ...] = (
    ("secrets", "directory"), ("registry", "state_file"),
)
"""Single paths that oauth2-sync writes, kept inside the configuration's folder."""


def _path_problems(doc: Document) -> list[Diagnostic]:
    """Path patterns, the secrets folder and the state file stay inside the settings
    file's folder (the repository boundary): no absolute path, no ``..`` segment."""
    data = doc.data
    places: list[tuple[DataPath, Any]] = [(("clients", "paths"), data["clients"]["paths"])]
    places += [(("teams", name, "paths"), team["paths"]) for name, team in data["teams"].items()]
    found = [
        _path_problem(doc, (*where, index), f"path pattern {pattern!r}", pattern, pattern=True)
        for where, patterns in places
        for index, pattern in enumerate(patterns)
    ]
    found += [
        _path_problem(doc, (section, key), f"{section}.{key} {value!r}", value, pattern=False)
        for section, key in _BOUNDED_PATHS
        if isinstance(value := data.get(section, {}).get(key), str)
    ]
    return [problem for problem in found if problem is not None]


def _path_problem(
    doc: Document, where: DataPath, what: str, value: str, *, pattern: bool
) -> Diagnostic | None:
    if value.startswith("/"):
        if pattern:  # the message of earlier releases, kept
            return doc.diagnostic(
                where, "settings", f"{what} is absolute: patterns are relative to this file"
            )
        return doc.diagnostic(
            where, "outside-root",
            f"{what} is absolute: paths are relative to this file and stay in its folder",
        )
    if ".." in value.split("/"):
        return doc.diagnostic(
            where, "outside-root", f"{what} has a '..' segment: paths stay in this file's folder"
        )
    return None
