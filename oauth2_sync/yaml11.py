"""Plain YAML scalars that YAML 1.1 (PyYAML) and YAML 1.2 read differently.

``yes``, ``on``, ``1:30``, ``0600``, ``1_000``...: the loader tags them ``TAG`` and
refuses them, saying what each version would read.
"""

from __future__ import annotations

import re

TAG = "tag:oauth2-sync,2026:yaml-1.1"
"""The tag ``resolve`` gives a plain scalar that YAML 1.1 and YAML 1.2 read differently."""
_BOOL, _INT, _FLOAT = (f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float"))
_YAML12_BOOLS = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})
_YAML12_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)|[-+]?0x[0-9a-fA-F]+")


def only_yaml11(tag: str, value: str) -> bool:
    """Whether a plain scalar PyYAML (YAML 1.1) resolves to ``tag`` means something else
    in YAML 1.2 (``yes``, ``on``, ``1:30``, ``0600``, ``1_000``...): editors, linters and
    other tools reading the file would not see what oauth2-sync sees. (``y`` and ``n``
    are text to PyYAML and YAML 1.2 alike; where a boolean is expected the schema
    refuses them.)"""
    if tag == _BOOL:
        return value not in _YAML12_BOOLS
    if tag == _INT:
        return _YAML12_INT.fullmatch(value) is None
    if tag == _FLOAT:
        return ":" in value or "_" in value
    return False


def kind(tag: str, text: str) -> str:
    if tag == _BOOL:
        return "boolean"
    if ":" in text:
        return "base-60 number"
    if "_" in text:
        return "number with '_' separators"
    return "binary number" if "0b" in text else "octal number"
