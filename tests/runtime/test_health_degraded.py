"""Required and optional dependencies: PostgreSQL down stops a replica serving, NATS down only degrades it.

The chaos suite found the gateway with no replica to route to while the NATS cluster restarted: every replica
with an event bus reported NOT_SERVING, although its writes need only PostgreSQL and the outbox keeps their
events. NATS is now an optional dependency: the replica stays SERVING on the standard health service (what
Envoy and the registry read) and its HealthReport says DEGRADED, naming NATS.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chassis.health import HealthMonitor
from chassis.testing import serve_in_process
from protomesh.common.v1 import service_info_pb2
from protomesh.context.v1 import context_service_pb2 as pb
from protomesh.context.v1.context_service_pb2_grpc import ContextServiceStub
from tests.support.infra_fixtures import fresh_nats, session_postgres
from tests.support.inprocess import build_service

SERVING = health_pb2.HealthCheckResponse.SERVING


class Switch:
    """A probe that fails while `down` is set."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.down = False

    async def __call__(self) -> None:
        if self.down:
            raise ConnectionError(f"{self.what} is down")


async def test_an_optional_dependency_down_degrades_and_a_required_one_stops_serving() -> None:
    monitor = HealthMonitor("alpha", "alpha-1", ["protomesh.alpha.v1.AlphaService"], interval=60)
    postgres, nats = Switch("postgres"), Switch("nats")
    monitor.add_probe("postgres", postgres)
    monitor.add_probe("nats", nats, required=False)
    await monitor.start()
    try:
        assert monitor.serving and monitor.report().state == service_info_pb2.HEALTH_STATE_SERVING

        nats.down = True
        await monitor.check_now()
        report = monitor.report()
        assert monitor.serving and report.state == service_info_pb2.HEALTH_STATE_DEGRADED
        by_name = {d.name: d for d in report.dependencies}
        assert by_name["nats"].state == service_info_pb2.HEALTH_STATE_NOT_SERVING and not by_name["nats"].required
        assert "nats is down" in by_name["nats"].detail
        assert by_name["postgres"].required and by_name["postgres"].state == service_info_pb2.HEALTH_STATE_SERVING
        assert monitor.require_ready().state == service_info_pb2.HEALTH_STATE_DEGRADED  # ready, not refused

        postgres.down = True
        await monitor.check_now()
        assert not monitor.serving and monitor.report().state == service_info_pb2.HEALTH_STATE_NOT_SERVING
        with pytest.raises(Exception, match="not ready: postgres: ConnectionError: postgres is down") as refused:
            monitor.require_ready()
        assert "nats" not in str(refused.value)  # the optional one is not why it is not ready

        postgres.down = nats.down = False
        await monitor.check_now()
        assert monitor.serving and monitor.report().state == service_info_pb2.HEALTH_STATE_SERVING
    finally:
        await monitor.shutdown()


async def test_a_replica_keeps_serving_and_writing_while_nats_is_down(pytestconfig: pytest.Config) -> None:
    postgres = session_postgres(pytestconfig)
    async with fresh_nats() as nats, serve_in_process(build_service("services.context"), database_url=postgres.url,
                                                      nats_url=nats.url) as context:
        health = health_pb2_grpc.HealthStub(context.channel)
        contexts = context.stub(ContextServiceStub)
        assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == SERVING

        await asyncio.to_thread(nats.stop)
        await context.replica.health.check_now()
        # What Envoy's health check and the registry read: still serving.
        assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == SERVING
        assert context.replica.health.serving
        report = (await contexts.GetHealth(pb.GetHealthRequest(), timeout=5)).health
        assert report.state == service_info_pb2.HEALTH_STATE_DEGRADED, report
        nats_dependency = next(d for d in report.dependencies if d.name == "nats")
        assert nats_dependency.state == service_info_pb2.HEALTH_STATE_NOT_SERVING and not nats_dependency.required
        # A write needs PostgreSQL only: its ContextCreated waits in the outbox.
        created = await contexts.CreateContext(pb.CreateContextRequest(
            name="while-nats-is-down", type="session", request_id=str(uuid.uuid4())), timeout=10)
        got = await contexts.GetContext(pb.GetContextRequest(context_id=created.context.context_id), timeout=10)
        assert got.context.name == "while-nats-is-down"

        await asyncio.to_thread(nats.start)
        for _ in range(200):  # the bus reconnects on its own; the probe sees it within its down interval
            report = (await contexts.GetHealth(pb.GetHealthRequest(), timeout=5)).health
            if report.state == service_info_pb2.HEALTH_STATE_SERVING:
                break
            await asyncio.sleep(0.1)
        assert report.state == service_info_pb2.HEALTH_STATE_SERVING, report

