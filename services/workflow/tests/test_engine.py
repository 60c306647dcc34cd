"""The engine over real PostgreSQL and a real agent replica: each task kind, timers on a manual clock,
retries and their timing, sagas (compensation order, a compensation that keeps failing), cancel,
terminate, retry, signals, revisions, and a replica stopped mid-workflow."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import psycopg
import pytest
from google.protobuf import struct_pb2

from protomesh.agent.v1 import agent_service_pb2 as agent_pb
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub
from protomesh.workflow.v1 import workflow_pb2 as wf
from protomesh.workflow.v1 import workflow_service_pb2 as pb
from protomesh.workflow.v1.workflow_service_pb2_grpc import WorkflowServiceStub
from services.workflow.engine.checkpoints import Checkpoints
from services.workflow.engine.clock import ManualClock
from services.workflow.listening import CONSUMER_NAME
from services.workflow.tests.conftest import Mesh, workflow_replica
from services.workflow.tests.support import document, history, register, start, unique, wait_for

REGISTER = "protomesh.agent.v1.AgentService/RegisterAgent"
EXECUTE = "protomesh.agent.v1.AgentService/ExecuteAgent"
DEREGISTER = "protomesh.agent.v1.AgentService/DeregisterAgent"


def _stub(mesh: Mesh) -> WorkflowServiceStub:
    return mesh.workflow.stub(WorkflowServiceStub)


def _clock(mesh: Mesh) -> ManualClock:
    clock = mesh.workflow.deps.clock
    assert isinstance(clock, ManualClock)
    return clock


async def test_calls_a_mesh_method_with_set_switch_and_for(mesh: Mesh) -> None:
    stub = _stub(mesh)
    name = unique("calc")
    source = document(name, [
        {"register": {"call": REGISTER, "with": {"name": "${ $input.agent }", "type": "calculator"},
                      "export": {"as": {"agent_id": "${ .agent.agent_id }"}}}},
        {"each": {"for": {"each": "expr", "in": "${ $input.expressions }"},
                  "do": [{"compute": {"call": EXECUTE, "with": {"agent_id": "${ $context.agent_id }",
                                                                "input": {"expression": "${ $expr }"}, "wait": True},
                                      "export": {"as": "${ $context + {results: (($context.results // []) + "
                                                       "[.execution.output.result])} }"}}}]}},
        {"route": {"switch": [{"big": {"when": "${ ($context.results | add) > 100 }", "then": "big"}},
                              {"small": {"then": "small"}}]}},
        {"big": {"set": {"size": "big", "total": "${ $context.results | add }"}, "then": "end"}},
        {"small": {"set": {"size": "small", "total": "${ $context.results | add }"}}},
    ])
    await register(stub, source)
    execution_id = await start(stub, name, {"agent": unique("wf-calc"), "expressions": ["2*3", "10**2", "1+1"]})
    execution = await wait_for(stub, execution_id)
    assert execution.status == wf.EXECUTION_STATUS_SUCCEEDED, execution.error
    assert dict(execution.output) == {"size": "big", "total": 108.0}
    paths = [t.path for t in await history(stub, execution_id)]
    assert "do[1].each#2.do[0].compute" in paths and "do[4].small" not in paths


async def test_a_day_long_wait_finishes_when_the_clock_moves(mesh: Mesh) -> None:
    stub = _stub(mesh)
    name = await register(stub, document(unique("sleepy"), [{"nap": {"wait": "P1D"}}, {"done": {"set": {"ok": True}}}]))
    execution_id = await start(stub, name)
    waiting = await wait_for(stub, execution_id, waiting=True)
    assert waiting.waiting.startswith("timer until")
    _clock(mesh).advance(86400)
    assert (await wait_for(stub, execution_id)).status == wf.EXECUTION_STATUS_SUCCEEDED


async def test_retry_with_exponential_backoff_then_catch(mesh: Mesh) -> None:
    stub = _stub(mesh)
    name = await register(stub, document(unique("retry"), [
        {"attempt": {"try": [{"fail": {"raise": {"error": {"type": "transient", "status": 503, "title": "down"}}}}],
                     "catch": {"errors": {"with": {"status": 503}}, "as": "problem",
                               "retry": {"delay": {"seconds": 10}, "backoff": {"exponential": {}},
                                         "limit": {"attempt": {"count": 3}}},
                               "do": [{"fallback": {"set": {"caught": "${ $problem.title }"}}}]}}},
    ]))
    execution_id = await start(stub, name)
    clock, previous = _clock(mesh), ""
    for _ in range(2):
        previous = (await wait_for(stub, execution_id, waiting=True, after=previous)).waiting
        clock.advance(60)
    execution = await wait_for(stub, execution_id)
    assert execution.status == wf.EXECUTION_STATUS_SUCCEEDED
    assert dict(execution.output) == {"caught": "down"}
    tasks = await history(stub, execution_id)
    raised = [t for t in tasks if t.path == "do[0].attempt.try[0].fail"]
    assert [t.attempt for t in raised] == [1, 2, 3]
    backoffs = [t for t in tasks if t.kind == "backoff"]
    assert [t.input.struct_value["seconds"] for t in backoffs] == [10.0, 20.0]  # exponential: 10 s, then 20 s


async def test_saga_compensates_completed_tasks_in_reverse_order(mesh: Mesh) -> None:
    stub = _stub(mesh)
    agents = mesh.agent.stub(AgentServiceStub)
    name = await register(stub, document(unique("saga"), [
        {"first": {"call": REGISTER, "with": {"name": "${ $input.prefix + \"-1\" }", "type": "calculator"},
                   "compensate": [{"undo": {"call": DEREGISTER, "with": {"agent_id": "${ .agent.agent_id }"}}}]}},
        {"second": {"call": REGISTER, "with": {"name": "${ $input.prefix + \"-2\" }", "type": "calculator"},
                    "compensate": [{"undo": {"call": DEREGISTER, "with": {"agent_id": "${ .agent.agent_id }"}}}]}},
        {"broken": {"raise": {"error": {"type": "payment", "status": 402, "title": "card declined"}}}},
    ]))
    prefix = unique("saga-agent")
    execution_id = await start(stub, name, {"prefix": prefix})
    execution = await wait_for(stub, execution_id)
    assert execution.status == wf.EXECUTION_STATUS_FAILED
    assert execution.compensated and execution.error.instance == "do[2].broken"
    undone = [t.path for t in await history(stub, execution_id) if t.compensation and t.kind == "call"]
    assert undone == ["do[1].second.compensate[0].undo", "do[0].first.compensate[0].undo"]
    listed = await agents.ListAgents(agent_pb.ListAgentsRequest(name_contains=prefix))
    assert list(listed.agents) == []


async def test_a_compensation_that_keeps_failing_needs_attention(mesh: Mesh) -> None:
    stub = _stub(mesh)
    name = await register(stub, document(unique("stuck"), [
        {"book": {"set": {"booked": True},
                  "compensate": [{"unbook": {"raise": {"error": {"type": "x", "status": 500,
                                                                 "title": "cannot undo"}}}}]}},
        {"broken": {"raise": {"error": {"type": "x", "status": 500, "title": "boom"}}}},
    ]))
    execution_id = await start(stub, name)
    clock, previous = _clock(mesh), ""
    for _ in range(2):  # two backoffs between the three attempts
        previous = (await wait_for(stub, execution_id, waiting=True, after=previous)).waiting
        clock.advance(3600)
    execution = await wait_for(stub, execution_id)
    assert execution.status == wf.EXECUTION_STATUS_NEEDS_ATTENTION
    assert "cannot undo" in execution.error.detail
    attempts = [t.attempt for t in await history(stub, execution_id) if t.path == "do[0].book.compensate[0].unbook"]
    assert attempts == [1, 2, 3]


async def test_cancel_runs_compensations_and_terminate_does_not(mesh: Mesh) -> None:
    stub = _stub(mesh)
    name = await register(stub, document(unique("cancel"), [
        {"book": {"set": {"booked": True}, "compensate": [{"unbook": {"set": {"booked": False}}}]}},
        {"hold": {"wait": "PT1H"}},
    ]))
    cancelled, terminated = await start(stub, name), await start(stub, name)
    for execution_id in (cancelled, terminated):
        await wait_for(stub, execution_id, waiting=True)
    await stub.CancelExecution(pb.CancelExecutionRequest(execution_id=cancelled, reason="customer asked"))
    await stub.TerminateExecution(pb.TerminateExecutionRequest(execution_id=terminated, reason="operator"))
    assert (await wait_for(stub, cancelled)).status == wf.EXECUTION_STATUS_CANCELLED
    assert (await wait_for(stub, terminated)).status == wf.EXECUTION_STATUS_TERMINATED
    assert any(t.compensation for t in await history(stub, cancelled))
    assert not any(t.compensation for t in await history(stub, terminated))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CancelExecution(pb.CancelExecutionRequest(execution_id=terminated))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_signal_resumes_a_listen_and_retry_resumes_from_the_failed_task(mesh: Mesh) -> None:
    stub = _stub(mesh)
    name = await register(stub, document(unique("listen"), [
        {"approve": {"listen": {"to": {"one": {"with": {"type": "approval", "data": {"order": "${ $input.order }"}}}}},
                     "timeout": {"after": "PT1H"}}},
        {"check": {"switch": [{"ok": {"when": "${ .approved }", "then": "done"}}, {"no": {"then": "reject"}}]}},
        {"reject": {"raise": {"error": {"type": "rejected", "status": 403, "title": "not approved"}}}},
        {"done": {"set": {"approved_by": "${ .by }"}}},
    ]))
    execution_id = await start(stub, name, {"order": "o-1"})
    assert (await wait_for(stub, execution_id, waiting=True)).waiting == "signal approval"
    for order in ("o-2", "o-1"):  # the first is for another order: the filter refuses it
        payload = struct_pb2.Struct()
        payload.update({"approved": False, "by": "ada", "order": order})
        await stub.SignalExecution(pb.SignalExecutionRequest(execution_id=execution_id, type="approval", data=payload))
    failed = await wait_for(stub, execution_id)
    assert failed.status == wf.EXECUTION_STATUS_FAILED and failed.error.instance == "do[2].reject"
    # Retry from the failed task: the listen completed and is not run again (no new signal needed).
    await stub.RetryExecution(pb.RetryExecutionRequest(execution_id=execution_id))
    again = await wait_for(stub, execution_id)
    assert again.status == wf.EXECUTION_STATUS_FAILED
    listens = [t for t in await history(stub, execution_id) if t.kind == "listen"]
    assert len(listens) == 1
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await stub.SignalExecution(pb.SignalExecutionRequest(execution_id=execution_id, type="approval"))
    assert ended.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_new_revision_does_not_change_a_running_execution(mesh: Mesh) -> None:
    stub = _stub(mesh)
    name = unique("revisions")
    await register(stub, document(name, [{"hold": {"wait": "PT1M"}}, {"mark": {"set": {"revision": 1}}}]))
    old = await start(stub, name)
    await wait_for(stub, old, waiting=True)
    updated = await stub.UpdateDefinition(pb.UpdateDefinitionRequest(
        name=name, source=document(name, [{"mark": {"set": {"revision": 2}}}])))
    assert updated.definition.revision == 2
    new = await start(stub, name)
    _clock(mesh).advance(120)
    assert dict((await wait_for(stub, old)).output) == {"revision": 1.0}
    assert dict((await wait_for(stub, new)).output) == {"revision": 2.0}
    with pytest.raises(grpc.aio.AioRpcError) as succeeded:
        await stub.RetryExecution(pb.RetryExecutionRequest(execution_id=new))
    assert succeeded.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_stopped_replicas_execution_resumes_on_another_without_rerunning_completed_tasks(mesh: Mesh) -> None:
    stub = _stub(mesh)
    name = await register(stub, document(unique("failover"), [
        {"first": {"call": REGISTER, "with": {"name": "${ $input.agent }", "type": "calculator"}}},
        # Longer than this module's replica's clock has been moved ahead by the other tests: only the
        # advance below makes it due there.
        {"hold": {"wait": "P3650D"}},
        {"after": {"set": {"agent_id": "${ .agent.agent_id }"}}},
    ]))
    async with workflow_replica(mesh.database_url, mesh.nats_url) as other:
        # Started on the other replica, which is stopped while the execution waits on its timer.
        other_stub = other.stub(WorkflowServiceStub)
        execution_id = await start(other_stub, name, {"agent": unique("failover-agent")})
        await wait_for(other_stub, execution_id, waiting=True)
    _clock(mesh).advance(3651 * 86400)
    execution = await wait_for(stub, execution_id)
    assert execution.status == wf.EXECUTION_STATUS_SUCCEEDED
    calls = [t for t in await history(stub, execution_id) if t.kind == "call"]
    assert len(calls) == 1  # the agent was registered once


async def test_fork_runs_branches_and_compete_takes_the_first_and_emit_goes_through_the_outbox(mesh: Mesh) -> None:
    stub = _stub(mesh)
    name = await register(stub, document(unique("fork"), [
        {"both": {"fork": {"branches": [{"left": {"set": {"side": "left"}}}, {"right": {"set": {"side": "right"}}}]}}},
        {"race": {"fork": {"compete": True, "branches": [{"slow": {"wait": "P1D"}},
                                                         {"fast": {"set": {"winner": "fast"}}}]}}},
        {"announce": {"emit": {"event": {"with": {"type": "order.done", "data": {"winner": "${ .winner }"}}}}}},
    ]))
    execution_id = await start(stub, name)
    execution = await wait_for(stub, execution_id)
    assert execution.status == wf.EXECUTION_STATUS_SUCCEEDED, execution.error
    assert dict(execution.output) == {"winner": "fast"}
    both = next(t for t in await history(stub, execution_id) if t.path == "do[0].both")
    assert [dict(v.struct_value) for v in both.output.list_value.values] == [{"side": "left"}, {"side": "right"}]
    async with await psycopg.AsyncConnection.connect(mesh.database_url) as conn:
        cur = await conn.execute("SELECT count(*) FROM workflow.outbox WHERE event_type = %s AND event_id = %s",
                                 ("protomesh.workflow.v1.WorkflowEventEmitted",
                                  str(uuid.uuid5(uuid.UUID(execution_id), "do[2].announce|1"))))
        assert (await cur.fetchone()) == (1,)


async def test_listen_resumes_on_another_services_domain_event(mesh: Mesh) -> None:
    stub = _stub(mesh)
    agent_name = unique("awaited")
    name = await register(stub, document(unique("on-event"), [
        {"awaitAgent": {"listen": {"to": {"one": {"with": {"type": "protomesh.agent.v1.AgentRegistered",
                                                           "name": "${ $input.agent }"}}}}}},
        {"seen": {"set": {"agent_id": "${ .agent_id }"}}},
    ]))
    execution_id = await start(stub, name, {"agent": agent_name})
    await wait_for(stub, execution_id, waiting=True)
    agents = mesh.agent.stub(AgentServiceStub)
    await agents.RegisterAgent(agent_pb.RegisterAgentRequest(name=unique("other"), type="calculator"))  # not it
    registered = await agents.RegisterAgent(agent_pb.RegisterAgentRequest(name=agent_name, type="calculator"))
    execution = await wait_for(stub, execution_id, timeout=30)
    assert execution.status == wf.EXECUTION_STATUS_SUCCEEDED, execution.error
    assert dict(execution.output) == {"agent_id": registered.agent.agent_id}


async def test_listen_keeps_an_event_that_arrives_while_it_rechecks_after_a_refused_one(
        mesh: Mesh, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused event wakes the execution; the one it waits for, handled while the replica still re-runs
    the listen, must reach it (CI once saw it lost: the claim had unsubscribed the execution)."""
    stub = _stub(mesh)
    agents = mesh.agent.stub(AgentServiceStub)
    agent_name = unique("awaited")
    name = await register(stub, document(unique("on-event"), [
        {"awaitAgent": {"listen": {"to": {"one": {"with": {"type": "protomesh.agent.v1.AgentRegistered",
                                                           "name": "${ $input.agent }"}}}}}},
    ]))
    execution_id = await start(stub, name, {"agent": agent_name})
    await wait_for(stub, execution_id, waiting=True)

    rechecking, release = asyncio.Event(), asyncio.Event()
    refuse = Checkpoints.ignore_signals

    async def held_refusal(self: Checkpoints, ids: list[uuid.UUID], by: str) -> None:
        if ids:  # the listen is mid-check, claimed by this replica: hold it there
            rechecking.set()
            await release.wait()
        await refuse(self, ids, by)

    monkeypatch.setattr(Checkpoints, "ignore_signals", held_refusal)
    try:
        await agents.RegisterAgent(agent_pb.RegisterAgentRequest(name=unique("other"), type="calculator"))
        await asyncio.wait_for(rechecking.wait(), 30)
        handled = await _listen_handled(mesh)
        await agents.RegisterAgent(agent_pb.RegisterAgentRequest(name=agent_name, type="calculator"))
        deadline = asyncio.get_running_loop().time() + 30
        while await _listen_handled(mesh) == handled:
            assert asyncio.get_running_loop().time() < deadline, "the awaited event never reached the workflow"
            await asyncio.sleep(0.05)
    finally:
        release.set()
    execution = await wait_for(stub, execution_id, timeout=15)
    assert execution.status == wf.EXECUTION_STATUS_SUCCEEDED, execution.error


