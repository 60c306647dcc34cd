"""The discovery-aware client over real gRPC servers and a real NATS KV registry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest

from chassis.client import ServiceClient
from chassis.identity import CLAIMS_HEADER, Principal
from chassis.interceptors import CallInterceptor
from chassis.registry import Instance, NatsKvRegistry
from chassis.tooling.infra.nats import NatsProcess
from protomesh.agent.v1 import agent_service_pb2 as pb
from protomesh.agent.v1 import agent_service_pb2_grpc
from protomesh.common.v1 import service_info_pb2


class Replica(agent_service_pb2_grpc.AgentServiceServicer):
    """Answers GetInfo with its name and remembers what each call carried."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[tuple[float | None, dict[str, str]]] = []

    async def GetInfo(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.seen.append((context.time_remaining(), dict(context.invocation_metadata() or ())))
        return pb.GetInfoResponse(info=service_info_pb2.ServiceInfo(instance_id=self.name))


async def serve(servicer: Any, interceptors: list[Any] | None = None) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(interceptors=interceptors or [])
    agent_service_pb2_grpc.add_AgentServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsProcess]:
    server = NatsProcess(tmp_path_factory.mktemp("nats") / "store", durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def registry(nats_server: NatsProcess) -> AsyncIterator[NatsKvRegistry]:
    reg = await NatsKvRegistry.connect(nats_server.url)
    try:
        yield reg
    finally:
        await reg.close()


def instance(service: str, name: str, port: int) -> Instance:
    return Instance(service=service, instance_id=name, address="127.0.0.1", port=port)


async def wait_for_targets(client: ServiceClient[Any], count: int) -> None:
    for _ in range(100):
        if len(client.targets) == count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"client knows {client.targets}, wanted {count} targets")


async def test_round_robin_and_following_replicas_as_they_come_and_go(registry: NatsKvRegistry) -> None:
    replicas = [Replica(f"r{i}") for i in range(3)]
    servers = [await serve(r) for r in replicas]
    try:
        for replica, (_, port) in zip(replicas[:2], servers[:2], strict=True):
            await registry.register(instance("rr", replica.name, port))
        client = ServiceClient(registry, "rr", agent_service_pb2_grpc.AgentServiceStub,
                               grpc_service="protomesh.agent.v1.AgentService")
        await client.start(wait=5)
        await wait_for_targets(client, 2)
        answers = [(await client.stub.GetInfo(pb.GetInfoRequest())).info.instance_id for _ in range(10)]
        assert sorted(set(answers)) == ["r0", "r1"] and answers.count("r0") == 5

        await registry.register(instance("rr", "r2", servers[2][1]))
        await wait_for_targets(client, 3)
        answers = {(await client.stub.GetInfo(pb.GetInfoRequest())).info.instance_id for _ in range(9)}
        assert answers == {"r0", "r1", "r2"}

        await registry.deregister(instance("rr", "r0", servers[0][1]))
        await wait_for_targets(client, 2)
        answers = {(await client.stub.GetInfo(pb.GetInfoRequest())).info.instance_id for _ in range(6)}
        assert answers == {"r1", "r2"}
        await client.close()
    finally:
        for server, _ in servers:
            await server.stop(0)


async def test_no_replica_is_unavailable(registry: NatsKvRegistry) -> None:
    client = ServiceClient(registry, "nobody-home", agent_service_pb2_grpc.AgentServiceStub,
                           grpc_service="protomesh.agent.v1.AgentService")
    await client.start()
    with pytest.raises(Exception, match="no healthy nobody-home replica"):
        await client.stub.GetInfo(pb.GetInfoRequest())
    await client.close()


async def test_deadline_and_trace_headers_are_passed_on(registry: NatsKvRegistry) -> None:
    downstream = Replica("down")
    down_server, down_port = await serve(downstream)
    await registry.register(instance("down", "down", down_port))
    client = ServiceClient(registry, "down", agent_service_pb2_grpc.AgentServiceStub,
                           grpc_service="protomesh.agent.v1.AgentService")
    await client.start(wait=5)

    class Upstream(agent_service_pb2_grpc.AgentServiceServicer):
        async def GetInfo(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
            return await client.stub.GetInfo(request)

    up_server, up_port = await serve(Upstream(), [CallInterceptor()])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{up_port}") as channel:
            stub = agent_service_pb2_grpc.AgentServiceStub(channel)
            traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            # The verified claims the gateway forwarded: the downstream call acts for the same principal.
            claims = Principal(subject="user-1", organization="org-a", roles=frozenset({"member"})).header()
            reply = await stub.GetInfo(pb.GetInfoRequest(), timeout=2.0,
                                       metadata=(("traceparent", traceparent), (CLAIMS_HEADER, claims)))
        assert reply.info.instance_id == "down"
        remaining, headers = downstream.seen[-1]
        # The caller's budget (2 s, give or take clock reads), not the policy's 5 s default.
        assert remaining is not None and remaining <= 2.05
        assert headers.get("traceparent") == traceparent
        assert headers.get(CLAIMS_HEADER) == claims
    finally:
        await client.close()
        await up_server.stop(0)
        await down_server.stop(0)
