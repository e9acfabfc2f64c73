"""Folders oauth2-sync creates stay inside the settings' folder, links on the way included."""

from __future__ import annotations

import os
from pathlib import Path


def escaping(folder: Path, root: Path | None) -> str | None:
    """Why creating ``folder`` would write outside ``root``, or ``None``.

    Checked before any folder is created: the nearest existing ancestor of ``folder``
    (a symbolic link resolved) must lie inside ``root``, or ``mkdir -p`` would create
    the missing folders where the link points.
    """
    if root is None:
        return None
    existing = Path(os.path.abspath(folder))
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    resolved, top = existing.resolve(), root.resolve()
    if resolved == top or top in resolved.parents:
        return None
    return (
        f"{folder} would be created through {existing}, which resolves to {resolved}, "
        f"outside the settings' folder {top} (a linked parent folder)"
    )
