"""Renderers: each writes one kind of data in one output format.

The convention: a renderer module per format (``render.text``, ``render.json``,
``render.markdown``) or per kind of data (``render.drift``, ``render.diagnostics``);
its entry points are functions ``render_<what>(data, stream, *, color=False, ...)``
that write to ``stream`` and return nothing, keyword-only options after the stream.
Plans render as text, JSON or Markdown; drift reports as text, JSON, Markdown or
JUnit; validation findings as text, JSON or GitHub annotations.

Registry data is untrusted, so every renderer escapes what it shows
(``oauth2_sync.safetext``); helpers shared by several renderers live in
``render.common``, so that no renderer imports another.
"""

from __future__ import annotations

# Re-exported for callers that still import them from here; new code imports
# oauth2_sync.safetext.
from oauth2_sync.safetext import escape, printable, quote

__all__ = ["escape", "printable", "quote"]
