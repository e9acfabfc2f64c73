"""Opening a file for reading that must be a regular file (no FIFO, device or folder)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

PACKAGE = Path(__file__).resolve().parent
"""The installed package's folder (its schemas and contract ship inside it)."""


def package_text(relative: str) -> str:
    """A text file shipped inside the package, such as ``schemas/clients.schema.json``.

    Read from the package's folder, not through ``importlib.resources``, whose import
    (tempfile, shutil, zipfile and the compression modules) cost every command's
    start-up more than the read (#14).
    """
    return (PACKAGE / relative).read_text(encoding="utf-8")


def open_regular(path: Path | str) -> BinaryIO:
    """Open a file for reading, refusing anything but a regular file.

    A FIFO would block the open (waiting for a writer) or the read, and a device such
    as ``/dev/zero`` never ends: the type is checked on the open file (no race), which
    is opened with ``O_NONBLOCK`` so that opening a FIFO returns at once. The refusal is
    an ``OSError`` whose ``strerror`` says what the path is, so callers that report
    ``exc.strerror`` need nothing more.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"not a regular file ({file_kind(mode)})", str(path))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def file_kind(mode: int) -> str:
    """What ``mode`` (``st_mode``) says a path is: ``a directory``, ``a FIFO``..."""
    for test, name in (
        (stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "not a regular file"
