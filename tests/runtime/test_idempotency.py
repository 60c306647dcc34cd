"""Idempotency keys (chassis.idempotency) on real services in process: a keyed write is applied once.

A repeat returns the first response, the same key with another body is ABORTED (409 over REST), the
key may come as `idempotency-key` metadata, concurrent duplicates make one write, and expired keys
are forgotten.
"""

from __future__ import annotations

import asyncio
import uuid

import grpc

from chassis import idempotency
from chassis.testing import InProcess
from protomesh.agent.v1 import agent_service_pb2 as agent_pb
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub
from protomesh.context.v1 import context_service_pb2 as context_pb
from protomesh.context.v1.context_service_pb2_grpc import ContextServiceStub
from services.agent.deps import AgentDeps
from tests.support.errors import async_failure, bad_fields
from tests.support.inprocess import in_process_service

agent = in_process_service("services.agent", env={"AGENT_WORKERS": "1"})
context = in_process_service("services.context", nats=False)


async def _count_agents(svc: InProcess[AgentDeps], name: str) -> int:
    assert svc.replica.pool is not None
    async with svc.replica.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM agents WHERE name = %s", (name,))
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_a_repeat_returns_the_first_response(agent: InProcess[AgentDeps]) -> None:
    agents = agent.stub(AgentServiceStub)
    request = agent_pb.RegisterAgentRequest(name="once", type="calculator", request_id=str(uuid.uuid4()))
    first = await agents.RegisterAgent(request, timeout=10)
    again = await agents.RegisterAgent(request, timeout=10)
    assert again == first  # same id, same timestamps: the recorded answer, not a new write (nor a 409 on the name)
    assert await _count_agents(agent, "once") == 1


async def test_the_same_key_with_another_body_is_aborted(agent: InProcess[AgentDeps]) -> None:
    agents = agent.stub(AgentServiceStub)
    key = str(uuid.uuid4())
    await agents.RegisterAgent(agent_pb.RegisterAgentRequest(name="first", type="calculator", request_id=key),
                               timeout=10)
    error = await async_failure(agents.RegisterAgent,
                                agent_pb.RegisterAgentRequest(name="second", type="calculator", request_id=key))
    assert error.code() == grpc.StatusCode.ABORTED, error
    assert await _count_agents(agent, "second") == 0
    # Keys are per method: the same key on another method is a new request.
    execution = await agents.ExecuteAgent(agent_pb.ExecuteAgentRequest(
        agent_id=(await agents.ListAgents(agent_pb.ListAgentsRequest(), timeout=10)).agents[0].agent_id,
        input={"expression": "1+1"}, request_id=key), timeout=10)
    assert execution.execution.execution_id


async def test_the_key_may_come_as_metadata(agent: InProcess[AgentDeps]) -> None:
    agents = agent.stub(AgentServiceStub)
    request = agent_pb.RegisterAgentRequest(name="by-header", type="calculator")
    headers = ((idempotency.METADATA_KEY, str(uuid.uuid4())),)
    first = await agents.RegisterAgent(request, timeout=10, metadata=headers)
    assert await agents.RegisterAgent(request, timeout=10, metadata=headers) == first
    assert await _count_agents(agent, "by-header") == 1
    try:
        await agents.RegisterAgent(request, timeout=10, metadata=((idempotency.METADATA_KEY, "x" * 65),))
    except grpc.aio.AioRpcError as bad:
        assert bad_fields(bad) == {"Idempotency-Key"}
    else:
        raise AssertionError("a 65-character Idempotency-Key was accepted")


async def test_a_bad_request_id_is_refused_by_the_contract(agent: InProcess[AgentDeps]) -> None:
    agents = agent.stub(AgentServiceStub)
    bad = await async_failure(agents.RegisterAgent,
                              agent_pb.RegisterAgentRequest(name="bad-key", type="calculator", request_id="a b"))
    assert bad_fields(bad) == {"request_id"}


