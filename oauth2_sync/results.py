"""What an apply or a rotation did, and how it is asked to stop.

One ``Result`` per client (its ``Status`` in the vocabulary below), a ``Report`` of
them all with its closing lines, and the ``Stop`` a signal handler or the circuit
breaker sets. Plain data: ``apply`` produces it, the renderers and ``workflow`` read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from oauth2_sync.safetext import escape, printable

Operation = Literal["create", "update", "delete", "rotate-secret"]
Status = Literal[
    "created", "created-response-lost", "updated", "already-updated", "deleted",
    "already-deleted", "rotated", "stale", "failed", "not-attempted", "created-undelivered",
]
StopReason = Literal["SIGINT", "SIGTERM", "registry-unavailable"]
OK_STATUSES: frozenset[Status] = frozenset(
    {"created", "updated", "already-updated", "deleted", "already-deleted", "rotated"}
)


@dataclass(frozen=True, slots=True)
class Result:
    """What happened to one client. ``message`` is one line, free of secrets."""

    client_id: str
    operation: Operation
    status: Status
    message: str

    @property
    def ok(self) -> bool:
        """Whether the client is now as planned and nothing needs attention."""
        return self.status in OK_STATUSES

    @classmethod
    def created_public(cls, client_id: str, registry_client_id: str | None) -> Result:
        """A public client created: no secret issued to anyone, nothing for the sink. The
        registry's own client ID is named where it picked one; the app needs it."""
        named = f"; the registry's client_id is {registry_client_id}" if registry_client_id else ""
        return cls(client_id, "create", "created", f"created (public client: no secret{named})")

    def line(self) -> str:
        """``acme-x: created (secret written to directory .secrets)``, escaped."""
        return f"{escape(self.client_id)}: {printable(self.message)}"


@dataclass(frozen=True, slots=True)
class Report:
    """Every result of one run, sorted by client ID; ``stopped`` says why the run stopped
    scheduling writes early (then the clients never started are ``not-attempted``)."""

    results: tuple[Result, ...]
    stopped: StopReason | None = None

    @property
    def not_attempted(self) -> tuple[str, ...]:
        """The clients never started, sorted."""
        return tuple(r.client_id for r in self.results if r.status == "not-attempted")

    @property
    def ok(self) -> bool:
        """True when every client succeeded."""
        return all(r.ok for r in self.results)

    def count(self, *statuses: Status) -> int:
        """How many results have one of ``statuses``."""
        return sum(1 for r in self.results if r.status in statuses)

    def summary(self) -> str:
        """One closing line: ``Apply complete: 3 created, 1 updated, 0 deleted.``"""
        done = (
            f"{self.count('created', 'created-response-lost', 'created-undelivered')} created, "
            f"{self.count('updated')} updated, "
            f"{self.count('deleted', 'already-deleted')} deleted"
        )
        others = self.count("already-updated")
        if others:
            done += f"; {others} already updated by another writer"
        stale, failed = self.count("stale"), self.count("failed")
        if self.ok:
            return f"Apply complete: {done}."
        problems = []
        if stale:
            problems.append(f"{stale} refused (changed since the plan)")
        if failed:
            problems.append(f"{failed} failed")
        lost = self.count("created-response-lost")
        if lost:
            problems.append(f"{lost} created without a confirmed secret")
        undelivered = self.count("created-undelivered")
        if undelivered:
            problems.append(f"{undelivered} without a delivered secret")
        skipped = self.count("not-attempted")
        if skipped:
            problems.append(f"{skipped} not attempted")
        how = {
            None: "finished with problems", "registry-unavailable": "stopped",
        }.get(self.stopped, "interrupted")
        return f"Apply {how}: {done}; {', '.join(problems)}."

    def rotation_summary(self) -> str:
        """One closing line for ``rotate-secret``: ``Rotated 2 secrets; 1 failed.``"""
        rotated, failed = self.count("rotated"), self.count("failed")
        text = f"Rotated {rotated} secret{'' if rotated == 1 else 's'}"
        problems = [f"{failed} failed"] if failed else []
        skipped = self.count("not-attempted")
        if skipped:
            problems.append(f"{skipped} not attempted")
        return f"{text}; {', '.join(problems)}." if problems else f"{text}."


class Stop:
    """A request to start no new write: from a signal handler or the circuit breaker.

    ``request`` only assigns an attribute (no lock), so a signal handler may call it at
    any moment. ``abandon`` is for a second interrupt, just before the process exits at
    once: it crosses the creates never started off the journal (see ``parallel.run_jobs``).
    """

    def __init__(self) -> None:
        self.reason: StopReason | None = None
        self.in_flight = 0
        """Writes started and not finished (kept by the running apply)."""
        self._abandon: Callable[[], None] | None = None

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self.reason is not None

    def request(self, reason: StopReason) -> None:
        """Ask the running apply to start no new write; the first reason is kept."""
        if self.reason is None:
            self.reason = reason

    def abandon(self) -> None:
        """Leave the journal true before an immediate exit (a second interrupt)."""
        forget = self._abandon
        if forget is not None:
            forget()
