"""Token lifetimes: ``3600``, ``30s``, ``15m``, ``12h``, ``30d`` or ``never``."""

from __future__ import annotations

import re

NEVER = -1
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^([0-9]+)([smhdw])$")


def parse(value: int | float | str | None) -> int | None:
    """Return a lifetime in seconds (``-1`` for never, ``None`` for the platform default).

    The value has passed the schema, so only the shapes above reach here; anything
    else raises ``ValueError``.
    """
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise ValueError(f"not a duration: {value!r}")
        return None
    if isinstance(value, (int, float)):
        # JSON Schema's "integer" admits 3600.0; the normal form is an int.
        return int(value)
    if value == "never":
        return NEVER
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"not a duration: {value!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_seconds(seconds: int | None) -> str:
    """Render a lifetime for people: ``12h (43200 s)``, ``never``, ``platform default``."""
    if seconds is None:
        return "platform default"
    if seconds == NEVER:
        return "never"
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit} ({seconds} s)"
    return f"{seconds} s"


def shortest(seconds: int | None) -> int | str | None:
    """The shortest YAML spelling of a lifetime, as ``fmt`` and ``export`` write it."""
    if seconds is None:
        return None
    if seconds == NEVER:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return seconds
