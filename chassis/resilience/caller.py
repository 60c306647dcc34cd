"""ResilientCaller: the one path every outbound call takes (bulkhead, breaker, deadline, retries, fallback)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

from chassis.callcontext import outbound_timeout
from chassis.errors import CircuitOpen, DeadlineExceeded, ServiceError
from chassis.resilience.breaker import BreakerBoard
from chassis.resilience.bulkhead import Bulkhead
from chassis.resilience.policy import MethodPolicy, PolicyBook, TargetPolicy
from chassis.resilience.retry import RetryBudget, full_jitter_backoff

logger = logging.getLogger(__name__)

T = TypeVar("T")
Attempt = Callable[[float], Awaitable[T]]
"""One try of the call, given the seconds it may take."""


def status_code(exc: BaseException) -> grpc.StatusCode | None:
    """The gRPC code of a failed call, when it has one."""
    if isinstance(exc, ServiceError):
        return exc.code
    code = getattr(exc, "code", None)
    if callable(code):
        result = code()
        return result if isinstance(result, grpc.StatusCode) else None
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    if isinstance(exc, OSError | ConnectionError):
        return grpc.StatusCode.UNAVAILABLE
    return None


@dataclass
class CallOutcome:
    """Counters of what the caller did, per target: for status endpoints, metrics and the fault demo."""

    calls: int = 0
    succeeded: int = 0
    failed: int = 0
    retries: int = 0
    fallbacks: int = 0
    short_circuited: int = 0
    budget_exhausted: int = 0
    last_errors: list[str] = field(default_factory=list)


class ResilientCaller:
    """Applies a target's policies to calls: bulkhead -> breaker -> attempt (with deadline) -> retry -> fallback."""

    def __init__(self, policies: PolicyBook | None = None, breakers: BreakerBoard | None = None,
                 budget: RetryBudget | None = None) -> None:
        self.policies = policies or PolicyBook()
        self.breakers = breakers or BreakerBoard()
        self.budget = budget or RetryBudget()
        self._bulkheads: dict[str, Bulkhead] = {}
        self.outcomes: dict[str, CallOutcome] = {}

    def bulkhead(self, target: str, limit: int) -> Bulkhead:
        """The target's bulkhead (created on first use)."""
        if target not in self._bulkheads:
            self._bulkheads[target] = Bulkhead(target, limit)
        return self._bulkheads[target]

    async def call(self, target: str, attempt: Attempt[T], *, method: MethodPolicy | None = None,
                   target_policy: TargetPolicy | None = None,
                   fallback: Callable[[BaseException], Awaitable[T]] | None = None) -> T:
        """Run `attempt` under the target's policies; the deadline is the policy's, shortened to the caller's."""
        limits = target_policy or self.policies.target(target)
        policy = method or limits.default
        outcome = self.outcomes.setdefault(target, CallOutcome())
        outcome.calls += 1
        deadline = time.monotonic() + outbound_timeout(policy.timeout)
        self.budget.record_request()
        attempt_number = 0
        while True:
            attempt_number += 1
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise DeadlineExceeded(f"deadline exceeded before calling {target}")
                async with self.bulkhead(target, limits.max_concurrent).slot(), self.breakers.guard(
                        target, threshold=limits.failure_threshold, recovery=limits.recovery_timeout):
                    result = await attempt(remaining)
                outcome.succeeded += 1
                return result
            except CircuitOpen as exc:
                outcome.short_circuited += 1
                if fallback is not None:
                    outcome.fallbacks += 1
                    return await fallback(exc)
                outcome.failed += 1
                raise
            except Exception as exc:
                code = status_code(exc)
                outcome.last_errors = [*outcome.last_errors[-9:], f"{code.name if code else type(exc).__name__}"]
                retryable = (policy.idempotent and code in policy.retry.codes
                             and attempt_number < policy.attempts)
                if retryable:
                    wait = full_jitter_backoff(attempt_number, policy.retry)
                    if time.monotonic() + wait >= deadline:
                        retryable = False
                    elif not self.budget.try_spend():
                        outcome.budget_exhausted += 1
                        retryable = False
                    else:
                        outcome.retries += 1
                        logger.info("retrying", extra={"target": target, "attempt": attempt_number + 1,
                                                       "code": code.name if code else "", "backoff_s": round(wait, 3)})
                        await asyncio.sleep(wait)
                        continue
                outcome.failed += 1
                raise
