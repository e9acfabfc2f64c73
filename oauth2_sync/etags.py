"""Entity tags of client versions, read and written alike by the adapters and the
reference server (``ETag`` on answers, ``If-Match`` on writes)."""

from __future__ import annotations


def etag(version: str) -> str:
    """The strong ``ETag`` for a version: the version quoted (``"3"``)."""
    return f'"{version}"'


def version_from_etag(value: str | None) -> str | None:
    """The version inside an ``ETag`` header, or ``None`` when it has none."""
    if not value:
        return None
    value = value.strip()
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        return value[1:-1]
    return None


def parse_if_match(value: str | None) -> frozenset[str] | None:
    """The versions an ``If-Match`` header accepts; ``None`` for absent or ``*``.

    A weak or malformed entity tag matches nothing (If-Match compares strongly).
    """
    if value is None or value.strip() == "*":
        return None
    found: set[str] = set()
    for part in value.split(","):
        version = version_from_etag(part)
        if version is not None:
            found.add(version)
    return frozenset(found)
