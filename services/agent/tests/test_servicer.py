"""AgentService over a real channel in process: each RPC's happy path and its errors.

Field rules are in test_rules.py; here are the answers that need the servicer and the database.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2
from google.protobuf.message import Message

from chassis.testing import InProcess
from protomesh.agent.v1 import agent_pb2
from protomesh.agent.v1 import agent_service_pb2 as pb
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub
from services.agent.tests.support import register, violation_texts
from tests.support.errors import async_failure

WAIT = 10.0
"""Seconds an ExecuteAgent(wait=true) call may take (the servicer answers a little before its deadline)."""


def _struct(**values: Any) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(values)
    return result


def _name() -> str:
    """A name no other test of the shared service uses."""
    return f"agent-{uuid.uuid4().hex[:12]}"


async def _execute(stub: AgentServiceStub, agent: agent_pb2.Agent, **input_: Any) -> agent_pb2.Execution:
    request = pb.ExecuteAgentRequest(agent_id=agent.agent_id, input=_struct(**input_), wait=True)
    return (await stub.ExecuteAgent(request, timeout=WAIT)).execution


# --- register, get, list ---------------------------------------------------------------------------


async def test_register_get_and_list_round_trip(agent: InProcess[Any]) -> None:
    stub = agent.stub(AgentServiceStub)
    created = await register(stub, "Round-Trip", description="adds things", capabilities=["math.extra"],
                             labels={"team": "core"}, config=_struct(expression="1+1"))
    assert uuid.UUID(created.agent_id)
    assert created.status == agent_pb2.AGENT_STATUS_IDLE
    assert list(created.capabilities) == ["math.evaluate", "math.extra"]  # the type's own, then the extra
    assert (await stub.GetAgent(pb.GetAgentRequest(agent_id=created.agent_id))).agent == created
    listed = await stub.ListAgents(pb.ListAgentsRequest(type="calculator", name_contains="round-TRIP"))
    assert [a.agent_id for a in listed.agents] == [created.agent_id]
    assert listed.page_info.total_size == 1 and listed.page_info.next_page_token == ""


async def test_a_taken_name_is_already_exists_whatever_its_case(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    name = _name()
    await register(stub, name)
    error = await async_failure(stub.RegisterAgent, pb.RegisterAgentRequest(name=name.upper(), type="calculator"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


# --- paging ----------------------------------------------------------------------------------------


async def test_pages_walk_every_agent_once_newest_first(agent: InProcess[Any]) -> None:
    stub = agent.stub(AgentServiceStub)
    ids = [(await register(stub, f"page-{i}", "json-transformer")).agent_id for i in range(7)]
    await register(stub, "not-listed")  # another type: filtered out
    seen: list[str] = []
    token = ""
    while True:
        reply = await stub.ListAgents(pb.ListAgentsRequest(type="json-transformer", page_size=3, page_token=token))
        assert reply.page_info.total_size == 7
        seen += [a.agent_id for a in reply.agents]
        token = reply.page_info.next_page_token
        if not token:
            break
    assert seen == ids[::-1]


async def _second_page_token(stub: AgentServiceStub, **filters: Any) -> str:
    for i in range(3):
        await register(stub, f"paged-{i}", "text-analyzer")
    reply = await stub.ListAgents(pb.ListAgentsRequest(page_size=1, **filters))
    assert reply.page_info.next_page_token
    return reply.page_info.next_page_token


async def test_a_tampered_page_token_is_refused(agent: InProcess[Any]) -> None:
    stub = agent.stub(AgentServiceStub)
    token = await _second_page_token(stub)
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (tampered, token[:-5], "garbage"):
        error = await async_failure(stub.ListAgents, pb.ListAgentsRequest(page_size=1, page_token=bad))
        assert set(violation_texts(error)) == {"page_token"}, bad


async def test_a_page_token_is_refused_with_other_filters(agent: InProcess[Any]) -> None:
    stub = agent.stub(AgentServiceStub)
    token = await _second_page_token(stub, type="text-analyzer")
    for other in (pb.ListAgentsRequest(type="calculator"), pb.ListAgentsRequest(name_contains="paged"),
                  pb.ListAgentsRequest(type="text-analyzer", status=agent_pb2.AGENT_STATUS_IDLE)):
        other.page_size, other.page_token = 1, token
        error = await async_failure(stub.ListAgents, other)
        assert "other filters" in violation_texts(error)["page_token"]
    # The same filters with another page size go on from the token.
    reply = await stub.ListAgents(pb.ListAgentsRequest(type="text-analyzer", page_size=5, page_token=token))
    assert len(reply.agents) == 2


# --- update ----------------------------------------------------------------------------------------


async def test_update_replaces_only_the_fields_given(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    created = await register(stub, _name(), description="before", labels={"a": "1"})
    updated = (await stub.UpdateAgent(pb.UpdateAgentRequest(agent_id=created.agent_id, description="after",
                                                            capabilities=["extra"]))).agent
    assert updated.description == "after" and dict(updated.labels) == {"a": "1"}
    assert list(updated.capabilities) == ["extra", "math.evaluate"]  # the type's own are kept
    assert updated.update_time.ToDatetime() > created.update_time.ToDatetime()


async def test_a_mask_clears_its_paths_and_repeats_are_dropped(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    created = await register(stub, _name(), description="kept", labels={"a": "1"})
    mask = field_mask_pb2.FieldMask(paths=["labels", "labels"])
    updated = (await stub.UpdateAgent(pb.UpdateAgentRequest(agent_id=created.agent_id, update_mask=mask,
                                                            description="ignored: not in the mask"))).agent
    assert dict(updated.labels) == {} and updated.description == "kept"


async def test_a_mask_names_unknown_and_unchangeable_paths(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    created = await register(stub, _name())
    mask = field_mask_pb2.FieldMask(paths=["description", "colour", "type", "colour"])
    error = await async_failure(stub.UpdateAgent, pb.UpdateAgentRequest(agent_id=created.agent_id, update_mask=mask))
    texts = violation_texts(error)
    assert set(texts) == {"update_mask.paths[1]", "update_mask.paths[2]"}
    assert "unknown field 'colour'" in texts["update_mask.paths[1]"]
    assert "'type' cannot be changed" in texts["update_mask.paths[2]"]


async def test_an_update_that_changes_nothing_names_update_mask(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    created = await register(stub, _name())
    error = await async_failure(stub.UpdateAgent, pb.UpdateAgentRequest(agent_id=created.agent_id))
    assert set(violation_texts(error)) == {"update_mask"}


async def test_renaming_to_a_taken_name_is_already_exists(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    taken, created = _name(), await register(stub, _name())
    await register(stub, taken)
    error = await async_failure(stub.UpdateAgent, pb.UpdateAgentRequest(agent_id=created.agent_id, name=taken))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


# --- unknown ids -----------------------------------------------------------------------------------

_BY_AGENT_ID: list[tuple[str, type[Message]]] = [
    ("GetAgent", pb.GetAgentRequest), ("UpdateAgent", pb.UpdateAgentRequest),
    ("DeregisterAgent", pb.DeregisterAgentRequest), ("ExecuteAgent", pb.ExecuteAgentRequest),
    ("GetAgentStatus", pb.GetAgentStatusRequest), ("StopAgent", pb.StopAgentRequest),
]


@pytest.mark.parametrize(("agent_id", "code"), [(str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND),
                                               ("not-an-id", grpc.StatusCode.INVALID_ARGUMENT)],
                         ids=["unknown", "malformed"])
@pytest.mark.parametrize(("rpc", "request_type"), _BY_AGENT_ID, ids=[rpc for rpc, _ in _BY_AGENT_ID])
async def test_an_unknown_agent_is_not_found_a_malformed_id_is_invalid(
        shared_agent: InProcess[Any], rpc: str, request_type: type[Message], agent_id: str,
        code: grpc.StatusCode) -> None:
    request = request_type(agent_id=agent_id)
    if isinstance(request, pb.UpdateAgentRequest):
        request.description = "something to update"
    error = await async_failure(getattr(shared_agent.stub(AgentServiceStub), rpc), request)
    assert error.code() == code


async def test_an_unknown_or_foreign_execution_is_not_found(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    mine, other = await register(stub, _name()), await register(stub, _name())
    foreign = (await _execute(stub, other, expression="1+1")).execution_id
    for execution_id, code in ((str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND), (foreign, grpc.StatusCode.NOT_FOUND),
                               ("not-an-id", grpc.StatusCode.INVALID_ARGUMENT)):
        for call, request in ((stub.GetAgentStatus, pb.GetAgentStatusRequest), (stub.StopAgent, pb.StopAgentRequest)):
            error = await async_failure(call, request(agent_id=mine.agent_id, execution_id=execution_id))
            assert error.code() == code, (call, execution_id)


async def test_deregister_removes_the_agent(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    created = await register(stub, _name())
    reply = await stub.DeregisterAgent(pb.DeregisterAgentRequest(agent_id=created.agent_id))
    assert reply.agent_id == created.agent_id and reply.stopped_execution_id == ""
    for call, request in ((stub.GetAgent, pb.GetAgentRequest), (stub.DeregisterAgent, pb.DeregisterAgentRequest)):
        error = await async_failure(call, request(agent_id=created.agent_id))
        assert error.code() == grpc.StatusCode.NOT_FOUND


# --- executions ------------------------------------------------------------------------------------


async def test_execute_waits_for_the_result_and_status_reads_it(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    created = await register(stub, _name())
    execution = await _execute(stub, created, expression="2 * (3 + 4) ** 2 - sqrt(16)")
    assert execution.state == agent_pb2.EXECUTION_STATE_SUCCEEDED
    assert execution.output["result"] == 94
    latest = await stub.GetAgentStatus(pb.GetAgentStatusRequest(agent_id=created.agent_id))
    assert latest.status == agent_pb2.AGENT_STATUS_IDLE and latest.execution.execution_id == execution.execution_id
    by_id = await stub.GetAgentStatus(pb.GetAgentStatusRequest(agent_id=created.agent_id,
                                                               execution_id=execution.execution_id))
    assert by_id.execution == latest.execution


async def test_the_agents_config_is_merged_under_the_input(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    created = await register(stub, _name(), config=_struct(expression="6 * 7"))
    assert (await _execute(stub, created)).output["result"] == 42
    assert (await _execute(stub, created, expression="1 + 1")).output["result"] == 2


async def test_bad_input_is_invalid_argument_naming_the_input_field(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    created = await register(stub, _name(), "prime-finder")
    request = pb.ExecuteAgentRequest(agent_id=created.agent_id, input=_struct(limit="many"))
    assert set(violation_texts(await async_failure(stub.ExecuteAgent, request))) == {"input.limit"}


async def test_a_failing_execution_records_its_error(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    execution = await _execute(stub, await register(stub, _name()), expression="1/0")
    assert execution.state == agent_pb2.EXECUTION_STATE_FAILED and "division by zero" in execution.error


async def test_stop_is_refused_when_nothing_runs(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    created = await register(stub, _name())
    error = await async_failure(stub.StopAgent, pb.StopAgentRequest(agent_id=created.agent_id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "never run" in (error.details() or "")
    done = await _execute(stub, created, expression="1+1")
    error = await async_failure(stub.StopAgent, pb.StopAgentRequest(agent_id=created.agent_id,
                                                                    execution_id=done.execution_id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "SUCCEEDED" in (error.details() or "")


async def test_a_running_execution_is_stopped_and_blocks_another(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    created = await register(stub, _name(), "prime-finder")
    started = (await stub.ExecuteAgent(pb.ExecuteAgentRequest(agent_id=created.agent_id,
                                                              input=_struct(limit=9_000_000_000)))).execution
    busy = await async_failure(stub.ExecuteAgent, pb.ExecuteAgentRequest(agent_id=created.agent_id,
                                                                         input=_struct(limit=10)))
    assert busy.code() == grpc.StatusCode.FAILED_PRECONDITION and started.execution_id in (busy.details() or "")
    status = await stub.GetAgentStatus(pb.GetAgentStatusRequest(agent_id=created.agent_id))
    assert status.status == agent_pb2.AGENT_STATUS_BUSY
    stopped = (await stub.StopAgent(pb.StopAgentRequest(agent_id=created.agent_id, reason="test over"))).execution
    assert stopped.state == agent_pb2.EXECUTION_STATE_STOPPED and stopped.error == "test over"
    assert stopped.execution_id == started.execution_id


# --- discovery, types, info ------------------------------------------------------------------------


async def test_discover_by_type_capability_and_status(agent: InProcess[Any]) -> None:
    stub = agent.stub(AgentServiceStub)
    dutch = await register(stub, "disc-text", "text-analyzer", capabilities=["lang.nl"])
    await register(stub, "disc-text-2", "text-analyzer")
    await register(stub, "disc-calc")
    found = await stub.DiscoverAgents(pb.DiscoverAgentsRequest(type="text-analyzer",
                                                               capabilities=["lang.nl", "text.analyze"]))
    assert [a.agent_id for a in found.agents] == [dutch.agent_id]
    idle = await stub.DiscoverAgents(pb.DiscoverAgentsRequest(status=agent_pb2.AGENT_STATUS_IDLE))
    assert [a.name for a in idle.agents] == ["disc-calc", "disc-text", "disc-text-2"]  # by name
    busy = await stub.DiscoverAgents(pb.DiscoverAgentsRequest(status=agent_pb2.AGENT_STATUS_BUSY))
    assert list(busy.agents) == []
    assert len((await stub.DiscoverAgents(pb.DiscoverAgentsRequest(limit=2))).agents) == 2


async def test_agent_types_and_info(shared_agent: InProcess[Any]) -> None:
    stub = shared_agent.stub(AgentServiceStub)
    types = await stub.ListAgentTypes(pb.ListAgentTypesRequest())
    names = {t.name for t in types.agent_types}
    assert names == {"calculator", "text-analyzer", "prime-finder", "json-transformer", "field-report"}
    info = await stub.GetInfo(pb.GetInfoRequest())
    assert info.info.name == "agent" and set(info.agent_types) == names
    assert info.agent_count >= 0
    live = await stub.GetLiveness(pb.GetLivenessRequest())
    assert live.state != 0
