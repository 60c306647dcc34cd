"""Resilience for every outbound call: policies from the contracts, breakers, retries, bulkheads, rate limits.

`ResilientCaller` is the one place a call passes through: bulkhead -> breaker -> attempt with
deadline -> retry (idempotent methods, retryable codes, within the deadline and a retry budget)
-> fallback while the breaker is open. The discovery-aware client and the integration clients
both use it, so gRPC calls and calls to external systems behave the same way.
"""

from chassis.resilience.breaker import BreakerBoard, NatsKvBreakerStore
from chassis.resilience.bulkhead import Bulkhead
from chassis.resilience.caller import CallOutcome, ResilientCaller
from chassis.resilience.policy import MethodPolicy, PolicyBook, RetrySettings, TargetPolicy
from chassis.resilience.ratelimit import KeyedRateLimiter, TokenBucket
from chassis.resilience.retry import RetryBudget, full_jitter_backoff

__all__ = [
    "BreakerBoard",
    "Bulkhead",
    "CallOutcome",
    "KeyedRateLimiter",
    "MethodPolicy",
    "NatsKvBreakerStore",
    "PolicyBook",
    "ResilientCaller",
    "RetryBudget",
    "RetrySettings",
    "TargetPolicy",
    "TokenBucket",
    "full_jitter_backoff",
]
