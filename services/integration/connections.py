"""What a replica keeps per integration: its client, token buckets and cache, and the way every call
goes: per-client limit -> cache -> integration limit -> ResilientCaller (bulkhead, breaker, deadline,
retries, cached fallback while the breaker is open).

State is rebuilt when the stored integration's version changes (an update on any replica), keeping
counters whose settings did not change.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chassis.crypto import Cipher
from chassis.errors import DeadlineExceeded, ResourceExhausted, Violations
from chassis.resilience import CallOutcome, ResilientCaller, TokenBucket
from services.integration.cache import TtlCache, cache_key
from services.integration.clients.base import (
    ClientSpec,
    ExternalClient,
    Shared,
    Step,
    Steps,
    describe,
    scrub,
    scrub_value,
)
from services.integration.kinds import SPECS
from services.integration.policy import IntegrationPolicy, parse_policy
from services.integration.rows import IntegrationRow

logger = logging.getLogger(__name__)

WRITES_CLEAR_CACHE = {"local_storage": {"put", "delete"}, "s3": {"put", "delete"}}
"""Writes through these kinds change what the cached reads would return, so they empty the cache."""


def target_name(integration_id: uuid.UUID | str) -> str:
    """The resilient caller's target (breaker, bulkhead, counters) of an integration."""
    return f"integration/{integration_id}"


def policy_of(config: Mapping[str, Any]) -> IntegrationPolicy:
    """The policy of a stored (already validated) config."""
    return parse_policy(Violations(), dict(config))


@dataclass
class Live:
    """A replica's state for one integration."""

    version: int
    spec: ClientSpec
    policy: IntegrationPolicy
    client: ExternalClient
    cache: TtlCache
    bucket: TokenBucket | None
    """None when the integration has no rate limit (requests_per_second 0)."""
    unlimited_admitted: int = 0
    clients: OrderedDict[str, TokenBucket] = field(default_factory=OrderedDict)


