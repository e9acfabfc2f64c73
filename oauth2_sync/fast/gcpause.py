"""Fast path: the cyclic garbage collector paused while bulk data is built.

Readable reference: no pause at all (``contextlib.nullcontext()``); the data built is the
same, only the time differs (43% of a plan of 10,000 clients on a loaded machine:
benchmarks/fastpaths.py).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

HAND_OVER_ABOVE = 20_000
"""Objects made during a collector pause above which they join the oldest generation."""


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while bulk data is built.

    Loading files and reading a registry make only acyclic data (dicts, lists,
    strings, frozen dataclasses) that reference counting frees, but every object they
    keep alive lengthens the collector's passes: at 10,000 clients those cost a fifth
    of the load time, with nothing to collect.

    On the way out of a pause that made more than ``HAND_OVER_ABOVE`` objects, what
    was built joins the oldest generation at once (``freeze`` then ``unfreeze``, two
    list splices): otherwise the next young collection would walk every object made
    during the pause, and promote them through each generation in turn. That walk made
    the comparison after loading 100,000 clients take a second. Nothing is lost: a full
    collection still looks at them. After small pauses (one file, in a loop) the
    collector goes on as usual.
    """
    if not gc.isenabled():
        yield
        return
    thaw = gc.get_freeze_count() == 0  # never thaw what an embedding program froze
    gc.disable()
    try:
        yield
    finally:
        # Only after bulk work: everything young joins the oldest generation, the
        # caller's short-lived objects and young garbage too, and those then wait there
        # for a full collection (after every small pause, a loop of validations beside
        # cyclic garbage grew to a gigabyte).
        if thaw and gc.get_count()[0] > HAND_OVER_ABOVE:
            gc.freeze()
            gc.unfreeze()
        gc.enable()
