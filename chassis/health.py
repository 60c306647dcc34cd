"""Health: the standard gRPC health service, driven by probes of the replica's dependencies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from google.protobuf import timestamp_pb2
from grpc_health.v1 import health, health_pb2

from chassis.errors import Unavailable
from protomesh.common.v1 import service_info_pb2

logger = logging.getLogger(__name__)

LIVENESS = "liveness"
"""Health service name that reports SERVING while the process runs, even with a dependency down."""

Probe = Callable[[], Awaitable[None]]
"""Raises when its dependency is unusable."""

DOWN_PROBE_INTERVAL = 0.1
"""Seconds between probes while a dependency is down, so its return is noticed at once (capped by the interval)."""


@dataclass
class DependencyStatus:
    """Last probe result of one dependency."""

    ok: bool = False
    detail: str = "not checked yet"
    checked_at: float = 0.0
    required: bool = True
    """Whether the replica stops serving while it is down; an optional dependency only degrades it."""


class HealthMonitor:
    """Probes dependencies periodically and keeps the gRPC health service in step.

    Every served gRPC service and the overall "" entry turn NOT_SERVING while a required dependency's probe
    fails, and for good once shutdown begins. An optional dependency that fails (NATS: the outbox keeps the
    events until it is back) leaves the replica serving, reported DEGRADED in the HealthReport, so a
    load balancer keeps routing to it. Probes run every `interval`, every DOWN_PROBE_INTERVAL while
    something is down, and at once when `poke()` says a call just met a failing dependency.
    """

    def __init__(self, service: str, instance_id: str, grpc_services: list[str], interval: float) -> None:
        self.servicer = health.aio.HealthServicer()
        self._service = service
        self._instance_id = instance_id
        self._names = ["", *grpc_services]
        self._interval = interval
        self._probes: dict[str, Probe] = {}
        self._status: dict[str, DependencyStatus] = {}
        self._started = False
        self._shutting_down = False
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.on_recovered: list[Callable[[str], Awaitable[None]]] = []
        self.on_failed: list[Callable[[str, str], Awaitable[None]]] = []
        """Called with (dependency, detail) when a probe fails after passing (or on its first run)."""

    def add_probe(self, name: str, probe: Probe, required: bool = True) -> None:
        """Watch a dependency, e.g. "postgres"; `required=False` when the replica serves without it."""
        self._probes[name] = probe
        self._status[name] = DependencyStatus(required=required)

    @property
    def serving(self) -> bool:
        """True when started, not shutting down, and every required dependency answered its last probe."""
        return (self._started and not self._shutting_down
                and all(s.ok for s in self._status.values() if s.required))

    @property
    def degraded(self) -> bool:
        """Serving, with an optional dependency down."""
        return self.serving and not all(s.ok for s in self._status.values())

    async def start(self) -> None:
        """Probe once, publish the status, then keep probing in the background."""
        self._started = True
        await self.check_now()
        self._task = asyncio.create_task(self._loop(), name="health-monitor")

    async def check_now(self) -> None:
        """Run every probe and publish the resulting status."""
        for name, probe in list(self._probes.items()):  # a probe may be added meanwhile (registry)
            status = self._status[name]
            was_ok, first = status.ok, status.checked_at == 0.0
            try:
                await asyncio.wait_for(probe(), timeout=max(self._interval, 2.0))
                status.ok, status.detail = True, ""
            except Exception as exc:  # any failure of a probe means the dependency is unusable
                status.ok, status.detail = False, f"{type(exc).__name__}: {exc}".strip()[:300]
            status.checked_at = time.time()
            if was_ok != status.ok:
                log = logger.info if status.ok else logger.warning
                log("dependency %s", "recovered" if status.ok else "failed",
                    extra={"dependency": name, "detail": status.detail})
                if status.ok:
                    for callback in self.on_recovered:
                        await callback(name)
            if not status.ok and (was_ok or first):
                for failed in self.on_failed:
                    await failed(name, status.detail)
        await self._publish()

    def poke(self) -> None:
        """Probe now instead of at the next interval (a call just met a dependency failing)."""
        self._wake.set()

    async def _loop(self) -> None:
        while not self._shutting_down:
            down = not all(s.ok for s in self._status.values())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(self._interval, DOWN_PROBE_INTERVAL) if down
                                       else self._interval)
            self._wake.clear()
            await self.check_now()

    async def _publish(self) -> None:
        state = health_pb2.HealthCheckResponse.SERVING if self.serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in self._names:
            await self.servicer.set(name, state)
        # Liveness probes ask for this name: alive while the process answers, whatever its dependencies.
        await self.servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)

    async def shutdown(self) -> None:
        """Report NOT_SERVING from now on and stop probing."""
        self._shutting_down = True
        if self._task:
            self._task.cancel()
        await self.servicer.enter_graceful_shutdown()

    def require_ready(self) -> service_info_pb2.HealthReport:
        """The report when serving; otherwise raise Unavailable naming what is wrong (HTTP 503)."""
        report = self.report()
        if not self.serving:
            failing = [f"{d.name}: {d.detail}" for d in report.dependencies
                       if d.required and d.state != service_info_pb2.HEALTH_STATE_SERVING]
            raise Unavailable(f"not ready: {'; '.join(failing) or 'starting'}")
        return report

    def report(self) -> service_info_pb2.HealthReport:
        """The current health as the contracts' HealthReport."""
        state = (service_info_pb2.HEALTH_STATE_NOT_SERVING if not self.serving
                 else service_info_pb2.HEALTH_STATE_DEGRADED if self.degraded
                 else service_info_pb2.HEALTH_STATE_SERVING)
        report = service_info_pb2.HealthReport(state=state, service=self._service, instance_id=self._instance_id)
        for name, status in self._status.items():
            dep = report.dependencies.add(
                name=name,
                state=service_info_pb2.HEALTH_STATE_SERVING if status.ok else service_info_pb2.HEALTH_STATE_NOT_SERVING,
                detail=status.detail, required=status.required,
            )
            if status.checked_at:
                dep.checked_at.CopyFrom(timestamp_pb2.Timestamp(seconds=int(status.checked_at)))
        if self._shutting_down:
            report.dependencies.add(name="replica", state=service_info_pb2.HEALTH_STATE_NOT_SERVING,
                                    detail="shutting down")
        return report
