"""An integration's own policies, from the optional resilience, rate_limit and cache objects of its config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from chassis.errors import Violations
from chassis.resilience import MethodPolicy, RetrySettings, TargetPolicy
from services.integration.clients.base import flag, number, unknown_keys

RETRY_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                         grpc.StatusCode.DEADLINE_EXCEEDED})
"""Retried for idempotent operations: the system was down, throttling, or too slow for one attempt."""


@dataclass(frozen=True)
class IntegrationPolicy:
    """Resilience, rate limits and cache of one integration."""

    timeout: float = 10.0
    attempt_timeout: float = 5.0
    max_attempts: int = 3
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    failure_threshold: int = 5
    recovery_timeout: float = 10.0
    max_concurrent: int = 32
    rate: float = 50.0
    burst: float = 100.0
    client_rate: float = 0.0
    client_burst: float = 0.0
    cache_enabled: bool = True
    cache_ttl: float = 30.0
    cache_max_entries: int = 1000
    cache_stale_for: float = 300.0

    def target(self) -> TargetPolicy:
        """Breaker and bulkhead limits for the resilient caller."""
        return TargetPolicy(failure_threshold=self.failure_threshold, recovery_timeout=self.recovery_timeout,
                            max_concurrent=self.max_concurrent, default=self.method(False))

    def method(self, idempotent: bool) -> MethodPolicy:
        """Deadline of the whole call and its retries."""
        return MethodPolicy(timeout=self.timeout, idempotent=idempotent, retry=RetrySettings(
            max_attempts=self.max_attempts, codes=RETRY_CODES, initial_backoff=self.initial_backoff,
            max_backoff=self.max_backoff))

    @property
    def resilience_key(self) -> tuple[Any, ...]:
        """What the breaker and bulkhead depend on."""
        return (self.failure_threshold, self.recovery_timeout, self.max_concurrent)

    @property
    def rate_key(self) -> tuple[float, ...]:
        """What the token buckets depend on."""
        return (self.rate, self.burst, self.client_rate, self.client_burst)

    @property
    def cache_key(self) -> tuple[Any, ...]:
        """What the cache depends on."""
        return (self.cache_enabled, self.cache_ttl, self.cache_max_entries, self.cache_stale_for)


def _object(v: Violations, config: dict[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        v.add(f"config.{key}", "must be an object")
        return {}
    return value


def parse_policy(v: Violations, config: dict[str, Any]) -> IntegrationPolicy:
    """The policy in config, each bad field named (e.g. config.resilience.max_attempts)."""
    d = IntegrationPolicy()
    r, rl, c = _object(v, config, "resilience"), _object(v, config, "rate_limit"), _object(v, config, "cache")
    unknown_keys(v, r, ("timeout_seconds", "attempt_timeout_seconds", "max_attempts", "initial_backoff_seconds",
                        "max_backoff_seconds", "failure_threshold", "recovery_timeout_seconds", "max_concurrent"),
                 "config.resilience")
    unknown_keys(v, rl, ("requests_per_second", "burst", "per_client_requests_per_second", "per_client_burst"),
                 "config.rate_limit")
    unknown_keys(v, c, ("enabled", "ttl_seconds", "max_entries", "stale_seconds"), "config.cache")
    p = "config.resilience."
    timeout = number(v, r, "timeout_seconds", p + "timeout_seconds", low=0.05, high=120, default=d.timeout)
    rate = number(v, rl, "requests_per_second", "config.rate_limit.requests_per_second", low=0, high=100_000,
                  default=d.rate)
    client_rate = number(v, rl, "per_client_requests_per_second", "config.rate_limit.per_client_requests_per_second",
                         low=0, high=100_000, default=d.client_rate)
    return IntegrationPolicy(
        timeout=timeout,
        attempt_timeout=number(v, r, "attempt_timeout_seconds", p + "attempt_timeout_seconds", low=0.05, high=120,
                               default=min(d.attempt_timeout, timeout)),
        max_attempts=int(number(v, r, "max_attempts", p + "max_attempts", low=1, high=10, integer=True,
                                default=d.max_attempts)),
        initial_backoff=number(v, r, "initial_backoff_seconds", p + "initial_backoff_seconds", low=0, high=30,
                               default=d.initial_backoff),
        max_backoff=number(v, r, "max_backoff_seconds", p + "max_backoff_seconds", low=0, high=60,
                           default=d.max_backoff),
        failure_threshold=int(number(v, r, "failure_threshold", p + "failure_threshold", low=1, high=1000,
                                     integer=True, default=d.failure_threshold)),
        recovery_timeout=number(v, r, "recovery_timeout_seconds", p + "recovery_timeout_seconds", low=0.1,
                                high=3600, default=d.recovery_timeout),
        max_concurrent=int(number(v, r, "max_concurrent", p + "max_concurrent", low=1, high=10_000, integer=True,
                                  default=d.max_concurrent)),
        rate=rate,
        burst=number(v, rl, "burst", "config.rate_limit.burst", low=1, high=1_000_000,
                     default=max(d.burst if rate == d.rate else rate * 2, 1)),
        client_rate=client_rate,
        client_burst=number(v, rl, "per_client_burst", "config.rate_limit.per_client_burst", low=1, high=1_000_000,
                            default=max(client_rate * 2, 1)),
        cache_enabled=flag(v, c, "enabled", "config.cache.enabled", d.cache_enabled),
        cache_ttl=number(v, c, "ttl_seconds", "config.cache.ttl_seconds", low=0.01, high=86_400, default=d.cache_ttl),
        cache_max_entries=int(number(v, c, "max_entries", "config.cache.max_entries", low=1, high=100_000,
                                     integer=True, default=d.cache_max_entries)),
        cache_stale_for=number(v, c, "stale_seconds", "config.cache.stale_seconds", low=0, high=86_400,
                               default=d.cache_stale_for),
    )
