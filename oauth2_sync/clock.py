"""The clock: the one place that reads the time of day for timestamps.

Plans, drift reports and journal entries carry a creation time in UTC, to the second,
as ``2026-01-31T12:00:00Z``. Tests replace the clock (``use``) instead of sleeping or
patching ``datetime``; the wall clock is the default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""A function returning the current time, timezone-aware."""


def _wall() -> datetime:
    return datetime.now(UTC)


_in_use: list[Clock] = [_wall]
"""The clock ``now`` reads: the last one ``use`` set (a list, so no ``global``)."""


def now() -> datetime:
    """The current time in UTC, from the clock in use."""
    return _in_use[-1]().astimezone(UTC)


def timestamp() -> str:
    """The current time as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds)."""
    return now().replace(microsecond=0).isoformat().replace("+00:00", "Z")


@contextlib.contextmanager
def use(clock: Clock) -> Iterator[None]:
    """Read the time from ``clock`` inside the ``with`` block (for tests)."""
    _in_use.append(clock)
    try:
        yield
    finally:
        _in_use.pop()
