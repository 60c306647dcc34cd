"""The one entry point that turns servicers into a running service replica."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor, duration_pb2, timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from psycopg_pool import AsyncConnectionPool

from chassis import db, metrics
from chassis.client import ServiceClient, StubT
from chassis.config import Settings
from chassis.contracts import mesh_grpc_services
from chassis.events import EventsRuntime, EventsSpec, outbox
from chassis.health import HealthMonitor
from chassis.interceptors import CallInterceptor
from chassis.logs import configure_logging
from chassis.registry import Instance, NatsKvRegistry, Registration, Registry, registry_from_env
from chassis.resilience import BreakerBoard, NatsKvBreakerStore, ResilientCaller
from chassis.telemetry import configure_tracing, shutdown_tracing
from protomesh.common.v1 import service_info_pb2

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Servicer:
    """A gRPC service implementation: its descriptor, registration function and factory."""

    descriptor: descriptor.ServiceDescriptor
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    factory: Callable[[Runtime], Any]


Lifespan = Callable[["Runtime"], AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class Service:
    """Declarative description of a service; `run` does the rest."""

    name: str
    description: str
    servicers: list[Servicer]
    migrations: Path | None = None
    """Folder of NNN_name.sql files; the service then needs DATABASE_URL and owns schema `name`."""
    lifespan: Lifespan | None = None
    """Opens what the servicers need after the database is ready; closed after the server stops."""
    events: Callable[[Runtime], EventsSpec] | None = None
    """Consumers and task workers, built once the lifespan is open; when set (or when the service
    has a database and NATS_URL is set) the replica runs the events runtime: outbox relay,
    consumers, workers, and a NATS health probe."""

    @property
    def grpc_services(self) -> list[str]:
        """Fully qualified names of the served gRPC services."""
        return [s.descriptor.full_name for s in self.servicers]


@dataclass
class Runtime:
    """What a running replica gives its servicers: settings, the pool, health and identity."""

    service: Service
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
    events: EventsRuntime | None = None
    """Outbox relay, consumers and task queue of this replica (None without NATS)."""
    metrics_port: int = 0
    """Port of this replica's Prometheus /metrics (0 when metrics are off)."""
    state: dict[str, Any] = field(default_factory=dict)
    """Objects the lifespan opens for the servicers, by name."""

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
        client = ServiceClient(self.registry, service, stub_factory, caller=self.caller, fallbacks=fallbacks)
        await client.start(wait=wait)
        self.clients.append(client)
        return client.stub

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


@contextlib.asynccontextmanager
async def _database(runtime: Runtime) -> AsyncIterator[None]:
    service, settings = runtime.service, runtime.settings
    if service.migrations is None:
        yield
        return
    if not settings.database_url:
        raise RuntimeError(f"service {service.name} needs DATABASE_URL (postgresql://user@host:port/db)")
    await db.wait_for_database(settings.database_url, settings.startup_timeout_seconds)
    applied = await db.migrate(settings.database_url, service.name, service.migrations)
    # The outbox is there even without NATS: events committed meanwhile wait for a relay.
    await outbox.migrate(settings.database_url, service.name)
    logger.info("database ready", extra={"schema": service.name, "applied_migrations": applied})
    pool = db.open_pool(
        settings.database_url,
        service.name,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        timeout=settings.db_acquire_timeout_seconds,
    )
    await pool.open(wait=False)
    runtime.pool = pool
    runtime.health.add_probe("postgres", lambda: db.ping(pool))

    async def drop_broken_connections(dependency: str) -> None:
        if dependency == "postgres":
            await pool.check()

    runtime.health.on_recovered.append(drop_broken_connections)
    try:
        yield
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def _discovery(runtime: Runtime) -> AsyncIterator[None]:
    """The registry (NATS KV or Consul) and the resilient caller, open for the lifespan and the servicers."""
    settings = runtime.settings
    runtime.registry = await registry_from_env(settings.consul_http_addr, settings.nats_url)
    store = None
    if settings.breaker_state == "shared" and isinstance(runtime.registry, NatsKvRegistry):
        store = NatsKvBreakerStore(runtime.registry.jetstream(), namespace=runtime.service.name)
    on_change = functools.partial(metrics.breaker_changed, runtime.service.name)
    runtime.caller = ResilientCaller(breakers=BreakerBoard(store=store, on_change=on_change))
    try:
        yield
    finally:
        for client in runtime.clients:
            await client.close()
        if runtime.registry:
            await runtime.registry.close()


