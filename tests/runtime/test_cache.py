"""The cache the contracts declare (chassis.caching), on two real agent replicas in process.

Both replicas share one PostgreSQL database and one nats-server, as two replicas of the mesh do; no Envoy
(the 304 the gateway makes of `x-protomesh-not-modified` is in tests/e2e/test_caching.py). What must hold:
a read after an acknowledged write, on either replica, never gives the old answer, even while other reads
keep the cache hot; answers are kept per organization; ETag and Cache-Control come with every answer; and
a write outside any call (a task worker's) is invalidated when the relay publishes its event.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from chassis import caching, metrics
from chassis.contracts import mesh_grpc_services
from chassis.events import outbox
from chassis.testing import TEST_PLATFORM_ADMIN, InProcess, principal_with_role, scratch_database, serve_in_process
from protomesh.agent.v1 import agent_service_pb2 as pb
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub
from protomesh.agent.v1.events_pb2 import AgentUpdated
from services.agent.deps import AgentDeps
from tests.support.infra_fixtures import fresh_nats, session_postgres
from tests.support.inprocess import build_service

GET_AGENT = "/protomesh.agent.v1.AgentService/GetAgent"


@pytest.fixture
async def replicas(pytestconfig: pytest.Config) -> AsyncIterator[tuple[InProcess[AgentDeps], InProcess[AgentDeps]]]:
    """Two agent replicas on one database and one nats-server."""
    async with contextlib.AsyncExitStack() as stack:
        nats = await stack.enter_async_context(fresh_nats())
        database = await stack.enter_async_context(scratch_database(session_postgres(pytestconfig).url, "agent"))
        served = []
        for _ in range(2):
            served.append(await stack.enter_async_context(serve_in_process(
                build_service("services.agent"), database_url=database, nats_url=nats.url, fresh_database=False,
                env={"AGENT_WORKERS": "1"})))
        yield served[0], served[1]


def _lookups(result: str) -> float:
    value = metrics.REGISTRY.get_sample_value("protomesh_cache_lookups_total",
                                              {"service": "agent", "method": GET_AGENT, "result": result})
    return value or 0.0


async def _get(stub: AgentServiceStub, agent_id: str, if_none_match: str = "") -> tuple[pb.GetAgentResponse,
                                                                                         dict[str, Any]]:
    call = stub.GetAgent(pb.GetAgentRequest(agent_id=agent_id), timeout=10,
                         metadata=(("if-none-match", if_none_match),) if if_none_match else None)
    headers = dict(await call.initial_metadata() or ())
    return await call, headers


async def test_answers_carry_etag_and_cache_control_and_are_kept(replicas: Any) -> None:
    a, _ = replicas
    agents = a.stub(AgentServiceStub)
    agent = (await agents.RegisterAgent(pb.RegisterAgentRequest(name="cached", type="calculator"), timeout=10)).agent
    await _published(a)  # AgentRegistered, whose publication invalidates once more
    hits = _lookups("hit")
    first, headers = await _get(agents, agent.agent_id)
    again, headers_again = await _get(agents, agent.agent_id)
    assert first == again
    assert _lookups("hit") == hits + 1  # the first read computed it, the second was given from the cache
    for size in ("protomesh_cache_entries", "protomesh_cache_bytes"):
        assert (metrics.REGISTRY.get_sample_value(size, {"service": "agent"}) or 0) > 0, size
    assert headers["etag"].startswith('"') and headers["etag"] == headers_again["etag"]
    assert headers["cache-control"] == "private, no-cache"
    assert caching.NOT_MODIFIED_HEADER not in headers
    _, matched = await _get(agents, agent.agent_id, if_none_match=f'"nope", W/{headers["etag"]}')
    assert matched[caching.NOT_MODIFIED_HEADER] == "1"
    types = agents.ListAgentTypes(pb.ListAgentTypesRequest(), timeout=10)
    assert dict(await types.initial_metadata() or ())["cache-control"] == "private, max-age=60"


async def test_a_caller_asking_no_cache_gets_the_read_run(replicas: Any) -> None:
    a, _ = replicas
    agents = a.stub(AgentServiceStub)
    agent = (await agents.RegisterAgent(pb.RegisterAgentRequest(name="fresh", type="calculator"), timeout=10)).agent
    await _published(a)
    await _get(agents, agent.agent_id)  # now kept
    hits, bypasses = _lookups("hit"), _lookups("bypass")
    for directive in ("no-cache", "max-age=0, No-Store"):
        call = agents.GetAgent(pb.GetAgentRequest(agent_id=agent.agent_id), timeout=10,
                               metadata=(("cache-control", directive),))
        assert (await call).agent == agent
        assert dict(await call.initial_metadata() or ())["etag"].startswith('"')
    assert (_lookups("hit"), _lookups("bypass")) == (hits, bypasses + 2)
    await _get(agents, agent.agent_id)
    assert _lookups("hit") == hits + 1  # the entry is still there for everyone else


async def test_another_organization_never_gets_the_kept_answer(replicas: Any) -> None:
    a, _ = replicas
    agents = a.stub(AgentServiceStub)
    agent = (await agents.RegisterAgent(pb.RegisterAgentRequest(name="mine", type="calculator"), timeout=10)).agent
    await _get(agents, agent.agent_id)
    await _get(agents, agent.agent_id)  # kept now
    stranger = a.stub(AgentServiceStub, principal=principal_with_role("viewer", organization="org-other"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stranger.GetAgent(pb.GetAgentRequest(agent_id=agent.agent_id), timeout=10)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


async def test_no_stale_read_after_a_write_on_either_replica_under_load(replicas: Any) -> None:
    a, b = replicas
    stubs = [a.stub(AgentServiceStub), b.stub(AgentServiceStub)]
    agent = (await stubs[0].RegisterAgent(pb.RegisterAgentRequest(name="raw", type="calculator"), timeout=10)).agent
    stop = asyncio.Event()

    async def keep_hot(stub: AgentServiceStub) -> int:
        # Other readers keep both replicas' caches full of the current answer while the writes go on.
        reads = 0
        while not stop.is_set() and reads < 5_000:
            await stub.GetAgent(pb.GetAgentRequest(agent_id=agent.agent_id), timeout=10)
            reads += 1
        return reads

    readers = [asyncio.create_task(keep_hot(stub)) for stub in stubs for _ in range(2)]
    stale = []
    rng = random.Random(7)
    hits_before = _lookups("hit")
    try:
        for round_ in range(40):
            writer, reader = rng.sample(stubs, 2) if round_ % 2 else (stubs[0], stubs[0])
            description = f"round {round_} {uuid.uuid4().hex[:6]}"
            await writer.UpdateAgent(pb.UpdateAgentRequest(agent_id=agent.agent_id, description=description),
                                     timeout=10)
            for stub in (reader, *stubs):
                seen = (await stub.GetAgent(pb.GetAgentRequest(agent_id=agent.agent_id), timeout=10)).agent
                if seen.description != description:
                    stale.append((round_, seen.description, description))
    finally:
        stop.set()
        reads = await asyncio.gather(*readers)
    assert not stale, stale[:5]
    assert sum(reads) > 0
    assert _lookups("hit") > hits_before  # the cache was in use, not bypassed


async def test_a_write_outside_any_call_is_invalidated_by_its_published_event(replicas: Any) -> None:
    a, b = replicas
    agents = a.stub(AgentServiceStub)
    agent = (await agents.RegisterAgent(pb.RegisterAgentRequest(name="worker", type="calculator"), timeout=10)).agent
    for served in (a, b):
        await _get(served.stub(AgentServiceStub), agent.agent_id)
    assert a.replica.pool is not None
    # As a task worker does: the row and its event in one transaction, with no call to fence it.
    async with a.replica.pool.connection() as conn, conn.transaction():
        await conn.execute("UPDATE agents SET description = 'changed by a worker' WHERE id = %s",
                           (uuid.UUID(agent.agent_id),))
        event = AgentUpdated(agent_id=agent.agent_id, name=agent.name, type=agent.type, updated_fields=["description"],
                             organization_id=agent.organization_id)
        await outbox.add(conn, event, subject=agent.agent_id, source="agent")
    for served in (a, b):
        stub = served.stub(AgentServiceStub)
        for _ in range(200):  # the relay publishes within milliseconds; bounded at ~10 s
            if (await _get(stub, agent.agent_id))[0].agent.description == "changed by a worker":
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the published event did not invalidate the kept answer")


async def _published(served: InProcess[AgentDeps]) -> None:
    """Until the relay has published every queued event (bounded at ~10 s)."""
    assert served.replica.pool is not None
    for _ in range(200):
        async with served.replica.pool.connection() as conn:
            row = await (await conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL")).fetchone()
        if row is not None and row[0] == 0:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the relay did not publish the queued events")
    await asyncio.sleep(0.1)  # the relay's hook runs its invalidation as a task of its own


async def test_events_of_other_packages_leave_the_cache_alone(replicas: Any) -> None:
    # Every replica's outbox also carries audit records: a platform admin's every read is audited. Publishing
    # them must not invalidate anything, or a platform admin's reads (across organizations: the scope every
    # write bumps) would never hit.
    a, _ = replicas
    agent = (await a.stub(AgentServiceStub).RegisterAgent(pb.RegisterAgentRequest(name="audited", type="calculator"),
                                                          timeout=10)).agent
    await _published(a)  # AgentRegistered, whose publication invalidates once more
    admin = a.stub(AgentServiceStub, principal=TEST_PLATFORM_ADMIN)
    await _get(admin, agent.agent_id)  # computed and kept; its audit record queued
    await _published(a)
    hits = _lookups("hit")
    await _get(admin, agent.agent_id)
    assert _lookups("hit") == hits + 1


def test_every_declaration_in_the_contracts_is_valid() -> None:
    rules = caching.cached_methods(mesh_grpc_services())
    assert GET_AGENT in {rule.method for rule in rules}


def _method(options: descriptor_pb2.MethodOptions, *, streaming: bool = False) -> Any:
    """A method of a throwaway contract carrying `options`."""
    file = descriptor_pb2.FileDescriptorProto(name=f"t{uuid.uuid4().hex}.proto", package="t", syntax="proto3")
    file.message_type.add(name="M")
    service = file.service.add(name="S")
    service.method.add(name="Read", input_type=".t.M", output_type=".t.M", options=options, server_streaming=streaming)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return pool.FindMethodByName("t.S.Read")


@pytest.mark.parametrize(("level", "ttl", "max_age", "streaming", "refusal"), [
    (descriptor_pb2.MethodOptions.IDEMPOTENT, 30, 0, False, "not a read"),
    (descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS, 0, 0, False, "ttl must be above 0"),
    (descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS, 7200, 0, False, "at most 3600"),
    (descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS, 30, 60, False, "client_max_age"),
    (descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS, 30, 0, True, "streams"),
])
def test_a_declaration_that_cannot_hold_is_refused(level: int, ttl: int, max_age: int, streaming: bool,
                                                   refusal: str) -> None:
    options = descriptor_pb2.MethodOptions(idempotency_level=level)  # type: ignore[arg-type]
    declared = options.Extensions[caching.rules.CACHE_OPTION]
    declared.ttl.seconds = ttl
    declared.client_max_age.seconds = max_age
    with pytest.raises(caching.CacheDeclarationError, match=refusal):
        caching.rule_of(_method(options, streaming=streaming))


def test_if_none_match() -> None:
    tag = caching.etag_of(b"answer")
    assert caching.matches(tag, tag) and caching.matches("*", tag) and caching.matches(f'"x", W/{tag}', tag)
    assert not caching.matches('"x"', tag) and not caching.matches(None, tag)
