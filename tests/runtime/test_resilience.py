"""Resilience policies over real gRPC connections: breaker, retries, deadlines, bulkhead, budget, rate limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest

from chassis.errors import CircuitOpen, ResourceExhausted
from chassis.registry import NatsKvRegistry
from chassis.resilience import (
    BreakerBoard,
    MethodPolicy,
    NatsKvBreakerStore,
    PolicyBook,
    ResilientCaller,
    RetryBudget,
    RetrySettings,
    TargetPolicy,
    TokenBucket,
)
from chassis.tooling.infra.nats import NatsProcess
from protomesh.agent.v1 import agent_service_pb2 as pb
from protomesh.agent.v1 import agent_service_pb2_grpc
from protomesh.common.v1 import service_info_pb2


class Flaky(agent_service_pb2_grpc.AgentServiceServicer):
    """Fails the next `failures` calls with UNAVAILABLE, optionally sleeps; counts every call it sees."""

    def __init__(self) -> None:
        self.failures = 0
        self.delay = 0.0
        self.calls = 0

    async def _answer(self, context: grpc.aio.ServicerContext) -> None:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failures:
            self.failures -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "flaky")

    async def GetInfo(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._answer(context)
        return pb.GetInfoResponse(info=service_info_pb2.ServiceInfo(name="flaky"))

    async def RegisterAgent(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._answer(context)
        return pb.RegisterAgentResponse()


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[Flaky, agent_service_pb2_grpc.AgentServiceStub]]:
    servicer = Flaky()
    server = grpc.aio.server()
    agent_service_pb2_grpc.add_AgentServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield servicer, agent_service_pb2_grpc.AgentServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(0)


FAST_RETRY = RetrySettings(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)
IDEMPOTENT = MethodPolicy(timeout=5, idempotent=True, retry=FAST_RETRY)
NOT_IDEMPOTENT = MethodPolicy(timeout=5, idempotent=False, retry=FAST_RETRY)


def target(threshold: int = 3, recovery: float = 0.5, concurrent: int = 64) -> TargetPolicy:
    return TargetPolicy(failure_threshold=threshold, recovery_timeout=recovery, max_concurrent=concurrent)


async def test_breaker_opens_fails_fast_half_opens_and_closes(flaky) -> None:
    servicer, stub = flaky
    caller = ResilientCaller()
    servicer.failures = 100
    policy = target(threshold=3, recovery=0.5)

    async def info(budget: float) -> Any:
        return await stub.GetInfo(pb.GetInfoRequest(), timeout=budget)

    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError):
            await caller.call("flaky", info, method=NOT_IDEMPOTENT, target_policy=policy)
    assert (await caller.breakers.status("flaky"))["state"] == "opened"
    seen = servicer.calls
    started = time.monotonic()
    with pytest.raises(CircuitOpen):
        await caller.call("flaky", info, method=NOT_IDEMPOTENT, target_policy=policy)
    assert servicer.calls == seen, "an open breaker must not let the call through"
    assert time.monotonic() - started < 0.1

    await asyncio.sleep(0.6)
    servicer.failures = 0
    servicer.delay = 0.2
    probe = asyncio.create_task(caller.call("flaky", info, method=NOT_IDEMPOTENT, target_policy=policy))
    await asyncio.sleep(0.05)
    with pytest.raises(CircuitOpen, match="probe"):  # only one probe while half-open
        await caller.call("flaky", info, method=NOT_IDEMPOTENT, target_policy=policy)
    await probe
    assert (await caller.breakers.status("flaky"))["state"] == "closed"
    assert [t.state for t in caller.breakers.transitions] == ["opened", "half-opened", "closed"]


async def test_fallback_is_served_while_open(flaky) -> None:
    servicer, stub = flaky
    caller = ResilientCaller()
    servicer.failures = 100
    policy = target(threshold=1, recovery=30)

    async def info(budget: float) -> Any:
        return await stub.GetInfo(pb.GetInfoRequest(), timeout=budget)

    async def cached(exc: BaseException) -> str:
        return "cached"

    with pytest.raises(grpc.aio.AioRpcError):
        await caller.call("fb", info, method=NOT_IDEMPOTENT, target_policy=policy, fallback=cached)
    assert await caller.call("fb", info, method=NOT_IDEMPOTENT, target_policy=policy, fallback=cached) == "cached"
    assert caller.outcomes["fb"].fallbacks == 1


async def test_retries_only_idempotent_methods(flaky) -> None:
    servicer, stub = flaky
    caller = ResilientCaller()
    servicer.failures = 2
    reply = await caller.call("r", lambda b: stub.GetInfo(pb.GetInfoRequest(), timeout=b), method=IDEMPOTENT,
                              target_policy=target(threshold=10))
    assert reply.info.name == "flaky" and servicer.calls == 3
    assert caller.outcomes["r"].retries == 2

    servicer.calls, servicer.failures = 0, 2
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await caller.call("r", lambda b: stub.RegisterAgent(pb.RegisterAgentRequest(), timeout=b),
                          method=NOT_IDEMPOTENT, target_policy=target(threshold=10))
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert servicer.calls == 1, "a non-idempotent call must not be retried"


async def test_retries_stop_at_the_deadline(flaky) -> None:
    servicer, stub = flaky
    caller = ResilientCaller()
    servicer.failures = 1000
    servicer.delay = 0.1
    slow_retries = MethodPolicy(timeout=0.35, idempotent=True,
                                retry=RetrySettings(max_attempts=50, initial_backoff=0.01, max_backoff=0.01))
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - UNAVAILABLE or DEADLINE_EXCEEDED, whichever comes last
        await caller.call("d", lambda b: stub.GetInfo(pb.GetInfoRequest(), timeout=b), method=slow_retries,
                          target_policy=target(threshold=1000))
    assert time.monotonic() - started < 0.35 + 0.2
    assert 2 <= servicer.calls < 50


async def test_retry_budget_caps_retries_in_an_outage(flaky) -> None:
    servicer, stub = flaky
    caller = ResilientCaller(budget=RetryBudget(ratio=0.1, min_retries_per_window=2))
    servicer.failures = 10_000
    for _ in range(20):
        with pytest.raises(grpc.aio.AioRpcError):
            await caller.call("b", lambda b: stub.GetInfo(pb.GetInfoRequest(), timeout=b), method=IDEMPOTENT,
                              target_policy=target(threshold=10_000))
    assert caller.outcomes["b"].retries <= 2
    assert servicer.calls <= 22
    assert caller.outcomes["b"].budget_exhausted > 0


async def test_bulkhead_rejects_the_excess_at_once(flaky) -> None:
    servicer, stub = flaky
    caller = ResilientCaller()
    servicer.delay = 0.3
    policy = target(concurrent=2)

    def call() -> Any:
        return caller.call("bh", lambda b: stub.GetInfo(pb.GetInfoRequest(), timeout=b), method=NOT_IDEMPOTENT,
                           target_policy=policy)

    first, second = asyncio.create_task(call()), asyncio.create_task(call())
    await asyncio.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(ResourceExhausted):
        await call()
    assert time.monotonic() - started < 0.05
    await asyncio.gather(first, second)
    assert servicer.calls == 2


def test_token_bucket_admits_the_configured_rate() -> None:
    bucket = TokenBucket(rate=10, burst=5)
    now = bucket.updated
    admitted = sum(bucket.try_take(now) for _ in range(100))
    assert admitted == 5  # the burst
    for step in range(1, 31):  # 3 seconds in 0.1 s steps, 3 tries each
        admitted += sum(bucket.try_take(now + step * 0.1) for _ in range(3))
    assert admitted == 5 + 30  # 10 per second for 3 seconds


def test_policies_come_from_the_contracts_and_env_overrides() -> None:
    book = PolicyBook(overrides={"protomesh.agent.v1.AgentService/GetAgent": {"timeout": 1.5}})
    get = book.method("protomesh.agent.v1.AgentService", "GetAgent")
    register = book.method("protomesh.agent.v1.AgentService", "RegisterAgent")
    assert get.idempotent and get.attempts == get.retry.max_attempts and get.timeout == 1.5
    assert not register.idempotent and register.attempts == 1


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsProcess]:
    server = NatsProcess(tmp_path_factory.mktemp("nats") / "store", durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_shared_breaker_state_opens_for_every_replica(nats_server: NatsProcess, flaky) -> None:
    servicer, stub = flaky
    servicer.failures = 100
    registries = [await NatsKvRegistry.connect(nats_server.url) for _ in range(2)]
    try:
        replica_a, replica_b = (
            ResilientCaller(breakers=BreakerBoard(store=NatsKvBreakerStore(r.jetstream(), namespace="caller")))
            for r in registries)
        policy = target(threshold=2, recovery=30)
        for _ in range(2):
            with pytest.raises(grpc.aio.AioRpcError):
                await replica_a.call("shared", lambda b: stub.GetInfo(pb.GetInfoRequest(), timeout=b),
                                     method=NOT_IDEMPOTENT, target_policy=policy)
        seen = servicer.calls
        with pytest.raises(CircuitOpen):
            await replica_b.call("shared", lambda b: stub.GetInfo(pb.GetInfoRequest(), timeout=b),
                                 method=NOT_IDEMPOTENT, target_policy=policy)
        assert servicer.calls == seen
        await replica_b.breakers.reset("shared")
        assert (await replica_a.breakers.status("shared"))["state"] == "closed"
    finally:
        for registry in registries:
            await registry.close()
