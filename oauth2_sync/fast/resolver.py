"""PyYAML's implicit resolver, answered directly by the first character of a scalar.

Reference: ``yaml.resolver.BaseResolver.resolve`` (PyYAML's own, which the loader used
while this was removed). The C parser asks it for every untagged node; PyYAML's version
concatenates two lists per call (the resolvers of the first character and the wildcard
ones) and walks path resolvers. The safe loader has neither wildcard nor path
resolvers, so the answers are the same (``tests/test_fast.py`` compares them).

Measured as a whole process (``oauth2-sync plan -q`` at 10,000 clients, 5 alternated
runs, 2026-11-27): without it plan took 2.28 s against 1.91 s with it, the floor 1.27 s.
"""

from __future__ import annotations

import re

import yaml

from oauth2_sync import yaml11

STR = "tag:yaml.org,2002:str"
MAP = "tag:yaml.org,2002:map"
SEQ = "tag:yaml.org,2002:seq"

IMPLICIT: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    first: tuple(resolvers)
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
    if first is not None
}
"""The safe loader's implicit types (int, bool, null...) by first character."""


def resolve(kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str:
    """The tag PyYAML's safe loader gives an untagged node of ``kind``."""
    if kind is yaml.ScalarNode:
        if implicit[0]:
            for tag, regexp in IMPLICIT.get(value[:1], ()):
                if regexp.match(value):
                    return tag
        return STR
    return MAP if kind is yaml.MappingNode else SEQ


def resolve_strict(kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str:
    """``resolve``, with a plain scalar that YAML 1.1 and 1.2 read differently tagged
    ``yaml11.TAG`` (reference: ``resolve``, then ``yaml11.only_yaml11`` on its answer).

    The loader's own resolver, asked for every untagged node: one call, not two.
    """
    if kind is yaml.ScalarNode:
        if implicit[0]:
            for tag, regexp in IMPLICIT.get(value[:1], ()):
                if regexp.match(value):
                    return yaml11.TAG if yaml11.only_yaml11(tag, value) else tag
        return STR
    return MAP if kind is yaml.MappingNode else SEQ
