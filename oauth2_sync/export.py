"""``export``: client files for what the registry holds, to adopt clients into the repository.

Each client goes to a file of its own, ``<client_id>.yaml``, in the folder of the team
that manages its partner (the fixed part of the team's first path under which such a
file is owned by the team and matched by ``clients.paths``), below ``--out`` (default:
the folder of the settings). The file is in the normal form ``fmt`` keeps: keys in
schema order, sets sorted, lifetimes in their shortest spelling. Planning against the
registry right after an export shows no changes.

Like the examples, a file starts with a yaml-language-server comment naming the clients
schema by a path relative to the file: ``schemas/clients.schema.json`` at the top of the
output folder, which by default is the settings' folder, where the tutorial (docs/tutorial.md)
writes ``oauth2-sync schema clients``.

Safety: a client ID from the registry is a file name only when it matches the client-ID
pattern of the schema, and the resolved path must lie under ``--out`` (no ``..``, no
symbolic link leading out); an existing file is never overwritten without ``force``
(created with ``O_EXCL``, so not even by a race). Clients hold no secret in normal
form, so none can be written.

Clients that a file of the configuration already declares are skipped unless
``include_declared`` (exporting them would declare them twice); clients outside the
managed scope have no team folder and are never exported.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from oauth2_sync.errors import UsageError
from oauth2_sync.model import Client, normal_set
from oauth2_sync.registry.base import Registry
from oauth2_sync.settings import Settings, Team

logger = logging.getLogger(__name__)

FILE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
"""A client ID usable as a file name: the schema's client-ID pattern and length."""
HEADER = "# Exported by `oauth2-sync export`: this client as the registry held it.\n"
SCHEMA = "schemas/clients.schema.json"
"""The clients schema, relative to the output folder (the settings' folder by default)."""

Status = Literal["written", "overwritten", "exists", "declared", "refused"]


@dataclass(frozen=True, slots=True)
class ExportItem:
    """What happened to one client: ``path`` relative to the output folder, and why."""

    client_id: str
    partner: str
    status: Status
    path: str | None = None
    reason: str = ""

    @property
    def failed(self) -> bool:
        """Whether this client was meant to be written and was not."""
        return self.status in ("exists", "refused")


@dataclass(frozen=True, slots=True)
class ExportReport:
    """Every selected client, sorted by client ID, and the output folder."""

    out: Path
    items: tuple[ExportItem, ...]

    @property
    def failed(self) -> tuple[ExportItem, ...]:
        """Clients that were not written (existing file, unusable ID)."""
        return tuple(i for i in self.items if i.failed)


@dataclass(frozen=True, slots=True)
class ExportLine:
    """One line ``export`` prints about its report; ``error`` lines belong on stderr."""

    text: str
    error: bool = False


def report_lines(report: ExportReport, *, quiet: bool = False, verbose: int = 0) -> list[ExportLine]:
    """The lines ``export`` prints for ``report``, in order: each client written (not
    with ``quiet``), skipped (only with ``verbose``) or failed, then the summary (not
    with ``quiet``). Client IDs and reasons from the registry are escaped."""
    from oauth2_sync.safetext import escape

    lines: list[ExportLine] = []
    for item in report.items:
        shown = escape(item.client_id)
        if item.status in ("written", "overwritten") and not quiet:
            verb = "Wrote" if item.status == "written" else "Overwrote"
            lines.append(ExportLine(f"{verb} {item.path} ({shown})"))
        elif item.status == "declared" and verbose:
            lines.append(ExportLine(f"Skipped {shown}: {escape(item.reason)}"))
        elif item.failed:
            where = f" ({item.path})" if item.path else ""
            lines.append(ExportLine(f"Error: {shown}{where}: {item.reason}", error=True))
    if not quiet:
        lines.append(ExportLine(summary_line(report)))
    return lines


def summary_line(report: ExportReport) -> str:
    """``Exported 2 of 3 clients to OUT: 1 new, 1 overwritten, ...`` for ``report``."""
    counts = dict.fromkeys(("written", "overwritten", "declared", "exists", "refused"), 0)
    for item in report.items:
        counts[item.status] += 1
    return (
        f"Exported {counts['written'] + counts['overwritten']} of {len(report.items)} "
        f"clients to {report.out}: {counts['written']} new, {counts['overwritten']} "
        f"overwritten, {counts['declared']} already declared (skipped), "
        f"{counts['exists'] + counts['refused']} failed."
    )


