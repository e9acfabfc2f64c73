"""Apply a plan: safety limits, then the writes, with bounded parallelism.

Every write is conditional on the version the plan read (``If-Match``): a client
changed since the plan is refused by the registry and left as it is, and the others
proceed. One failure does not stop the others; each client gets one ``Result``.

A create is never repeated blindly. When the registry answers 409 (or the response is
lost), the client is read back: if it now matches the desired state the create
happened and only its response was lost, and the result says that its secret may not
have reached the sink (``rotate-secret`` recovers it). A rerun converges either way.

Two applies racing each other: the second create of a client meets 409 and the second
update meets 412; both read the client back and say what the other writer did (who,
when). With a ``Journal``, every create (and every rotation) is noted before it is sent
and crossed off once its secret is in the sink, so a process killed in between leaves a
trace; a create the registry answers with 409 is crossed off too, since this run created
nothing and the other writer got the secret (the result line says so).

Stopping, as Terraform does on an interrupt (``parallel.run_jobs``): writes are handed
to the thread pool one at a time, never more than ``parallelism`` in flight, and a
``Stop`` (set by a signal handler, or by the circuit breaker when the registry is
unavailable) is checked before each. Once it is set no new write starts, the ones in
flight finish, and every client never started gets a result of status ``not-attempted``
(a create among them is crossed off the journal: nothing was sent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from functools import partial

from oauth2_sync.errors import (
    ConflictError,
    NotFoundError,
    Oauth2SyncError,
    PreconditionFailedError,
    RegistryError,
    RegistryUnavailableError,
    SafetyLimitError,
    SecretSinkError,
    UsageError,
)
from oauth2_sync.journal import Journal
from oauth2_sync.parallel import Job, run_jobs
from oauth2_sync.plan import Change, Plan, safety_violations
from oauth2_sync.plandata import secret_creates
from oauth2_sync.registry.base import Registry, RemoteClient
from oauth2_sync.results import (
    OK_STATUSES,
    Operation,
    Report,
    Result,
    Status,
    Stop,
    StopReason,
)
from oauth2_sync.safetext import escape
from oauth2_sync.secret import Secret
from oauth2_sync.settings import Safety
from oauth2_sync.sink import Sink

__all__ = [
    "DEFAULT_PARALLELISM", "OK_STATUSES", "Operation", "Report", "Result", "Status", "Stop",
    "StopReason", "apply_plan", "check_preconditions", "check_safety", "check_sink",
    "rotate_secrets", "secret_creates",
]
"""The results' vocabulary lives in ``results``; it is re-exported here, where apply's
callers have always found it."""

logger = logging.getLogger(__name__)

DEFAULT_PARALLELISM = 4


def check_safety(plan: Plan, safety: Safety, *, allow_unsafe: bool = False) -> None:
    """Raise ``SafetyLimitError`` naming every limit the plan exceeds (unless allowed)."""
    found = safety_violations(plan, safety)
    if not found:
        return
    if allow_unsafe:
        logger.warning("safety limits exceeded, allowed by --allow-unsafe: %s",
                       "; ".join(map(str, found)))
        return
    raise SafetyLimitError(
        "the plan exceeds the safety limits: " + "; ".join(map(str, found))
        + ". Raise the limit in the settings, or pass --allow-unsafe for this run"
    )


def check_preconditions(plan: Plan, registry: Registry, sink: Sink | None) -> None:
    """Refuse, before any write, a plan for another registry, creates without a sink, or
    creates for a sink that cannot work (``Sink.preflight``, ``Sink.check_id``), or a
    credential that cannot write (``Registry.check_can_write``)."""
    if plan.registry != registry.url:
        raise UsageError(
            f"the plan was made against {plan.registry}, but the settings point at "
            f"{registry.url}"
        )
    secrets = secret_creates(plan)
    creates = len(secrets)
    if creates and sink is None:
        raise UsageError(
            f"the plan creates {creates} client{'' if creates == 1 else 's'} but no secret "
            "sink is configured (settings: secrets.directory or secrets.command); "
            "refusing to create clients whose secrets would be lost"
        )
    if creates and sink is not None:
        check_sink(sink, secrets)
    summary = plan.summary
    if summary.create or summary.update or summary.delete:
        # A read-only credential fails here, once, rather than per client with 403.
        registry.check_can_write()


def check_sink(sink: Sink, client_ids: Collection[str]) -> None:
    """Refuse, before any write, a sink that cannot work or cannot take the secret of
    one of ``client_ids``: a secret is shown once, and must have somewhere to go."""
    try:
        sink.preflight()
        for client_id in client_ids:
            sink.check_id(client_id)
    except SecretSinkError as exc:
        raise UsageError(f"{exc}; nothing was changed") from exc


def apply_plan(
    plan: Plan,
    registry: Registry,
    sink: Sink | None,
    *,
    parallelism: int = DEFAULT_PARALLELISM,
    on_result: Callable[[Result], None] | None = None,
    journal: Journal | None = None,
    stop: Stop | None = None,
    on_stop: Callable[[StopReason, int], None] | None = None,
) -> Report:
    """Make every change of ``plan``; the caller has run the checks above.

    Writes run on ``parallelism`` threads; ``on_result`` is called on the calling
    thread as each client finishes (to stream its line). With a ``journal``, the
    clients to create are noted there before the first write and crossed off as their
    secrets reach the sink. ``stop`` (see ``Stop``) ends the run early; ``on_stop`` is
    called once, on the calling thread, when the run notices it, with the reason and
    the number of writes still in flight.
    """
    if journal is not None:
        journal.record(secret_creates(plan))
    stop = stop if stop is not None else Stop()
    executor = _Executor(registry, sink, journal, stop)
    jobs = [Job(c.client_id, c.action, partial(executor.apply, c)) for c in plan.changes]

    def forget(never_started: Sequence[Job]) -> None:
        if journal is not None:
            journal.clear(j.client_id for j in never_started if j.operation == "create")

    return run_jobs(jobs, parallelism, on_result, stop=stop, on_stop=on_stop, forget=forget)


def rotate_secrets(
    registry: Registry,
    sink: Sink,
    client_ids: Sequence[str],
    managed_partners: Collection[str],
    *,
    parallelism: int = DEFAULT_PARALLELISM,
    on_result: Callable[[Result], None] | None = None,
    journal: Journal | None = None,
    stop: Stop | None = None,
    on_stop: Callable[[StopReason, int], None] | None = None,
) -> Report:
    """Issue new secrets for ``client_ids`` (managed clients only) and deliver them.

    With a ``journal``, each rotation is noted (fsync) before it is asked for and
    crossed off once the new secret is in the sink: a process killed in between leaves
    the client pending, named by the next plan and apply. ``stop`` and ``on_stop`` as
    for ``apply_plan``.
    """
    stop = stop if stop is not None else Stop()
    executor = _Executor(registry, sink, journal, stop)
    jobs = [
        Job(client_id, "rotate-secret", partial(executor.rotate, client_id, managed_partners))
        for client_id in dict.fromkeys(client_ids)
    ]
    return run_jobs(
        jobs, parallelism, on_result, stop=stop, on_stop=on_stop, forget=lambda _jobs: None
    )


class _Executor:
    """The per-client operations; each returns a ``Result`` and never raises."""

    def __init__(
        self,
        registry: Registry,
        sink: Sink | None,
        journal: Journal | None = None,
        stop: Stop | None = None,
    ) -> None:
        self.registry = registry
        self.sink = sink
        self.journal = journal
        self.stop = stop

    def apply(self, change: Change) -> Result:
        try:
            if change.action == "create":
                return self._create(change)
            if change.action == "update":
                return self._update(change)
            return self._delete(change)
        except Oauth2SyncError as exc:
            return self._failed(change.client_id, change.action, exc)
        except Exception as exc:  # one client's surprise must not stop the others
            logger.debug("unexpected error on %s", change.client_id, exc_info=True)
            return Result(
                change.client_id, change.action, "failed",
                f"failed: unexpected {type(exc).__name__} (run with -vv for details)",
            )

    def _create(self, change: Change) -> Result:
        desired = change.after
        assert desired is not None
        try:
            created, secret = self.registry.create_client(desired)
        except ConflictError as exc:
            return self._after_uncertain_create(change, exc)
        except RegistryError as exc:
            if exc.status == 0 or exc.status >= 500:
                # The request may have reached the registry: look before anyone retries.
                return self._after_uncertain_create(change, exc)
            self._cross_off(change.client_id)  # refused: nothing was created
            raise
        if secret is None or desired.public:
            return Result.created_public(desired.client_id, created.registry_client_id)
        assert self.sink is not None, "check_preconditions refuses creates without a sink"
        try:
            # The registry's client_id too: a standard OAuth server picks its own.
            self.sink.deliver_created(
                desired.client_id, secret, created.registry_client_id, created.created_at
            )
        except Oauth2SyncError as exc:
            if self.journal is not None:
                self.journal.undelivered([change.client_id])
            return Result(
                change.client_id, "create", "created-undelivered",
                f"created, but its secret was not delivered ({exc}); "
                f"run `oauth2-sync rotate-secret {escape(change.client_id)}` to issue a new one",
            )
        self._cross_off(change.client_id)
        logger.debug("created %s", change.client_id)
        return Result(
            change.client_id, "create", "created",
            f"created (secret delivered to {self.sink.description})",
        )

    def _after_uncertain_create(self, change: Change, error: RegistryError) -> Result:
        desired = change.after
        assert desired is not None
        current = self.registry.get_client(desired.client_id)
        if current is not None and current.client == desired and desired.public:
            return Result.created_public(desired.client_id, current.registry_client_id)
        if current is not None and current.client == desired:
            if type(error) is ConflictError:
                # 409: the client existed when our create arrived, so another writer
                # (another apply, say) made it since the plan, and got its secret. This
                # run lost none: crossed off, so that no plan blames a stopped apply
                # (and nobody revokes the secret the other writer delivered).
                self._cross_off(change.client_id)
                return Result(
                    change.client_id, "create", "created-response-lost",
                    f"already created {_by(current)}, since the plan (the registry "
                    "answered 409); it matches the file, and its secret went to whoever "
                    "created it: unless that was an apply delivering to this sink, run "
                    f"`oauth2-sync rotate-secret {escape(change.client_id)}`",
                )
            return Result(
                change.client_id, "create", "created-response-lost",
                "created (response was lost); its secret may not have reached the sink: "
                f"run `oauth2-sync rotate-secret {escape(change.client_id)}`",
            )
        self._cross_off(change.client_id)  # not ours, or not created at all
        if current is not None:
            return Result(
                change.client_id, "create", "failed",
                "failed: the client already exists in the registry and differs from the file "
                "(created outside this plan?); run plan again",
            )
        return self._failed(change.client_id, "create", error)

    def _update(self, change: Change) -> Result:
        desired = change.after
        assert desired is not None
        try:
            self.registry.replace_client(desired, change.version)
        except PreconditionFailedError:
            current = self.registry.get_client(change.client_id)
            if current is not None and current.client == desired:
                return Result(
                    change.client_id, "update", "already-updated",
                    f"already as planned: updated {_by(current)} (version "
                    f"{escape(current.version)}), since the plan; nothing to do",
                )
            return self._stale(change)
        except NotFoundError:
            return Result(
                change.client_id, "update", "failed",
                "failed: the client no longer exists in the registry; run plan again",
            )
        fields = ", ".join(f.field for f in change.fields)
        logger.debug("updated %s", change.client_id)
        if change.before is not None and change.before.public and not desired.public:
            # No secret of it reached the sink while it was public, and the registry may
            # still hold the one it had before (or one it issued anyway): issue a new one.
            return Result(
                change.client_id, "update", "updated",
                f"updated ({fields}); it is confidential again and nobody holds a current "
                f"secret: run `oauth2-sync rotate-secret {escape(change.client_id)}`",
            )
        return Result(change.client_id, "update", "updated", f"updated ({fields})")

    def _delete(self, change: Change) -> Result:
        try:
            self.registry.delete_client(change.client_id, change.version)
        except PreconditionFailedError:
            return self._stale(change)
        except NotFoundError:
            return Result(change.client_id, "delete", "already-deleted", "already deleted")
        logger.debug("deleted %s", change.client_id)
        return Result(change.client_id, "delete", "deleted", "deleted")

    def rotate(self, client_id: str, managed_partners: Collection[str]) -> Result:
        try:
            current = self.registry.get_client(client_id)
            if current is None:
                return Result(client_id, "rotate-secret", "failed",
                              "failed: no such client in the registry")
            if current.client.partner not in managed_partners:
                return Result(
                    client_id, "rotate-secret", "failed",
                    f"refused: partner {escape(current.client.partner)} is outside the "
                    "managed scope",
                )
            assert self.sink is not None
            # Before the old secret is revoked: a sink that cannot take this client's
            # secret must not cost it a working one.
            self.sink.check_id(client_id)
            if self.journal is not None:
                self.journal.record([client_id], "rotate")
            secret = self._rotate(client_id)
        except Oauth2SyncError as exc:
            return self._failed(client_id, "rotate-secret", exc)
        try:
            self.sink.deliver_created(
                client_id, secret, current.registry_client_id, current.created_at
            )
        except Oauth2SyncError as exc:
            if self.journal is not None:
                self.journal.undelivered([client_id])
            return Result(
                client_id, "rotate-secret", "failed",
                f"secret rotated, but the new one was not delivered ({exc}); the old one "
                "no longer works: rotate again once the sink works",
            )
        self._cross_off(client_id)
        return Result(
            client_id, "rotate-secret", "rotated",
            f"new secret delivered to {self.sink.description}",
        )

    def _rotate(self, client_id: str) -> Secret:
        try:
            return self.registry.rotate_secret(client_id)
        except RegistryError as exc:
            if 400 <= exc.status < 500:
                self._cross_off(client_id)  # refused: the old secret still works
            raise

    def _cross_off(self, client_id: str) -> None:
        if self.journal is not None:
            self.journal.clear([client_id])

    @staticmethod
    def _stale(change: Change) -> Result:
        return Result(
            change.client_id, change.action, "stale",
            f"refused: changed in the registry since the plan (version {change.version} "
            "no longer current); left untouched, run plan again",
        )

    def _failed(self, client_id: str, operation: Operation, exc: Oauth2SyncError) -> Result:
        if isinstance(exc, RegistryUnavailableError) and self.stop is not None:
            # The circuit breaker: the next writes would only wait out the same outage.
            self.stop.request("registry-unavailable")
        return Result(client_id, operation, "failed", f"failed: {exc}")


def _by(current: RemoteClient) -> str:
    """``by oauth2-sync-ci at 2026-01-05T09:12:44Z``, as far as the registry tells."""
    who = f" by {escape(current.updated_by)}" if current.updated_by else ""
    when = f" at {escape(current.updated_at)}" if current.updated_at else ""
    return f"{who}{when}".strip() or "by another writer"

