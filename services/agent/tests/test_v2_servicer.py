"""protomesh.agent.v2.AgentService over a real channel in process, next to v1 on the same replica and data."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
from google.protobuf import field_mask_pb2, struct_pb2

from chassis.testing import InProcess, principal_with_role
from protomesh.agent.v1 import agent_service_pb2 as v1
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub as V1Stub
from protomesh.agent.v2 import agent_pb2
from protomesh.agent.v2 import agent_service_pb2 as pb
from protomesh.agent.v2.agent_service_pb2_grpc import AgentServiceStub
from services.agent.agent_types import AGENT_TYPES
from services.agent.tests.support import violation_texts
from services.agent.v2_messages import RESULT_FIELDS
from tests.support.errors import async_failure

WAIT = 10.0


def _struct(**values: Any) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(values)
    return result


def _name() -> str:
    return f"v2-{uuid.uuid4().hex[:12]}"


async def _create(stub: AgentServiceStub, type_: str = "calculator", **fields: Any) -> agent_pb2.Agent:
    return (await stub.CreateAgent(pb.CreateAgentRequest(name=_name(), type=type_, **fields))).agent


async def _run(stub: AgentServiceStub, agent: agent_pb2.Agent, **input_: Any) -> agent_pb2.Execution:
    request = pb.CreateExecutionRequest(agent_id=agent.agent_id, input=_struct(**input_), wait=True)
    return (await stub.CreateExecution(request, timeout=WAIT)).execution


async def test_v1_and_v2_serve_the_same_agents(shared_agent: InProcess[Any]) -> None:
    stub, old = shared_agent.stub(AgentServiceStub), shared_agent.stub(V1Stub)
    created = await _create(stub, capabilities=["math.extra"], labels={"team": "core"})
    through_v1 = (await old.GetAgent(v1.GetAgentRequest(agent_id=created.agent_id))).agent
    # Wire-identical messages of one stored agent: v2's bytes are v1's.
    assert through_v1.SerializeToString(deterministic=True) == created.SerializeToString(deterministic=True)
    registered = (await old.RegisterAgent(v1.RegisterAgentRequest(name=_name(), type="prime-finder"))).agent
    got = (await stub.GetAgent(pb.GetAgentRequest(agent_id=registered.agent_id))).agent
    assert (got.name, got.type, got.status) == (registered.name, "prime-finder", agent_pb2.AGENT_STATUS_IDLE)


async def test_results_are_typed_where_v1_had_doubles(shared_agent: InProcess[Any]) -> None:
    stub, old = shared_agent.stub(AgentServiceStub), shared_agent.stub(V1Stub)
    primes = await _create(stub, "prime-finder")
    execution = await _run(stub, primes, limit=100_000)
    assert execution.state == agent_pb2.EXECUTION_STATE_SUCCEEDED, execution.error
    assert execution.agent_type == "prime-finder" and execution.result.WhichOneof("kind") == "primes"
    assert (execution.result.primes.count, execution.result.primes.largest) == (9592, 99991)
    assert list(execution.result.primes.first[:4]) == [2, 3, 5, 7]
    # The same execution through v1: a Struct, whose numbers are doubles.
    status = await old.GetAgentStatus(v1.GetAgentStatusRequest(agent_id=primes.agent_id,
                                                                execution_id=execution.execution_id))
    assert status.execution.output["count"] == 9592.0

    calculator = await _create(stub)
    big = await _run(stub, calculator, expression="2**70")
    assert big.result.calculator.exact == str(2**70) and big.result.calculator.value == float(2**70)
    text = await _run(stub, await _create(stub, "text-analyzer"), text="the cat and the hat.", top=1)
    assert text.result.text_analysis.words == 5
    assert [(w.word, w.count) for w in text.result.text_analysis.top_words] == [("the", 2)]
    doc = await _run(stub, await _create(stub, "json-transformer"), document={"a": 1, "b": 2},
                     operations=[{"op": "omit", "keys": ["b"]}])
    assert dict(doc.result.json_transform.document) == {"a": 1.0}


async def test_executions_are_a_resource(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    agent = await _create(stub)
    first = await _run(stub, agent, expression="1+1")
    second = await _run(stub, agent, expression="2+2")
    got = await stub.GetExecution(pb.GetExecutionRequest(agent_id=agent.agent_id, execution_id=first.execution_id))
    assert got.execution.result.calculator.exact == "2"
    listed = await stub.ListExecutions(pb.ListExecutionsRequest(agent_id=agent.agent_id, page_size=1))
    assert [e.execution_id for e in listed.executions] == [second.execution_id]
    assert listed.page_info.total_size == 2 and listed.page_info.next_page_token
    rest = await stub.ListExecutions(pb.ListExecutionsRequest(agent_id=agent.agent_id, page_size=1,
                                                              page_token=listed.page_info.next_page_token))
    assert [e.execution_id for e in rest.executions] == [first.execution_id]
    failed = await stub.ListExecutions(pb.ListExecutionsRequest(agent_id=agent.agent_id,
                                                                state=agent_pb2.EXECUTION_STATE_FAILED))
    assert list(failed.executions) == []

    other = await _create(stub)
    error = await async_failure(stub.GetExecution, pb.GetExecutionRequest(agent_id=other.agent_id,
                                                                           execution_id=first.execution_id))
    assert error.code() == grpc.StatusCode.NOT_FOUND  # another agent's execution is not this agent's
    error = await async_failure(stub.GetExecution, pb.GetExecutionRequest(agent_id=agent.agent_id,
                                                                           execution_id="nope"))
    assert "execution_id" in violation_texts(error)


async def test_cancel_records_a_cancel_reason(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    agent = await _create(stub, "prime-finder")
    started = (await stub.CreateExecution(pb.CreateExecutionRequest(
        agent_id=agent.agent_id, input=_struct(limit=10_000_000_000)))).execution
    cancelled = (await stub.CancelExecution(pb.CancelExecutionRequest(
        agent_id=agent.agent_id, execution_id=started.execution_id, reason="no longer needed"))).execution
    assert cancelled.state == agent_pb2.EXECUTION_STATE_CANCELLED
    assert (cancelled.cancel_reason, cancelled.error) == ("no longer needed", "")
    again = await async_failure(stub.CancelExecution, pb.CancelExecutionRequest(
        agent_id=agent.agent_id, execution_id=started.execution_id))
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_list_filters_on_every_capability(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    tag = f"cap.{uuid.uuid4().hex[:8]}"
    both = await _create(stub, capabilities=[tag, "x.two"])
    await _create(stub, capabilities=[tag])
    listed = await stub.ListAgents(pb.ListAgentsRequest(capabilities=[tag, "x.two"]))
    assert [a.agent_id for a in listed.agents] == [both.agent_id]
    error = await async_failure(stub.ListAgents, pb.ListAgentsRequest(type="no-such-type"))
    assert "type" in violation_texts(error)


async def test_update_delete_and_idempotent_create(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    key = str(uuid.uuid4())
    request = pb.CreateAgentRequest(name=_name(), type="calculator", request_id=key)
    first = (await stub.CreateAgent(request)).agent
    assert (await stub.CreateAgent(request)).agent.agent_id == first.agent_id  # the repeat gets the first answer
    changed = (await stub.UpdateAgent(pb.UpdateAgentRequest(
        agent_id=first.agent_id, description="", update_mask=field_mask_pb2.FieldMask(paths=["description"])))).agent
    assert changed.description == "" and changed.update_time.ToDatetime() >= first.update_time.ToDatetime()
    deleted = await stub.DeleteAgent(pb.DeleteAgentRequest(agent_id=first.agent_id))
    assert deleted.agent_id == first.agent_id
    gone = await async_failure(stub.GetAgent, pb.GetAgentRequest(agent_id=first.agent_id))
    assert gone.code() == grpc.StatusCode.NOT_FOUND


async def test_access_is_declared_for_v2_too(shared_agent: InProcess[Any]) -> None:
    viewer = shared_agent.stub(AgentServiceStub, principal=principal_with_role("viewer"))
    assert (await viewer.ListAgentTypes(pb.ListAgentTypesRequest())).agent_types
    refused = await async_failure(viewer.CreateAgent, pb.CreateAgentRequest(name=_name(), type="calculator"))
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    types = {t.name: t.result_field for t in (await viewer.ListAgentTypes(pb.ListAgentTypesRequest())).agent_types}
    assert types["prime-finder"] == "primes"
    info = await viewer.GetInfo(pb.GetInfoRequest())
    assert info.info.name == "agent" and "calculator" in info.agent_types


def test_every_agent_type_has_a_typed_result() -> None:
    oneof = {f.name for f in agent_pb2.ExecutionResult.DESCRIPTOR.oneofs_by_name["kind"].fields}
    assert set(RESULT_FIELDS) == set(AGENT_TYPES)
    assert {field for field, _ in RESULT_FIELDS.values()} == oneof
