"""The one entry point that turns servicers into a running service replica."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from chassis import db, metrics, tls
from chassis.audit import Recorder
from chassis.caching import ReplicaCache
from chassis.config import ConfigError, Settings, load_settings
from chassis.contracts import mesh_grpc_services
from chassis.events import EventBus, EventHandlers, outbox
from chassis.health import HealthMonitor
from chassis.health_port import serve_health_port
from chassis.http_listener import HTTP_PORT_META, serving_http
from chassis.identity import act_as_service
from chassis.interceptors import CallInterceptor
from chassis.logs import configure_logging
from chassis.registry import Instance, NatsKvRegistry, Registration, registry_from_env
from chassis.replica import Replica
from chassis.resilience import BreakerBoard, NatsKvBreakerStore, ResilientCaller
from chassis.service import Loop, Service
from chassis.telemetry import configure_tracing, shutdown_tracing

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def _database(replica: Replica) -> AsyncIterator[None]:
    service, settings = replica.service, replica.settings
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
    replica.pool = pool
    # The monitor probes PostgreSQL on its own connection; while it is down the pool fails calls at
    # once, a call meeting a broken connection makes the monitor probe at once, and on recovery
    # the pool replaces its broken connections (chassis.db.Pool).
    replica.health.add_probe("postgres", pool.probe)
    pool.on_connection_error = replica.health.poke
    replica.health.on_failed.append(pool.dependency_failed)
    replica.health.on_recovered.append(pool.dependency_recovered)
    try:
        yield
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def _discovery(replica: Replica) -> AsyncIterator[None]:
    """The registry (NATS KV or Consul) and the resilient caller, open for the lifespan and the servicers."""
    settings = replica.settings
    replica.registry = await registry_from_env(settings.consul_http_addr, settings.nats_url)
    store = None
    if settings.breaker_state == "shared" and isinstance(replica.registry, NatsKvRegistry):
        store = NatsKvBreakerStore(replica.registry.jetstream(), namespace=replica.service.name)
    on_change = functools.partial(metrics.breaker_changed, replica.service.name)
    replica.caller = ResilientCaller(breakers=BreakerBoard(store=store, on_change=on_change))
    try:
        yield
    finally:
        for client in replica.clients:
            await client.close()
        if replica.registry:
            await replica.registry.close()


async def _register(replica: Replica) -> Registration | None:
    settings = replica.settings
    if replica.registry is None:
        return None
    meta = {"metrics_port": str(replica.metrics_port)} if replica.metrics_port else {}
    if replica.http_port:
        meta[HTTP_PORT_META] = str(replica.http_port)
    instance = Instance(
        service=replica.service.name, instance_id=settings.instance_id, address=settings.advertise_host,
        port=replica.bound_port, version=settings.version, tags=tuple(replica.service.grpc_services),
        ttl=settings.registry_ttl_seconds, meta=meta,
    )
    registration = Registration(replica.registry, instance, lambda: replica.health.serving, health=replica.health)
    # The metrics and HTTP ports travel with the registration, so a scraper and Envoy's generated
    # `<service>_http` cluster can find every replica.
    await registration.start()
    return registration


@contextlib.asynccontextmanager
async def _events(replica: Replica, deps: Any) -> AsyncIterator[None]:
    """The event bus, for services that declare handlers or publish through the outbox."""
    service, settings = replica.service, replica.settings
    if not settings.nats_url or (service.handlers is None and service.migrations is None):
        yield
        return
    spec = service.handlers(replica, deps) if service.handlers else EventHandlers()
    events = EventBus(settings, replica.pool, consumers=spec.consumers, workers=spec.workers)
    await events.start()
    replica.events = events
    # Optional: without NATS the replica still serves (writes commit their events to the outbox, which the relay
    # publishes once NATS is back); it reports DEGRADED rather than leaving the load balancer's rotation.
    replica.health.add_probe("nats", events.ping, required=False)
    try:
        yield
    finally:
        await events.stop(settings.shutdown_grace_seconds)


@contextlib.asynccontextmanager
async def _background(loops: Sequence[Loop[Any]], deps: Any) -> AsyncIterator[None]:
    """Run the service's loops while it serves; cancel them before the lifespan closes what they use."""
    tasks = [asyncio.create_task(_guarded(loop, deps), name=loop.name) for loop in loops]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _guarded(loop: Loop[Any], deps: Any) -> None:
    # A loop that dies is logged, not silently gone; the replica keeps serving its calls.
    try:
        await loop.run(deps)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("background loop failed", extra={"loop": loop.name})