@dataclass(frozen=True)
class InvokeResult:
    """The result of one invocation and how it was obtained."""

    value: dict[str, Any]
    from_cache: bool
    stale: bool
    attempts: int
    seconds: float


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of a health check or test."""

    ok: bool
    detail: str
    seconds: float
    steps: list[Step] = field(default_factory=list)


class IntegrationConnections:
    """Clients, limits and caches of every integration this replica has used."""

    def __init__(self, caller: ResilientCaller, cipher: Cipher, shared: Shared, *,
                 probe_timeout: float, max_client_keys: int) -> None:
        self.caller = caller
        self.cipher = cipher
        self.shared = shared
        self.probe_timeout = probe_timeout
        self.max_client_keys = max_client_keys
        self._live: dict[uuid.UUID, Live] = {}
        self._lock = asyncio.Lock()

    # --- state ----------------------------------------------------------------------------------

    def make_client(self, spec: ClientSpec, name: str, config: dict[str, Any],
                    credentials: Mapping[str, str]) -> ExternalClient:
        """A client for a connection (registered or not)."""
        return spec.factory(name, config, credentials, self.shared)

    async def live(self, row: IntegrationRow) -> Live:
        """The integration's state, built on first use and rebuilt when its version changed."""
        current = self._live.get(row.id)
        if current is not None and current.version == row.version:
            return current
        async with self._lock:
            current = self._live.get(row.id)
            if current is not None and current.version >= row.version:
                return current
            spec = SPECS[row.kind]
            policy = policy_of(row.config)
            credentials = self.cipher.open(row.sealed, str(row.id), what="credentials")
            client = self.make_client(spec, row.name, row.config, credentials)
            del credentials
            cache = TtlCache(policy.cache_ttl, policy.cache_max_entries, policy.cache_stale_for)
            bucket = TokenBucket(policy.rate, policy.burst) if policy.rate > 0 else None
            live = Live(row.version, spec, policy, client, cache, bucket)
            if current is not None:
                await current.client.close()
                if current.policy.rate_key == policy.rate_key:
                    live.bucket, live.clients = current.bucket, current.clients
                    live.unlimited_admitted = current.unlimited_admitted
                # The old cache answered for the old settings (another URL, other credentials): counters stay.
                for name in ("hits", "misses", "evictions", "expirations", "stale_served"):
                    setattr(cache, name, getattr(current.cache, name))
                if current.policy.resilience_key != policy.resilience_key:
                    await self.caller.breakers.reset(target_name(row.id))
            self.caller.bulkhead(target_name(row.id), policy.max_concurrent).limit = policy.max_concurrent
            self._live[row.id] = live
            return live

    async def forget(self, integration_id: uuid.UUID) -> None:
        """Drop an integration's state (after deletion)."""
        async with self._lock:
            live = self._live.pop(integration_id, None)
        if live is not None:
            await live.client.close()
        self.caller.outcomes.pop(target_name(integration_id), None)

    async def close(self) -> None:
        """Close every client."""
        for live in list(self._live.values()):
            await live.client.close()
        self._live.clear()

    # --- calls ----------------------------------------------------------------------------------

    def _client_bucket(self, live: Live, key: str) -> TokenBucket:
        bucket = live.clients.get(key)
        if bucket is None:
            bucket = TokenBucket(live.policy.client_rate, live.policy.client_burst)
            live.clients[key] = bucket
            while len(live.clients) > self.max_client_keys:
                live.clients.popitem(last=False)
        live.clients.move_to_end(key)
        return bucket

    async def invoke(self, row: IntegrationRow, operation: str, params: dict[str, Any], *, client_key: str = "",
                     skip_cache: bool = False) -> InvokeResult:
        """One operation through the integration's limits, cache and resilience policies."""
        started = time.perf_counter()
        live = await self.live(row)
        policy, spec, client = live.policy, live.spec, live.client
        if policy.client_rate > 0:
            who = client_key or "anonymous"
            bucket = self._client_bucket(live, who)
            if not bucket.try_take():
                raise ResourceExhausted(
                    f"client {who!r} is over its rate limit for integration {row.name!r} "
                    f"({policy.client_rate:g}/s, burst {policy.client_burst:g}); retry in {bucket.retry_after():.2f}s",
                    metadata={"scope": "client", "retry_after_seconds": f"{bucket.retry_after():.3f}"})
        cacheable = policy.cache_enabled and spec.is_cacheable(operation, params)
        key = cache_key(operation, params) if cacheable else ""
        if cacheable and not skip_cache:
            hit = live.cache.lookup(key)
            if hit is not None:
                return InvokeResult(hit, True, False, 0, time.perf_counter() - started)
        if live.bucket is None:
            live.unlimited_admitted += 1
        elif not live.bucket.try_take():
            raise ResourceExhausted(
                f"integration {row.name!r} is over its rate limit ({policy.rate:g}/s, burst {policy.burst:g}); "
                f"retry in {live.bucket.retry_after():.2f}s",
                metadata={"scope": "integration", "retry_after_seconds": f"{live.bucket.retry_after():.3f}"})

        attempts = 0
        served_stale = False

        async def attempt(remaining: float) -> dict[str, Any]:
            nonlocal attempts
            attempts += 1
            budget = min(remaining, policy.attempt_timeout)
            try:
                return await asyncio.wait_for(client.invoke(operation, params, budget), timeout=budget)
            except TimeoutError:
                raise DeadlineExceeded(f"{row.name} did not answer within {budget:.2f}s") from None

        fallback = None
        if cacheable and live.cache.has_stale(key):
            async def fallback(exc: BaseException) -> dict[str, Any]:
                nonlocal served_stale
                value = live.cache.stale(key)
                if value is None:
                    raise exc
                served_stale = True
                return value

        value = await self.caller.call(target_name(row.id), attempt, method=policy.method(
            spec.is_idempotent(operation, params)), target_policy=policy.target(), fallback=fallback)
        if not served_stale:
            value = scrub_value(value, client.secrets)
            if cacheable:
                live.cache.put(key, value)
            if operation in WRITES_CLEAR_CACHE.get(row.kind, ()):
                live.cache.clear()
        return InvokeResult(value, served_stale, served_stale, attempts, time.perf_counter() - started)

    # --- probes ---------------------------------------------------------------------------------

    async def check(self, client: ExternalClient) -> ProbeResult:
        """A health check of a client's system, outside the breaker (it must see a recovery the breaker hides)."""
        started = time.perf_counter()
        try:
            detail = await asyncio.wait_for(client.health(self.probe_timeout), timeout=self.probe_timeout)
            ok = True
        except Exception as exc:  # whatever went wrong is the probe's finding, not an error of the call
            ok, detail = False, describe(exc)
        return ProbeResult(ok, scrub(detail, client.secrets)[:500], time.perf_counter() - started)

    async def exercise(self, client: ExternalClient) -> ProbeResult:
        """A step-by-step test of a client's system."""
        started = time.perf_counter()
        steps = Steps(client.secrets)
        timeout = 3 * self.probe_timeout
        try:
            await asyncio.wait_for(client.test(steps, timeout), timeout=timeout)
        except TimeoutError:
            steps.items.append(Step("finish", False, f"the test took longer than {timeout:g}s", timeout))
        failed = next((s for s in steps.items if not s.ok), None)
        detail = f"{failed.name}: {failed.detail}" if failed else f"{len(steps.items)} steps passed"
        return ProbeResult(failed is None and bool(steps.items), scrub(detail, client.secrets)[:500],
                           time.perf_counter() - started, steps.items)

    # --- reports --------------------------------------------------------------------------------

    def outcome(self, integration_id: uuid.UUID) -> CallOutcome:
        """The caller's counters for the integration."""
        return self.caller.outcomes.get(target_name(integration_id)) or CallOutcome()

    def in_flight(self, integration_id: uuid.UUID, policy: IntegrationPolicy) -> int:
        """Calls in flight now."""
        return self.caller.bulkhead(target_name(integration_id), policy.max_concurrent).in_flight

    async def breaker(self, integration_id: uuid.UUID) -> dict[str, Any]:
        """The breaker's state and its transitions."""
        name = target_name(integration_id)
        status = await self.caller.breakers.status(name)
        status["transitions"] = [t for t in self.caller.breakers.transitions if t.target == name][-50:]
        return status
