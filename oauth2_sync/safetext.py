"""Safe text for terminals and Markdown: registry data is untrusted.

``escape`` and ``quote`` make a value one printable line (control, format and invisible
characters escaped), ``printable`` escapes only what cannot be seen (for messages).
A leaf module: renderers, the journal and apply's messages all use it.
"""

from __future__ import annotations

_NAMED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """``text`` with backslash, double quote and every invisible or control character escaped.

    Control characters (C0, DEL, C1), format characters (bidirectional overrides,
    zero-width joiners), spaces other than U+0020 and line/paragraph separators could
    move the cursor, recolour a terminal or disguise a value, so they become
    ``\\xNN``/``\\uNNNN``. The result is one printable line.
    """
    if text.isascii() and text.isprintable() and "\\" not in text and '"' not in text:
        return text
    out: list[str] = []
    for char in text:
        named = _NAMED.get(char)
        if named is not None:
            out.append(named)
        elif char.isprintable():
            out.append(char)
        else:
            out.append(_hex(ord(char)))
    return "".join(out)


def printable(text: str) -> str:
    """``text`` with only the invisible and control characters escaped (for messages)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _hex(ord(c)) for c in text)


def _hex(code: int) -> str:
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def quote(text: str) -> str:
    """``text`` as a double-quoted, escaped string literal."""
    return f'"{escape(text)}"'
