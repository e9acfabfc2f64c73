"""A plan as JSON: the documented plan document (docs/reference/plan-json.md).

It is the same document ``plan --out`` saves, so a plan printed with
``--format json`` can be applied too. Non-ASCII is escaped (``\\uNNNN``): the output
is safe to print on a terminal whatever the registry holds.
"""

from __future__ import annotations

import json
from typing import TextIO

from oauth2_sync.plandata import Plan
from oauth2_sync.plandoc import to_dict


def render(plan: Plan, stream: TextIO, *, color: bool = False) -> None:
    """Write the plan document; ``color`` is accepted for a uniform signature and ignored."""
    json.dump(to_dict(plan), stream, indent=2, ensure_ascii=True)
    stream.write("\n")
