"""Fast path: the safe loader's tag resolution, without PyYAML's generic resolver.

Readable reference: ``yaml.resolver.Resolver.resolve`` (with ``descend_resolver`` and
``ascend_resolver``) as ``yaml.CSafeLoader`` has it. The C parser asks ``resolve`` for
every untagged node; PyYAML's version, with its list concatenation per call, was a
tenth of the load time. Same answers, because the safe loader has no wildcard
resolver and no path resolvers; this relies on PyYAML internals
(``yaml_implicit_resolvers``), so tests/test_fast.py compares both on generated
scalars and fails if an upgrade changes them.
"""

from __future__ import annotations

import re

import yaml

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_IMPLICIT: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    first: tuple(resolvers)
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
    if first is not None
}
"""The safe loader's implicit types (int, bool, null...) by first character."""


def implicit_resolvers(first: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """The (tag, regular expression) pairs tried for a plain scalar starting with ``first``."""
    return _IMPLICIT.get(first, ())


class FastSafeResolver:
    """Mixin placed before ``yaml.CSafeLoader``: its resolver, answered directly."""

    def resolve(self, kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str:
        """The tag of an untagged node, as the safe loader resolves it."""
        if kind is yaml.ScalarNode:
            if implicit[0]:
                for tag, regexp in _IMPLICIT.get(value[:1], ()):
                    if regexp.match(value):
                        return tag
            return _STR
        return _MAP if kind is yaml.MappingNode else _SEQ

    def descend_resolver(self, current_node: object, current_index: object) -> None:
        """Nothing to do: only path resolvers need it, and the safe loader has none."""

    def ascend_resolver(self) -> None:
        """Nothing to do (see ``descend_resolver``)."""
