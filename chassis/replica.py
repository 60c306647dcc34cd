"""A running replica: what the chassis gives a service's lifespan and servicers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import duration_pb2, timestamp_pb2
from psycopg_pool import AsyncConnectionPool

from chassis.client import ServiceClient, StubT
from chassis.config import Settings
from chassis.events import EventBus
from chassis.health import HealthMonitor
from chassis.registry import Registry
from chassis.resilience import ResilientCaller
from chassis.service import Service
from protomesh.common.v1 import service_info_pb2


@dataclass
class Replica:
    """What a running replica gives its servicers and lifespan: settings, the pool, health, clients, identity."""

    service: Service[Any, Any]
    settings: Settings
    health: HealthMonitor
    pool: AsyncConnectionPool | None = None
    started_at: float = field(default_factory=time.time)
    bound_port: int = 0
    registry: Registry | None = None
    """Where replicas find each other (NATS KV or Consul); None when neither is configured."""
    caller: ResilientCaller = field(default_factory=ResilientCaller)
    """Applies the contracts' call policies to every outbound call of this replica."""
    clients: list[ServiceClient[Any]] = field(default_factory=list)
    events: EventBus | None = None
    """Event bus of this replica: outbox relay, consumers and task queue (None without NATS)."""
    metrics_port: int = 0
    """Port of this replica's Prometheus /metrics (0 when metrics are off)."""
    http_port: int = 0
    """Port of this replica's HTTP listener (0 when the service declares no `http`, or it is not serving)."""

    @property
    def db(self) -> AsyncConnectionPool:
        """The service's pool; only for services declared with migrations."""
        if self.pool is None:
            raise RuntimeError(f"service {self.service.name} has no database (declare migrations)")
        return self.pool

    async def client(self, service: str, stub_factory: Callable[[grpc.aio.Channel], StubT], *,
                     wait: float = 0.0, fallbacks: dict[str, Any] | None = None) -> StubT:
        """A typed stub for another mesh service, found in the registry and called through the policies."""
        if self.registry is None:
            raise RuntimeError(f"{self.service.name} calls {service} but has no registry: set NATS_URL or "
                               "CONSUL_HTTP_ADDR")
        client = ServiceClient(self.registry, service, stub_factory, caller=self.caller, fallbacks=fallbacks,
                               jetstream=self._nats_jetstream)
        await client.start(wait=wait)
        self.clients.append(client)
        return client.stub

    def _nats_jetstream(self) -> Any | None:
        """JetStream for the failure toggles (chassis.faults): the registry's when it is NATS KV, else the event
        bus's once it is connected (a Consul registry, as in compose and Kubernetes), else None."""
        jetstream = getattr(self.registry, "jetstream", None)
        if callable(jetstream):
            return jetstream()
        return self.events.nc.jetstream() if self.events is not None and self.events.nc is not None else None

    def service_info(self) -> service_info_pb2.ServiceInfo:
        """This replica as the contracts' ServiceInfo."""
        now = time.time()
        info = service_info_pb2.ServiceInfo(
            name=self.service.name,
            version=self.settings.version,
            instance_id=self.settings.instance_id,
            grpc_services=self.service.grpc_services,
            description=self.service.description,
        )
        info.started_at.CopyFrom(_timestamp(self.started_at))
        info.uptime.CopyFrom(duration_pb2.Duration(seconds=int(now - self.started_at)))
        return info


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts
