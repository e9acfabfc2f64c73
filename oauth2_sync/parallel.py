"""Bounded parallelism with a stop: how apply and rotate-secret run their writes.

Jobs are handed to a thread pool one at a time, never more than ``parallelism`` in
flight, and the ``Stop`` is checked before each: once it is set no new job starts, the
ones in flight finish, and every job never started gets a result of status
``not-attempted`` and goes to the caller's ``forget`` (apply crosses its creates off
the journal: nothing was sent). Results come back sorted by client ID.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from oauth2_sync.errors import UsageError
from oauth2_sync.results import Operation, Report, Result, Stop, StopReason


@dataclass(frozen=True, slots=True)
class Job:
    """One client's write: ``run`` returns its ``Result`` and never raises."""

    client_id: str
    operation: Operation
    run: Callable[[], Result]


def run_jobs(
    jobs: Sequence[Job],
    parallelism: int,
    on_result: Callable[[Result], None] | None,
    *,
    stop: Stop,
    on_stop: Callable[[StopReason, int], None] | None,
    forget: Callable[[Sequence[Job]], None],
) -> Report:
    """Run ``jobs`` with at most ``parallelism`` in flight, starting none once ``stop`` is
    set; the jobs never started get ``not-attempted`` results and go to ``forget``."""
    if parallelism < 1:
        raise UsageError(f"parallelism must be at least 1, not {parallelism}")
    if not jobs:
        return Report(())
    results: list[Result] = []
    started = 0
    announced = False
    running: dict[Future[Result], Job] = {}

    def never_started() -> None:
        forget(jobs[started:])

    with ThreadPoolExecutor(max_workers=min(parallelism, len(jobs))) as pool:
        # Only while this loop runs: the calling thread touches no journal here, so a
        # signal handler calling ``abandon`` cannot find its lock held by its own thread.
        stop._abandon = never_started
        try:
            while True:
                while not stop.requested and started < len(jobs) and len(running) < parallelism:
                    job = jobs[started]
                    # Counted before it is submitted: an abandon in between keeps the
                    # client noted in the journal, the safe side.
                    started += 1
                    running[pool.submit(job.run)] = job
                stop.in_flight = len(running)
                if stop.reason is not None and not announced:
                    announced = True
                    if on_stop is not None:
                        on_stop(stop.reason, len(running))
                if not running:
                    break
                # A timeout, so that a stop is noticed while every write in flight is slow.
                done, _ = wait(running, timeout=0.1, return_when=FIRST_COMPLETED)
                for future in done:
                    del running[future]
                    result = future.result()
                    results.append(result)
                    if on_result is not None:
                        on_result(result)
        finally:
            stop._abandon = None
    skipped = jobs[started:]
    forget(skipped)
    results.extend(
        Result(j.client_id, j.operation, "not-attempted", "not attempted") for j in skipped
    )
    results.sort(key=lambda r: r.client_id)
    return Report(tuple(results), stop.reason)
