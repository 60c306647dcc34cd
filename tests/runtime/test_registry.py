"""Both registry backends over real connections: NATS JetStream KV (real nats-server) and Consul (stand-in)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from chassis.registry import ConsulRegistry, Instance, NatsKvRegistry
from chassis.tooling.infra.nats import NatsProcess
from tests.support.consul_standin import ConsulStandIn


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsProcess]:
    server = NatsProcess(tmp_path_factory.mktemp("nats") / "store", durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def kv_registry(nats_server: NatsProcess) -> AsyncIterator[NatsKvRegistry]:
    registry = await NatsKvRegistry.connect(nats_server.url)
    try:
        yield registry
    finally:
        await registry.close()


def instance(service: str, n: int, port: int = 0, ttl: float = 5.0) -> Instance:
    return Instance(service=service, instance_id=f"{service}-{n}", address="127.0.0.1", port=port or 40000 + n,
                    version="1.0", tags=("test",), ttl=ttl)


async def next_view(watch: AsyncIterator[list[Instance]], timeout: float = 5.0) -> list[str]:
    return [i.instance_id for i in await asyncio.wait_for(anext(watch), timeout)]


async def test_kv_register_list_and_deregister(kv_registry: NatsKvRegistry) -> None:
    a, b = instance("alpha", 1), instance("alpha", 2)
    await kv_registry.register(a)
    await kv_registry.register(b)
    await kv_registry.register(instance("beta", 1))
    listed = await kv_registry.instances("alpha")
    assert [(i.instance_id, i.port, i.version, i.tags) for i in listed] == [
        ("alpha-1", 40001, "1.0", ("test",)), ("alpha-2", 40002, "1.0", ("test",))]
    await kv_registry.deregister(a)
    assert [i.instance_id for i in await kv_registry.instances("alpha")] == ["alpha-2"]


async def test_kv_watchers_see_changes_at_once(kv_registry: NatsKvRegistry) -> None:
    await kv_registry.register(instance("gamma", 1))
    watch = kv_registry.watch("gamma")
    assert await next_view(watch) == ["gamma-1"]
    await kv_registry.register(instance("gamma", 2))
    assert await next_view(watch, timeout=1.0) == ["gamma-1", "gamma-2"]
    await kv_registry.deregister(instance("gamma", 1))
    assert await next_view(watch, timeout=1.0) == ["gamma-2"]
    await watch.aclose()


async def test_kv_entry_without_heartbeats_expires_within_its_ttl(kv_registry: NatsKvRegistry) -> None:
    await kv_registry.register(instance("delta", 1, ttl=60))
    await kv_registry.register(instance("delta", 2, ttl=1.0))  # then never heartbeats again: "killed"
    watch = kv_registry.watch("delta")
    assert await next_view(watch) == ["delta-1", "delta-2"]
    started = asyncio.get_running_loop().time()
    assert await next_view(watch, timeout=5.0) == ["delta-1"]
    assert asyncio.get_running_loop().time() - started < 1.0 + 1.5
    assert [i.instance_id for i in await kv_registry.instances("delta")] == ["delta-1"]
    await watch.aclose()


async def test_kv_not_serving_instances_are_not_listed(kv_registry: NatsKvRegistry) -> None:
    sick = Instance(**{**instance("eps", 1).__dict__, "serving": False})
    await kv_registry.register(sick)
    assert await kv_registry.instances("eps") == []


@pytest.fixture
def consul() -> Iterator[ConsulStandIn]:
    standin = ConsulStandIn().start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
async def grpc_replica() -> AsyncIterator[tuple[int, health.aio.HealthServicer, grpc.aio.Server]]:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    try:
        yield port, servicer, server
    finally:
        await server.stop(0)


async def test_consul_registers_with_a_grpc_check_and_watch_follows_it(consul: ConsulStandIn, grpc_replica) -> None:
    port, servicer, _ = grpc_replica
    registry = ConsulRegistry(consul.address, check_interval="100ms", deregister_after="1s", wait="2s")
    try:
        watch = registry.watch("zeta")
        assert await next_view(watch) == []
        await registry.register(instance("zeta", 1, port=port))
        assert await next_view(watch, timeout=3) == ["zeta-1"]  # after the first passing gRPC check
        assert [i.target for i in await registry.instances("zeta")] == [f"127.0.0.1:{port}"]
        await servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert await next_view(watch, timeout=3) == []
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        assert await next_view(watch, timeout=3) == ["zeta-1"]
        await registry.deregister(instance("zeta", 1, port=port))
        assert await next_view(watch, timeout=3) == []
        await watch.aclose()
    finally:
        await registry.close()


async def test_consul_deregisters_a_dead_replica_after_the_critical_timeout(consul: ConsulStandIn,
                                                                           grpc_replica) -> None:
    port, _, server = grpc_replica
    registry = ConsulRegistry(consul.address, check_interval="100ms", deregister_after="500ms", wait="2s")
    try:
        await registry.register(instance("eta", 1, port=port))
        for _ in range(50):
            if await registry.instances("eta"):
                break
            await asyncio.sleep(0.1)
        await server.stop(0)  # the replica dies
        for _ in range(50):
            if not consul.health("eta", passing=False):
                break
            await asyncio.sleep(0.1)
        assert consul.health("eta", passing=False) == [], "critical replica was not deregistered"
    finally:
        await registry.close()


def test_standin_says_what_it_is() -> None:
    import tests.support.consul_standin as module

    assert "NOT Consul" in (module.__doc__ or "")


def test_kv_entry_round_trips(tmp_path: Path) -> None:
    original = instance("theta", 3)
    assert Instance.from_json(original.to_json()) == original