async def _register(runtime: Runtime) -> Registration | None:
    settings = runtime.settings
    if runtime.registry is None:
        return None
    instance = Instance(
        service=runtime.service.name, instance_id=settings.instance_id, address=settings.advertise_host,
        port=runtime.bound_port, version=settings.version, tags=tuple(runtime.service.grpc_services),
        ttl=settings.registry_ttl_seconds,
        meta={"metrics_port": str(runtime.metrics_port)} if runtime.metrics_port else {},
    )
    registration = Registration(runtime.registry, instance, lambda: runtime.health.serving)
    # The metrics port travels with the registration, so a scraper can find every replica.
    await registration.start()
    return registration


@contextlib.asynccontextmanager
async def _events(runtime: Runtime) -> AsyncIterator[None]:
    """The events runtime, for services that declare events or publish through the outbox."""
    service, settings = runtime.service, runtime.settings
    if not settings.nats_url or (service.events is None and service.migrations is None):
        yield
        return
    spec = service.events(runtime) if service.events else EventsSpec()
    events = EventsRuntime(settings, runtime.pool, consumers=spec.consumers, workers=spec.workers)
    await events.start()
    runtime.events = events
    runtime.health.add_probe("nats", events.ping)
    try:
        yield
    finally:
        await events.stop(settings.shutdown_grace_seconds)


def _start_metrics(runtime: Runtime) -> metrics.MetricsSampler:
    """Serve /metrics (METRICS_PORT; -1 turns it off) and keep the sampled gauges fresh."""
    settings, name = runtime.settings, runtime.service.name
    sampler = metrics.MetricsSampler()
    if settings.metrics_port >= 0:
        runtime.metrics_port = metrics.serve_metrics(settings.metrics_port, settings.grpc_host)
        metrics.UP.labels(name, settings.instance_id).set(1)
        if runtime.pool is not None:
            sampler.add(metrics.pool_sampler(name, runtime.pool))
        sampler.add(metrics.caller_sampler(name, runtime.caller))
        if runtime.events is not None:
            sampler.add(metrics.events_sampler(name, runtime.events))
        sampler.start()
        logger.info("metrics", extra={"url": f"http://{settings.grpc_host}:{runtime.metrics_port}/metrics"})
    return sampler


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def serve(service: Service, settings: Settings, *, stop: asyncio.Event | None = None,
                started: Callable[[Runtime], None] | None = None) -> None:
    """Run a replica until `stop` is set (or SIGTERM/SIGINT), then shut down gracefully.

    Order: database + migrations, lifespan, server with health and reflection, SERVING once
    every dependency answers; on stop NOT_SERVING, stop accepting calls, let in-flight calls
    finish within the grace period, then close the lifespan and the pool.
    """
    stop = stop or asyncio.Event()
    health_monitor = HealthMonitor(
        service.name, settings.instance_id, service.grpc_services, settings.health_interval_seconds
    )
    runtime = Runtime(service=service, settings=settings, health=health_monitor)
    server = grpc.aio.server(
        interceptors=[CallInterceptor(settings.instance_id, service.name)],
        options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 8 * 1024 * 1024)],
    )
    async with _database(runtime), _discovery(runtime):
        lifespan = service.lifespan(runtime) if service.lifespan else contextlib.nullcontext()
        async with lifespan, _events(runtime):
            for servicer in service.servicers:
                servicer.add_to_server(servicer.factory(runtime), server)
            health_pb2_grpc.add_HealthServicer_to_server(health_monitor.servicer, server)
            reflection.enable_server_reflection(
                sorted({*mesh_grpc_services(), *service.grpc_services,
                        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME}),
                server,
            )
            address = f"{settings.grpc_host}:{settings.grpc_port}"
            try:
                runtime.bound_port = server.add_insecure_port(address)
            except RuntimeError as exc:
                raise RuntimeError(f"cannot listen on {address}: is the port taken? set GRPC_PORT") from exc
            await server.start()
            await health_monitor.start()
            sampler = _start_metrics(runtime)
            registration = await _register(runtime)
            logger.info(
                "serving",
                extra={"address": f"{settings.grpc_host}:{runtime.bound_port}", "services": service.grpc_services,
                       "serving": health_monitor.serving},
            )
            if started is not None:
                started(runtime)
            await stop.wait()
            logger.info("shutting down", extra={"grace_seconds": settings.shutdown_grace_seconds})
            await health_monitor.shutdown()
            metrics.UP.labels(service.name, settings.instance_id).set(0)
            await sampler.stop()
            if registration:
                await registration.stop()
            await server.stop(settings.shutdown_grace_seconds)
    logger.info("stopped")


async def run(service: Service, settings: Settings) -> None:
    """Process entry point: configure logging, install signal handlers, serve until signalled."""
    configure_logging(service.name, settings.instance_id, settings.log_level)
    configure_tracing(service.name, settings.instance_id)
    stop = asyncio.Event()
    _install_signal_handlers(stop)
    try:
        await serve(service, settings, stop=stop)
    except Exception:
        logger.exception("service failed")
        raise
    finally:
        shutdown_tracing()
