"""Prometheus metrics of every replica: calls, errors and latency per method, breakers, bulkheads,
outbox backlog, consumer lag, dead letters and pool usage, served on METRICS_PORT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

logger = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()
"""One registry per process (not the default one, so library collectors stay out unless wanted)."""

RPC_REQUESTS = Counter("protomesh_rpc_requests_total", "gRPC calls served, by method and status code.",
                       ["service", "method", "code"], registry=REGISTRY)
RPC_DURATION = Histogram("protomesh_rpc_duration_seconds", "Time to serve a gRPC call, by method.",
                         ["service", "method"], registry=REGISTRY,
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
BREAKER_STATE = Gauge("protomesh_breaker_state", "Circuit breaker state per target: 0 closed, 1 half-open, 2 open.",
                      ["service", "target"], registry=REGISTRY)
BULKHEAD_IN_FLIGHT = Gauge("protomesh_bulkhead_in_flight", "Outbound calls in flight per target.",
                           ["service", "target"], registry=REGISTRY)
BULKHEAD_REJECTED = Gauge("protomesh_bulkhead_rejected", "Outbound calls refused by a full bulkhead (cumulative).",
                          ["service", "target"], registry=REGISTRY)
OUTBOX_BACKLOG = Gauge("protomesh_outbox_backlog", "Committed events not yet published.", ["service"],
                       registry=REGISTRY)
CONSUMER_PENDING = Gauge("protomesh_consumer_pending", "Messages waiting for a consumer (lag).",
                         ["service", "consumer"], registry=REGISTRY)
DEAD_LETTERS = Gauge("protomesh_dead_letters", "Messages in the dead-letter stream.", ["service"],
                     registry=REGISTRY)
POOL_CONNECTIONS = Gauge("protomesh_db_pool_connections", "Database pool connections by state.",
                         ["service", "state"], registry=REGISTRY)
CACHE_LOOKUPS = Counter("protomesh_cache_lookups_total",
                        "Cached reads by outcome: hit, miss (absent or expired), stale (its scope changed), bypass "
                        "(generations unreadable). Hit ratio: hit / all.", ["service", "method", "result"],
                        registry=REGISTRY)
CACHE_NOT_MODIFIED = Counter("protomesh_cache_not_modified_total",
                             "Cached reads whose If-None-Match matched (answered 304 by the gateway).",
                             ["service", "method"], registry=REGISTRY)
CACHE_ENTRIES = Gauge("protomesh_cache_entries", "Answers the replica's cache holds.", ["service"], registry=REGISTRY)
CACHE_BYTES = Gauge("protomesh_cache_bytes", "Serialized bytes of the answers the replica's cache holds.",
                    ["service"], registry=REGISTRY)
CACHE_INVALIDATIONS = Counter("protomesh_cache_invalidations_total",
                              "Generation bumps by trigger (write: a call's events, before it answers; event: the "
                              "relay published an event) and outcome (ok, failed).",
                              ["service", "trigger", "outcome"], registry=REGISTRY)
UP = Gauge("protomesh_up", "1 while the replica serves, 0 while not serving.", ["service", "instance"],
           registry=REGISTRY)

_BREAKER_CODES = {"closed": 0, "half-opened": 1, "opened": 2}


def breaker_changed(service: str, target: str, state: str) -> None:
    """Record a breaker's new state."""
    BREAKER_STATE.labels(service, target).set(_BREAKER_CODES.get(state, 0))


def serve_metrics(port: int, host: str = "127.0.0.1") -> int:
    """Serve /metrics on host:port (0 picks a free port); return the port."""
    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    return int(server.server_port)


Sampler = Callable[[], Awaitable[None]]


class MetricsSampler:
    """Refreshes gauges that must be read asynchronously (database, NATS) every few seconds."""

    def __init__(self, interval: float = 5.0) -> None:
        self._interval = interval
        self._samplers: list[Sampler] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, sampler: Sampler) -> None:
        """Run `sampler` on every tick."""
        self._samplers.append(sampler)

    async def sample_now(self) -> None:
        """Run every sampler once; one failing does not stop the others."""
        for sampler in self._samplers:
            try:
                await sampler()
            except Exception as exc:  # a metric we cannot read now is simply not refreshed
                logger.debug("metric sampler failed", extra={"error": str(exc)})

    def start(self) -> None:
        """Sample in the background."""
        async def loop() -> None:
            while True:
                await self.sample_now()
                await asyncio.sleep(self._interval)

        self._task = asyncio.create_task(loop(), name="metrics-sampler")

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def pool_sampler(service: str, pool: Any) -> Sampler:
    """Pool size and idle/waiting connections."""
    async def sample() -> None:
        stats = pool.get_stats()
        POOL_CONNECTIONS.labels(service, "size").set(stats.get("pool_size", 0))
        POOL_CONNECTIONS.labels(service, "idle").set(stats.get("pool_available", 0))
        POOL_CONNECTIONS.labels(service, "waiting").set(stats.get("requests_waiting", 0))
    return sample


def caller_sampler(service: str, caller: Any) -> Sampler:
    """Bulkhead saturation per target of the replica's resilient caller."""
    async def sample() -> None:
        for target, bulkhead in list(caller._bulkheads.items()):
            BULKHEAD_IN_FLIGHT.labels(service, target).set(bulkhead.in_flight)
            BULKHEAD_REJECTED.labels(service, target).set(bulkhead.rejected)
    return sample


def events_sampler(service: str, events: Any) -> Sampler:
    """Outbox backlog, consumer lag and dead-letter depth, read from PostgreSQL and JetStream."""
    from chassis.events import subjects

    async def sample() -> None:
        if events.pool is not None:
            async with events.pool.connection() as conn:
                cur = await conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
                row = await cur.fetchone()
                OUTBOX_BACKLOG.labels(service).set(row[0] if row else 0)
        if events.nc is None:
            return
        js = events.nc.jetstream()
        for runner in events.consumer_runners:
            pending = 0
            for stream in runner.consumer.subjects_by_stream():
                info = await js.consumer_info(stream, runner.consumer.name)
                pending += (info.num_pending or 0) + (info.num_ack_pending or 0)
            CONSUMER_PENDING.labels(service, runner.consumer.name).set(pending)
        info = await js.stream_info(subjects.DEAD_LETTER_STREAM)
        DEAD_LETTERS.labels(service).set(info.state.messages)
    return sample
