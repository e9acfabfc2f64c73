"""A plan in each format, under the renderers' one convention.

``render_<format>(plan, stream, *, color=False)`` as for drift reports and
diagnostics; each delegates to the module of its format (``render.text``,
``render.json``, ``render.markdown``), where the plan's wording lives.
"""

from __future__ import annotations

from typing import TextIO

from oauth2_sync.plan import Plan
from oauth2_sync.render import json, markdown, text


def render_text(plan: Plan, stream: TextIO, *, color: bool = False) -> None:
    """The plan for people, in Terraform's wording and symbols."""
    text.render(plan, stream, color=color)


def render_json(plan: Plan, stream: TextIO, *, color: bool = False) -> None:
    """The plan document (``color`` ignored)."""
    json.render(plan, stream, color=color)


def render_markdown(
    plan: Plan, stream: TextIO, *, color: bool = False, limit: int = markdown.DEFAULT_LIMIT
) -> None:
    """The plan as a pull-request comment of at most ``limit`` characters."""
    markdown.render(plan, stream, color=color, limit=limit)