def export(
    settings: Settings,
    registry: Registry,
    *,
    partners: Collection[str] = (),
    client_ids: Collection[str] = (),
    out: Path | None = None,
    force: bool = False,
    include_declared: bool = False,
) -> ExportReport:
    """Read the registry and write the selected clients' files (what ``export`` runs).

    ``partners`` and ``client_ids`` narrow the selection (both apply when both are
    given). Raises ``UsageError`` for a partner outside the managed scope or a client
    ID the registry does not hold (or holds outside the managed scope).
    """
    from oauth2_sync.validation import validate

    clients = [rc.client for rc in registry.list_clients()]
    selected = select(clients, settings, partners=partners, client_ids=client_ids)
    declared: dict[str, str] = {}
    if not include_declared:
        # Files with errors still declare the clients that passed their checks.
        for item in validate(settings).clients:
            declared.setdefault(item.client.client_id, f"{item.file}:{item.line}")
    return write_clients(
        selected, settings, out if out is not None else settings.root,
        force=force, declared=declared,
    )


def creation_list(settings: Settings, registry: Registry) -> list[tuple[str, str]]:
    """``(client_id, created_at)`` for each managed client of the registry, sorted (what
    ``export --list-created`` prints, for ``ci/store-secret --audit``): the creation
    time tells the current registration from an earlier one of the same name; empty
    when the registry does not say."""
    remote = {rc.client.client_id: rc for rc in registry.list_clients()}
    chosen = select([rc.client for rc in remote.values()], settings)
    return [(c.client_id, remote[c.client_id].created_at or "") for c in chosen]


def select(
    clients: Sequence[Client],
    settings: Settings,
    *,
    partners: Collection[str] = (),
    client_ids: Collection[str] = (),
) -> list[Client]:
    """The managed clients that match the filters, sorted by client ID."""
    managed = settings.managed_partners
    for partner in sorted(set(partners) - managed):
        raise UsageError(
            f"partner '{partner}' is not in the managed scope: name it under a team's "
            "partners in the settings first"
        )
    by_id = {c.client_id: c for c in clients}
    for client_id in sorted(client_ids):
        found = by_id.get(client_id)
        if found is None:
            raise UsageError(f"--client-id {client_id}: the registry holds no such client")
        if found.partner not in managed:
            raise UsageError(
                f"--client-id {client_id}: its partner '{found.partner}' is not in the "
                "managed scope"
            )
    wanted_partners = frozenset(partners)
    wanted_ids = frozenset(client_ids)
    return sorted(
        (
            c for c in clients
            if c.partner in managed
            and (not wanted_partners or c.partner in wanted_partners)
            and (not wanted_ids or c.client_id in wanted_ids)
        ),
        key=lambda c: c.client_id,
    )


def write_clients(
    clients: Sequence[Client],
    settings: Settings,
    out: Path,
    *,
    force: bool = False,
    declared: Mapping[str, str] | None = None,
) -> ExportReport:
    """Write one file per client below ``out``; see the module's notes on safety."""
    declared = declared or {}
    if clients:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except FileExistsError as exc:  # something that is not a folder has the name
            raise UsageError(
                f"--out {out}: {exc.strerror} and is not a folder; choose a folder"
            ) from exc
        except OSError as exc:
            raise UsageError(
                f"--out {out}: {exc.strerror or exc}; check that it is a folder, or can be "
                "created, and is writable"
            ) from exc
    root = out.resolve()
    items: list[ExportItem] = []
    for client in clients:
        where = declared.get(client.client_id)
        if where is not None:
            items.append(ExportItem(
                client.client_id, client.partner, "declared", reason=f"declared in {where}"
            ))
            continue
        items.append(_write_one(client, settings, root, force))
    return ExportReport(out, tuple(items))


