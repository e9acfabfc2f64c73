"""Work started in a thread now and waited for later: a plan asks git and reads an HTTP
registry this way while its files load."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def in_background(work: Callable[[], T], name: str) -> Callable[[], T]:
    """Start ``work()`` in a daemon thread called ``name`` and return the function that
    waits for it: it returns what ``work`` returned, or raises what it raised (the same
    exception object, ``KeyboardInterrupt`` included), in the caller's thread.

    A caller that fails before waiting abandons the work: the thread is a daemon, so the
    process never waits for it at exit.
    """
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(work())
        except BaseException as exc:  # every outcome goes to the waiter
            errors.append(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()

    def wait() -> T:
        thread.join()
        if errors:
            raise errors[0]
        return results[0]

    return wait