async def test_concurrent_duplicates_make_one_write(agent: InProcess[AgentDeps]) -> None:
    agents = agent.stub(AgentServiceStub)
    request = agent_pb.RegisterAgentRequest(name="racing", type="calculator", request_id=str(uuid.uuid4()))
    replies = await asyncio.gather(*(agents.RegisterAgent(request, timeout=10) for _ in range(8)))
    assert len({r.agent.agent_id for r in replies}) == 1
    assert await _count_agents(agent, "racing") == 1


async def test_an_expired_key_is_forgotten(agent: InProcess[AgentDeps]) -> None:
    agents = agent.stub(AgentServiceStub)
    key = str(uuid.uuid4())
    await agents.RegisterAgent(agent_pb.RegisterAgentRequest(name="old", type="calculator", request_id=key), timeout=10)
    pool = agent.replica.pool
    assert pool is not None
    async with pool.connection() as conn:
        await conn.execute("UPDATE idempotency_keys SET created_at = now() - %s - interval '1 minute' WHERE key = %s",
                           (idempotency.WINDOW, key))
    # Past the window the key names a new request: another body is applied, not refused as a reuse.
    await agents.RegisterAgent(agent_pb.RegisterAgentRequest(name="other", type="calculator", request_id=key),
                               timeout=10)
    assert await _count_agents(agent, "other") == 1
    async with pool.connection() as conn:
        await conn.execute("UPDATE idempotency_keys SET created_at = now() - %s - interval '1 minute'",
                           (idempotency.WINDOW,))
    assert await idempotency.expire(pool) >= 1


async def test_another_service_uses_its_own_schema(context: InProcess[object]) -> None:
    contexts = context.stub(ContextServiceStub)
    request = context_pb.CreateContextRequest(name="keyed", type="session", request_id=str(uuid.uuid4()))
    first = await contexts.CreateContext(request, timeout=10)
    assert await contexts.CreateContext(request, timeout=10) == first
    layer = context_pb.AddLayerRequest(context_id=first.context.context_id, name="l1", layer_type="base",
                                       request_id=str(uuid.uuid4()))
    added = await contexts.AddLayer(layer, timeout=10)
    assert await contexts.AddLayer(layer, timeout=10) == added
    listed = await contexts.ListLayers(context_pb.ListLayersRequest(context_id=first.context.context_id), timeout=10)
    assert len(listed.layers) == 1


async def test_an_answer_not_recorded_yet_means_retry_and_a_long_lost_one_conflict(
        agent: InProcess[AgentDeps]) -> None:
    # A keyed write committed on a replica that stopped before recording its answer: repeats are told to
    # retry (UNAVAILABLE) while the replica may still record it, and ABORTED once the claim is old.
    agents = agent.stub(AgentServiceStub)
    request = agent_pb.RegisterAgentRequest(name="lost", type="calculator", request_id=str(uuid.uuid4()))
    await agents.RegisterAgent(request, timeout=10)
    assert agent.replica.pool is not None
    async with agent.replica.pool.connection() as conn:
        await conn.execute("UPDATE idempotency_keys SET response = NULL WHERE key = %s", (request.request_id,))
    recent = await async_failure(agents.RegisterAgent, request, timeout=idempotency.ANSWER_WAIT + 5)
    assert recent.code() == grpc.StatusCode.UNAVAILABLE and "retry" in (recent.details() or "")
    async with agent.replica.pool.connection() as conn:
        await conn.execute("UPDATE idempotency_keys SET created_at = now() - make_interval(secs => %s) WHERE key = %s",
                           (idempotency.ANSWER_LOST_AFTER + 10, request.request_id))
    lost = await async_failure(agents.RegisterAgent, request, timeout=idempotency.ANSWER_WAIT + 5)
    assert lost.code() == grpc.StatusCode.ABORTED and "read the resource" in (lost.details() or "")
    assert await _count_agents(agent, "lost") == 1