def target(client: Client, settings: Settings) -> str | None:
    """The file for ``client``, relative to the config folder (``None`` if none fits)."""
    name = f"{client.client_id}.yaml"
    matcher = Team("clients.paths", settings.client_paths, ())
    for team in settings.teams:
        if client.partner not in team.partners:
            continue
        for pattern in team.paths:
            candidate = "/".join([*_fixed_folders(pattern), name])
            if team.owns(candidate) and matcher.owns(candidate):
                return candidate
    return None


def schema_comment(relative: str) -> str:
    """The first line of the file at ``relative`` (below the output folder): the
    yaml-language-server comment that points editors at ``SCHEMA``."""
    return f"# yaml-language-server: $schema={'../' * relative.count('/')}{SCHEMA}\n"


def render_file(client: Client, relative: str) -> str:
    """The text of an exported client file at ``relative`` (below the output folder):
    the schema comment, a header comment and the client in normal form, as ``fmt``
    keeps it."""
    normal = client._replace(
        scopes=normal_set(client.scopes),
        grant_types=normal_set(client.grant_types),
        redirect_uris=normal_set(client.redirect_uris),
    )
    document = normal.to_document()
    if len(normal.redirect_uris) > 1:
        document["redirect_uris"] = _Block(document["redirect_uris"])
    body = yaml.dump(
        {"clients": [document]}, Dumper=_Dumper, sort_keys=False, default_flow_style=None,
        allow_unicode=True, width=10_000,
    )
    return schema_comment(relative) + HEADER + body


def _write_one(client: Client, settings: Settings, root: Path, force: bool) -> ExportItem:
    cid, partner = client.client_id, client.partner
    if not FILE_NAME.fullmatch(cid):
        return ExportItem(
            cid, partner, "refused",
            reason="the client ID is not a valid client ID, so it cannot name a file",
        )
    relative = target(client, settings)
    if relative is None:
        return ExportItem(
            cid, partner, "refused",
            reason=f"no path of a team managing partner '{partner}' can hold a file named "
            f"{cid}.yaml that clients.paths also matches",
        )
    path = root / relative
    try:
        # A symbolic link on the way must not lead out of the folder: check what exists
        # before creating any folder, and the whole path after.
        existing = path.parent
        while not existing.exists():
            existing = existing.parent
        existing.resolve().relative_to(root)
        path.parent.mkdir(parents=True, exist_ok=True)
        resolved = path.parent.resolve() / path.name
        resolved.relative_to(root)
    except ValueError:
        return ExportItem(cid, partner, "refused", relative, "the path leads out of the output folder")
    except OSError as exc:
        return ExportItem(cid, partner, "refused", relative, exc.strerror or str(exc))
    text = render_file(client, relative)
    existed = os.path.lexists(resolved)
    try:
        if force:
            _replace(resolved, text)
        else:
            _create(resolved, text)
    except FileExistsError:
        return ExportItem(cid, partner, "exists", relative, "the file exists (--force overwrites it)")
    except OSError as exc:
        return ExportItem(cid, partner, "refused", relative, exc.strerror or str(exc))
    logger.info("exported %s to %s", cid, relative)
    return ExportItem(cid, partner, "overwritten" if existed else "written", relative)


def _create(path: Path, text: str) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _replace(path: Path, text: str) -> None:
    if path.is_dir():
        raise OSError(errno.EISDIR, "a folder has the file's name")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.chmod(tmp, 0o644)
        # Replaces a symbolic link itself, never the file it points to.
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fixed_folders(pattern: str) -> list[str]:
    """The folders of a glob pattern before its first wildcard (``clients/acme/**`` ->
    ``[clients, acme]``); a last part without wildcard is a file name, not a folder."""
    parts = pattern.split("/")
    folders: list[str] = []
    for index, part in enumerate(parts):
        if any(ch in part for ch in "*?[") or index == len(parts) - 1:
            break
        if part in ("", ".", ".."):
            continue
        folders.append(part)
    return folders


class _Block(list[Any]):
    """A list written in block style (one redirect URI a line)."""


class _Dumper(yaml.SafeDumper):
    """Indents sequences under their key (``  - client_id: ...``), as the examples do."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_block(dumper: yaml.SafeDumper, data: _Block) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=False)


_Dumper.add_representer(_Block, _represent_block)
