"""The one retry policy of the HTTP adapters.

The rule: never repeat a request the server may have executed, unless repeating it is
harmless. An answer that says the server did not act (``unprocessed``: 429 everywhere,
503 where the server documents it so) lets every method but POST be repeated; an answer
or a lost connection after which the server may have acted (``maybe_executed``) lets
only the ``repeatable`` methods be repeated, those whose repetition the adapter can
tell apart or that are harmless. POSTs are never repeated by urllib3: the adapters
decide (a create reads back first; a token request or a secret rotation is harmless).

``RetryPolicy.urllib3`` gives the ``urllib3.Retry`` that applies the rule inside one
request (with the request's deadline: ``BudgetRetry``); ``RetryPolicy.delay`` is the
backoff of the loops the adapters run themselves.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Final

from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from oauth2_sync.records import NamedTuple
from oauth2_sync.registry import transport

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse

# The name users see at -v for retry notices since they were told from transport.py.
logger = logging.getLogger(transport.__name__)

MAX_RETRY_AFTER: Final = 300.0
"""A longer ``Retry-After`` is cut to this many seconds."""


class RetryPolicy(NamedTuple):
    """When a request may be sent again, and how long to wait before it."""

    retries: int
    unprocessed: frozenset[int]
    """Statuses that say the server did not act: every method but POST may repeat."""
    maybe_executed: frozenset[int]
    """Statuses after which the server may have acted: only ``repeatable`` methods."""
    repeatable: frozenset[str]
    """Methods that may be repeated after an answer in ``maybe_executed`` or a lost
    response (a read error)."""
    retry_after: frozenset[int] = frozenset()
    """Statuses repeated (``repeatable`` methods) only when they carry ``Retry-After``."""
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.5
    other: int | None = 0
    """Attempts after errors urllib3 counts neither as connect nor read errors
    (``None``: bounded by ``retries`` only)."""

    def may_repeat(self, method: str, status: int, has_retry_after: bool = False) -> bool:
        """Whether a request answered with ``status`` may be sent again."""
        if status in self.unprocessed:
            return method != "POST"
        if method not in self.repeatable:
            return False
        return status in self.maybe_executed or (has_retry_after and status in self.retry_after)

    @property
    def statuses(self) -> frozenset[int]:
        """Every status after which some request is repeated."""
        return self.unprocessed | self.maybe_executed

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1``: exponential with jitter, or
        the server's ``Retry-After`` (at most ``MAX_RETRY_AFTER``)."""
        if retry_after is not None:
            return retry_after
        delay = min(self.backoff_max, self.backoff_factor * float(2**attempt))
        return delay * random.uniform(0.5, 1.5)  # jitter, not cryptography

    def urllib3(self) -> PolicyRetry:
        """The ``urllib3.Retry`` that applies this policy within one request."""
        retries = self.retries
        return PolicyRetry(
            total=retries, connect=retries, read=retries, status=retries, other=self.other,
            redirect=0, status_forcelist=self.statuses, allowed_methods=self.repeatable,
            backoff_factor=self.backoff_factor, backoff_max=self.backoff_max,
            backoff_jitter=self.jitter, respect_retry_after_header=True,
            raise_on_status=False, policy=self,
        )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (at most ``MAX_RETRY_AFTER``), or
    ``None`` when it is absent or not understood (then back off normally)."""
    if not value:
        return None
    try:
        seconds = Retry().parse_retry_after(value)
    except Exception:  # urllib3 raises InvalidHeader on junk
        return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


class PolicyRetry(Retry):
    """urllib3's ``Retry`` deciding by a ``RetryPolicy``, within the request's deadline,
    brief on refused connections, and telling our logger (at ``-v``) rather than
    urllib3's warnings what it retries."""

    def __init__(self, *args: object, policy: RetryPolicy, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.policy = policy

    def new(self, **kw: object) -> Self:
        """A copy with ``kw`` changed (urllib3 copies a ``Retry`` at every attempt)."""
        kw.setdefault("policy", self.policy)
        return super().new(**kw)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        """Whether the answer may be retried: the policy says (a ``Retry-After`` alone
        only while retries are left, as urllib3 has it)."""
        if status_code in self.policy.statuses:
            return self.policy.may_repeat(method, status_code)
        return bool(self.total) and self.policy.may_repeat(method, status_code, has_retry_after)

    def increment(  # type: ignore[override]
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Retry:
        """The next ``Retry``, or ``MaxRetryError`` once the deadline leaves no time."""
        deadline = transport.current_deadline()
        if deadline is not None and deadline.passed():
            raise MaxRetryError(_pool, url or "", error) from error  # type: ignore[arg-type]
        if (
            error is not None and transport.is_refused(error)
            and len(self.history) + 1 >= transport.REFUSED_ATTEMPTS
        ):
            raise MaxRetryError(_pool, url or "", error) from error  # type: ignore[arg-type]
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        wait = new.get_backoff_time()
        if response is not None:
            wait = new.get_retry_after(response) or wait
        if deadline is not None and wait >= deadline.remaining():
            raise MaxRetryError(_pool, url or "", error) from error  # type: ignore[arg-type]
        what = f"{response.status}" if response is not None else transport.describe(error)
        logger.info("%s %s: %s; retrying (attempt %d)", method, (url or "").split("?", 1)[0],
                    what, len(new.history) + 1)
        return new