async def _listen_handled(mesh: Mesh) -> int:
    """How many domain events the workflow's listen consumer has committed."""
    async with await psycopg.AsyncConnection.connect(mesh.database_url) as conn:
        cur = await conn.execute("SELECT count(*) FROM workflow.processed_events WHERE consumer = %s", (CONSUMER_NAME,))
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def test_a_child_workflow_runs_once_and_its_result_or_failure_reaches_the_parent(mesh: Mesh) -> None:
    stub = _stub(mesh)
    child = await register(stub, document(unique("child"), [
        {"check": {"switch": [{"bad": {"when": "${ .n < 0 }", "then": "refuse"}}, {"good": {"then": "double"}}]}},
        {"refuse": {"raise": {"error": {"type": "negative", "status": 400, "title": "n is negative"}}}},
        {"double": {"set": {"doubled": "${ .n * 2 }"}}},
    ]))
    parent = await register(stub, document(unique("parent"), [
        {"delegate": {"run": {"workflow": {"name": child, "input": {"n": "${ $input.n }"}}}}},
        {"report": {"set": {"result": "${ .doubled }"}}},
    ]))
    ok = await start(stub, parent, {"n": 21})
    assert dict((await wait_for(stub, ok)).output) == {"result": 42.0}
    failing = await start(stub, parent, {"n": -1})
    failed = await wait_for(stub, failing)
    assert failed.status == wf.EXECUTION_STATUS_FAILED and failed.error.instance == "do[0].delegate"
    children = await stub.ListExecutions(pb.ListExecutionsRequest(definition_name=child))
    assert sorted(e.parent_execution_id for e in children.executions) == sorted([ok, failing])
    bad = await stub.ValidateDefinition(pb.ValidateDefinitionRequest(source=document(unique("p"), [
        {"delegate": {"run": {"workflow": {"name": "no-such-definition"}}}}])))
    assert bad.task_paths == ["do[0].delegate"]  # checked when it runs: NOT_FOUND as a task error
