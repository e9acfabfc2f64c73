"""``Secret``: a client secret or token that never shows itself.

A leaf module: adapters, sinks, the journal and the reference registry all hold
secrets, and none of them should depend on another for the wrapper.
"""

from __future__ import annotations


class Secret:
    """A client secret or token: its ``repr`` and ``str`` never show the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must write it (the sink)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
