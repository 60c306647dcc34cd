"""Stored rows and per-integration connection state as contract messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import duration_pb2

from chassis.protos import timestamp, to_struct
from chassis.resilience import CallOutcome, TokenBucket
from protomesh.common.v1 import service_info_pb2
from protomesh.integration.v1 import integration_pb2
from services.integration.cache import TtlCache
from services.integration.clients.base import Step
from services.integration.connections import ProbeResult
from services.integration.kinds import SPECS
from services.integration.policy import IntegrationPolicy
from services.integration.rows import IntegrationRow

SERVING = service_info_pb2.HEALTH_STATE_SERVING
NOT_SERVING = service_info_pb2.HEALTH_STATE_NOT_SERVING


def duration(seconds: float) -> duration_pb2.Duration:
    """A Duration of (fractional) seconds."""
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def probe_summary(row: IntegrationRow) -> integration_pb2.ProbeSummary | None:
    """The stored last probe, if any."""
    if row.probed_at is None:
        return None
    return integration_pb2.ProbeSummary(
        state=SERVING if row.probe_ok else NOT_SERVING, detail=row.probe_detail or "",
        latency=duration((row.probe_latency_ms or 0) / 1000), check_time=timestamp(row.probed_at),
        probe=row.probe_kind or "")


def integration_message(row: IntegrationRow) -> integration_pb2.Integration:
    """The contract's Integration: never any credential, only whether there are some and their names."""
    return integration_pb2.Integration(
        integration_id=str(row.id), name=row.name, kind=SPECS[row.kind].kind, description=row.description,
        config=to_struct(row.config), has_credentials=row.sealed is not None,
        credential_keys=sorted(row.credential_keys), enabled=row.enabled, labels=row.labels,
        last_probe=probe_summary(row), version=row.version, create_time=timestamp(row.created_at),
        update_time=timestamp(row.updated_at), organization_id=row.organization_id)


def step_message(step: Step) -> integration_pb2.ProbeStep:
    """One test step."""
    return integration_pb2.ProbeStep(name=step.name, ok=step.ok, detail=step.detail, latency=duration(step.seconds))


def probe_message(result: ProbeResult, probe: str) -> integration_pb2.ProbeSummary:
    """A probe's outcome as it is stored."""
    return integration_pb2.ProbeSummary(state=SERVING if result.ok else NOT_SERVING, detail=result.detail,
                                        latency=duration(result.seconds), check_time=timestamp(datetime.now(UTC)),
                                        probe=probe)


def bucket_message(key: str, bucket: TokenBucket | None, policy: IntegrationPolicy,
                   unlimited_admitted: int = 0) -> integration_pb2.TokenBucketStatus:
    """A token bucket; rate 0 means no limit."""
    if bucket is None:
        return integration_pb2.TokenBucketStatus(key=key, admitted=unlimited_admitted)
    snap = bucket.snapshot()
    return integration_pb2.TokenBucketStatus(key=key, rate=snap["rate"], burst=snap["burst"],
                                             available=snap["available"], admitted=int(snap["admitted"]),
                                             rejected=int(snap["rejected"]))


def counters_message(outcome: CallOutcome) -> integration_pb2.CallCounters:
    """The resilient caller's counters."""
    return integration_pb2.CallCounters(
        calls=outcome.calls, succeeded=outcome.succeeded, failed=outcome.failed, retries=outcome.retries,
        fallbacks=outcome.fallbacks, short_circuited=outcome.short_circuited,
        budget_exhausted=outcome.budget_exhausted, last_errors=outcome.last_errors)


def cache_message(cache: TtlCache | None, policy: IntegrationPolicy) -> integration_pb2.CacheStats:
    """Cache statistics (all zero before the replica used the integration)."""
    stats: dict[str, Any] = cache.stats() if cache else {}
    return integration_pb2.CacheStats(
        enabled=policy.cache_enabled, ttl=duration(policy.cache_ttl), max_entries=policy.cache_max_entries,
        entries=stats.get("entries", 0), size_bytes=stats.get("size_bytes", 0), hits=stats.get("hits", 0),
        misses=stats.get("misses", 0), evictions=stats.get("evictions", 0),
        expirations=stats.get("expirations", 0), stale_served=stats.get("stale_served", 0),
        hit_ratio=stats.get("hit_ratio", 0.0))
