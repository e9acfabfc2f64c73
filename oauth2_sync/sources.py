"""Which files validation reads beyond what the settings' discovery names: the files and
folders given on the command line, and what discovery left out (links leading outside
the configuration's folder, YAML files under a team's folder that ``clients.paths``
does not reach), each as a diagnostic at the place that explains it."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from oauth2_sync.errors import Diagnostic
from oauth2_sync.loader import display_path, load_file
from oauth2_sync.settings import Settings

__all__ = ["expand_paths", "outside_links", "unmatched_files"]


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and the ``*.yaml``/``*.yml`` files under folders, sorted, once each."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(p for p in path.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))
        else:
            found.add(path)
    return sorted(found)


def outside_links(
    settings: Settings, outside: Mapping[str, tuple[int, str]]
) -> list[Diagnostic]:
    """An error at the ``clients.paths`` pattern that reached each link not followed."""
    if not outside:
        return []
    doc = load_file(settings.path)
    cwd = os.getcwd()
    return [
        doc.diagnostic(
            ("clients", "paths", index),
            "outside-root",
            f"{display_path(link, cwd)!r} is a link to {target!r}, outside this file's "
            "folder: not followed",
        )
        for link, (index, target) in outside.items()
    ]


def unmatched_files(settings: Settings, found: Sequence[str]) -> list[Diagnostic]:
    """A warning for each ``*.yaml``/``*.yml`` file under a team's folder that
    ``clients.paths`` does not reach (``found``): it would be left out without a word."""
    matched = set(found)
    patterns = ", ".join(settings.client_paths)
    cwd = os.getcwd()
    return [
        Diagnostic(
            display_path(name, cwd), 1, 1, "warning", "unmatched-file",
            f"this YAML file under a team's folder is not matched by clients.paths "
            f"({patterns}): it is not read",
        )
        for folder in settings.team_folders()
        for name in _yaml_files(folder)
        if name not in matched and name != str(settings.path)
    ]


def _yaml_files(directory: str) -> Iterator[str]:
    """The ``*.yaml``/``*.yml`` files under ``directory``, named as discovery names them;
    hidden folders (``.git``, ``.github``, ``.oauth2-sync``) and linked folders skipped."""
    try:
        with os.scandir(directory or ".") as scan:
            entries = list(scan)
    except OSError:
        return
    for entry in entries:
        path = os.path.join(directory, entry.name)
        if entry.name.endswith((".yaml", ".yml")) and not _is_dir_entry(entry):
            yield path
        elif not entry.name.startswith(".") and not entry.is_symlink() and _is_dir_entry(entry):
            yield from _yaml_files(path)


def _is_dir_entry(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False
