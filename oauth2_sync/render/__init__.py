"""Renderers: each writes one kind of data in one output format.

The convention: one module per kind of data (``render.plan``, ``render.drift``,
``render.diagnostics``), whose entry points are ``render_<format>(data, stream, *,
color=False, ...)``: they write to ``stream`` and return nothing, options keyword-only
after the stream (diagnostics take their counts of files and clients with the data).
Plans render as text, JSON or Markdown (``render.plan``, delegating to the format
modules ``render.text``, ``render.json`` and ``render.markdown``, each with one
``render(plan, stream, *, color=False)``); drift reports as text, JSON, Markdown or
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