def _start_metrics(replica: Replica) -> metrics.MetricsSampler:
    """Serve /metrics (METRICS_PORT; -1 turns it off) and keep the sampled gauges fresh."""
    settings, name = replica.settings, replica.service.name
    sampler = metrics.MetricsSampler()
    if settings.metrics_port >= 0:
        replica.metrics_port = metrics.serve_metrics(settings.metrics_port, settings.grpc_host)
        metrics.UP.labels(name, settings.instance_id).set(1)
        if replica.pool is not None:
            sampler.add(metrics.pool_sampler(name, replica.pool))
        sampler.add(metrics.caller_sampler(name, replica.caller))
        if replica.events is not None:
            sampler.add(metrics.events_sampler(name, replica.events))
        sampler.start()
        logger.info("metrics", extra={"url": f"http://{settings.grpc_host}:{replica.metrics_port}/metrics"})
    return sampler


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def serve(service: Service[Any, Any], settings: Settings, *, stop: asyncio.Event | None = None,
                started: Callable[[Replica], None] | None = None) -> None:
    """Run a replica until `stop` is set (or SIGTERM/SIGINT), then shut down gracefully.

    Order: database + migrations, lifespan, server with health and reflection, SERVING once
    every dependency answers; on stop NOT_SERVING, stop accepting calls, let in-flight calls
    finish within the grace period, then close the lifespan and the pool.
    """
    stop = stop or asyncio.Event()
    # mTLS unless configured plaintext (chassis.tls), set before anything opens a channel: discovery and the
    # lifespan's clients make channels to other replicas as soon as the registry lists them, and a channel
    # made before this point was plaintext for good (the callee refused its handshake with WRONG_VERSION_NUMBER:
    # the agent's "failed to connect to all addresses ... Socket closed" to context in CI).
    mesh_tls = tls.configure(settings.tls)
    health_monitor = HealthMonitor(
        service.name, settings.instance_id, service.grpc_services, settings.health_interval_seconds
    )
    replica = Replica(service=service, settings=settings, health=health_monitor)
    # Writes and denials go to the audit trail through the outbox, once the database is open (chassis.audit).
    audit = Recorder(service.name, settings.instance_id, lambda: replica.pool)
    # Work no caller started (lifespan, consumers, task workers, loops) runs as the service itself.
    act_as_service(service.name)
    # Reads the contracts declare cacheable, and the fence of writes (chassis.caching); started with the event bus.
    cache = ReplicaCache(service.name, service.grpc_services)
    server = grpc.aio.server(
        interceptors=[CallInterceptor(settings.instance_id, service.name, audit, cache)],
        # Metadata up to Envoy's own header limit (60 KiB): a long REST query string reaches the replica as
        # x-envoy-original-path, and gRPC's 8 KiB default turned it into RESOURCE_EXHAUSTED (429).
        options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 8 * 1024 * 1024),
                 ("grpc.max_metadata_size", 64 * 1024)],
    )
    async with _database(replica), _discovery(replica):
        own_settings = load_settings(service.settings, service.name) if service.settings else None
        lifespan = service.lifespan(replica, own_settings) if service.lifespan else contextlib.nullcontext()
        async with lifespan as deps, _events(replica, deps), _background(service.background, deps), \
                contextlib.AsyncExitStack() as http:
            await cache.start(replica.events)
            for servicer in service.resolved_servicers:
                servicer.add_to_server(servicer.cls(replica, deps), server)
            health_pb2_grpc.add_HealthServicer_to_server(health_monitor.servicer, server)
            reflection.enable_server_reflection(
                sorted({*mesh_grpc_services(), *service.grpc_services,
                        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME}),
                server,
            )
            address = f"{settings.grpc_host}:{settings.grpc_port}"
            try:
                # A plaintext or foreign client fails the handshake (see mesh_tls above).
                replica.bound_port = (server.add_secure_port(address, mesh_tls.server_credentials()) if mesh_tls
                                      else server.add_insecure_port(address))
            except RuntimeError as exc:
                raise RuntimeError(f"cannot listen on {address}: is the port taken? set GRPC_PORT") from exc
            await server.start()
            probes = await serve_health_port(health_monitor, settings.grpc_host)  # HEALTH_PORT: kubelet gRPC probes
            # The HTTP listener (if the service declares one) is up before the registration names its port,
            # and is closed (exiting `http`) after the gRPC server, before the lifespan closes.
            await http.enter_async_context(serving_http(replica, deps))
            await health_monitor.start()
            sampler = _start_metrics(replica)
            registration = await _register(replica)
            logger.info(
                "serving",
                extra={"address": f"{settings.grpc_host}:{replica.bound_port}", "services": service.grpc_services,
                       "serving": health_monitor.serving},
            )
            if started is not None:
                started(replica)
            await stop.wait()
            logger.info("shutting down", extra={"grace_seconds": settings.shutdown_grace_seconds})
            await health_monitor.shutdown()
            metrics.UP.labels(service.name, settings.instance_id).set(0)
            await sampler.stop()
            if registration:
                await registration.stop()
            await server.stop(settings.shutdown_grace_seconds)
            if probes is not None:
                await probes.stop(0)
            await cache.stop()
            await audit.close()
    logger.info("stopped")


async def run(service: Service[Any, Any], settings: Settings) -> None:
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


def main(package: str) -> None:
    """`python -m services.<name>`: import `<package>.app`, build its Service and run one replica."""
    app = importlib.import_module(f"{package}.app")
    service: Service[Any, Any] = app.build()
    try:
        settings = Settings.from_env(service.name)
    except ConfigError as exc:
        raise SystemExit(f"{service.name}: {exc}") from None
    run_process(service, settings)


def run_process(service: Service[Any, Any], settings: Settings) -> None:
    """Run one replica as this process, on uvloop: its event loop's own work per call (callbacks,
    timers, socket reads) costs less than asyncio's, and grpc.aio runs on it unchanged."""
    import uvloop

    uvloop.run(run(service, settings))
