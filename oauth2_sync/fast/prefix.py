"""Fast path: a file's path relative to the configuration's folder, by comparing text.

Readable reference: ``relative_reference``, ``PurePath.relative_to`` then, for a path
not written under ``root``, the same on both paths resolved (``None`` when outside).
Files found by discovery are under ``root`` as written, so comparing the text or the
parts is enough, a tenth of what building a ``Path`` with ``relative_to`` costs (7.6% of
a plan of 10,000 clients: benchmarks/fastpaths.py). ``relative_fast`` answers only when the comparison settles it;
otherwise the caller asks the reference. tests/test_fast.py compares both on
generated names.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def base(root: Path) -> str:
    """``root`` as ``str(root / name)`` starts: nothing for ``.`` (no ``./``)."""
    text = str(root)
    return "" if text == "." else text


def relative_fast(root: Path, file: Path | str) -> str | None:
    """``file`` relative to ``root``, POSIX style, when written under it; else ``None``
    (not known: the file may still be inside, through ``..`` or a link)."""
    if isinstance(file, str):
        prefix = os.path.join(base(root), "")
        if file.startswith(prefix) and len(file) > len(prefix) and (
            prefix or not os.path.isabs(file)
        ):
            return file[len(prefix) :]
        file = Path(file)
    parts, root_parts = file.parts, root.parts
    if len(parts) > len(root_parts) and parts[: len(root_parts)] == root_parts and (
        root_parts or not file.is_absolute()
    ):
        return "/".join(parts[len(root_parts) :])
    return None


def relative_reference(root: Path, file: Path | str) -> str | None:
    """The readable rule: ``file`` relative to ``root`` as written, else once both are
    resolved (``..``, links, a relative and an absolute path); ``None`` if outside."""
    path = Path(file)
    with contextlib.suppress(ValueError):
        return path.relative_to(root).as_posix()
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
