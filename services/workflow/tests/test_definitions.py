"""Definitions through the API: registration checked against the contracts (every kind of bad definition is
INVALID_ARGUMENT naming the task path), revisions, deletion, authorization, idempotent starts, analytics."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from chassis.testing import principal_with_role
from protomesh.workflow.v1 import workflow_pb2 as wf
from protomesh.workflow.v1 import workflow_service_pb2 as pb
from protomesh.workflow.v1.workflow_service_pb2_grpc import WorkflowServiceStub
from services.workflow.tests.conftest import Mesh
from services.workflow.tests.support import document, register, start, unique, wait_for

EXECUTE = "protomesh.agent.v1.AgentService/ExecuteAgent"


def _violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)
    assert status is not None
    found: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.update({v.field: v.description for v in bad.field_violations})
    return found


async def _refused(stub: WorkflowServiceStub, source: str) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CreateDefinition(pb.CreateDefinitionRequest(source=source))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return _violations(refused.value)


BAD = [
    ("unknown request field", [{"a": {"set": {}}}, {"b": {"set": {}}},
                               {"chargeCard": {"call": EXECUTE, "with": {"agent_id": "x", "amount": 3}}}],
     "do[2].chargeCard.with.amount", "no field 'amount'"),
    ("nested unknown field", [{"run": {"call": "protomesh.agent.v1.AgentService/RegisterAgent",
                                       "with": {"name": "a", "type": "calculator", "labels": "not-a-map"}}}],
     "do[0].run.with.labels", "must be an object"),
    ("wrong literal type", [{"run": {"call": EXECUTE, "with": {"agent_id": "x", "wait": "yes"}}}],
     "do[0].run.with.wait", "true or false"),
    ("unknown method", [{"pay": {"call": "protomesh.agent.v1.AgentService/Pay", "with": {}}}],
     "do[0].pay.call", "no method"),
    ("http call", [{"get": {"call": "http", "with": {"endpoint": "https://example.com"}}}],
     "do[0].get.call", "not supported"),
    ("bad expression", [{"calc": {"set": {"total": "${ .a + }"}}}], "do[0].calc.set.total", "bad expression"),
    ("bad if", [{"calc": {"set": {}, "if": "${ ]] }"}}], "do[0].calc.if", "bad expression"),
    ("unknown then", [{"a": {"set": {}, "then": "nowhere"}}], "do[0].a.then", "no task named 'nowhere'"),
    ("unreachable", [{"a": {"set": {}, "then": "end"}}, {"b": {"set": {}}}], "do[1].b", "unreachable"),
    ("unknown switch target", [{"s": {"switch": [{"x": {"when": "${ true }", "then": "ghost"}}]}}],
     "do[0].s.switch.x.then", "no task named 'ghost'"),
    ("two kinds", [{"a": {"set": {}, "wait": "PT1S"}}], "do[0].a", "exactly one kind"),
    ("no kind", [{"a": {"with": {}}}], "do[0].a", "exactly one kind"),
    ("unsupported key", [{"a": {"set": {}, "schedule": {}}}], "do[0].a.schedule", "not supported"),
    ("bad duration", [{"a": {"wait": "one hour"}}], "do[0].a.wait", "ISO 8601"),
    ("duplicate name", [{"a": {"set": {}}}, {"a": {"set": {}}}], "do[1].a", "used twice"),
    ("try without catch", [{"t": {"try": [{"x": {"set": {}}}]}}], "do[0].t.catch", "needs a catch"),
    ("bad retry count", [{"t": {"try": [{"x": {"set": {}}}],
                                "catch": {"retry": {"limit": {"attempt": {"count": 0}}}}}}],
     "do[0].t.catch.retry.limit.attempt.count", "1 to 100"),
    ("nested path", [{"outer": {"do": [{"inner": {"call": EXECUTE, "with": {"bogus": 1}}}]}}],
     "do[0].outer.do[0].inner.with.bogus", "no field 'bogus'"),
    ("compensation checked", [{"a": {"set": {}, "compensate": [{"undo": {"call": EXECUTE, "with": {"nope": 1}}}]}}],
     "do[0].a.compensate[0].undo.with.nope", "no field 'nope'"),
    ("listen without type", [{"l": {"listen": {"to": {"one": {"with": {}}}}}}], "do[0].l.listen", "type"),
]


@pytest.mark.parametrize(("tasks", "path", "says"), [(t, p, s) for _, t, p, s in BAD], ids=[b[0] for b in BAD])
async def test_bad_definitions_are_refused_naming_the_task_path(mesh: Mesh, tasks: list[object], path: str,
                                                                says: str) -> None:
    violations = await _refused(mesh.workflow.stub(WorkflowServiceStub), document(unique("bad"), tasks))
    assert path in violations, violations
    assert says in violations[path]


async def test_bad_documents_are_refused(mesh: Mesh) -> None:
    stub = mesh.workflow.stub(WorkflowServiceStub)
    assert "source" in await _refused(stub, "do: [unclosed")
    assert "document.dsl" in await _refused(stub, document("x", [{"a": {"set": {}}}]).replace("1.0.0", "0.8", 1))
    assert "document.name" in await _refused(stub, document("Not_A_Name", [{"a": {"set": {}}}]))
    assert "do" in await _refused(stub, document("empty", []))
    assert "use" in await _refused(stub, document("uses", [{"a": {"set": {}}}], use={"functions": {}}))


async def test_revisions_delete_and_validate(mesh: Mesh) -> None:
    stub = mesh.workflow.stub(WorkflowServiceStub)
    name = unique("crud")
    first = document(name, [{"a": {"set": {"v": 1}}}])
    await register(stub, first)
    with pytest.raises(grpc.aio.AioRpcError) as duplicate:
        await stub.CreateDefinition(pb.CreateDefinitionRequest(source=first))
    assert duplicate.value.code() == grpc.StatusCode.ALREADY_EXISTS
    await stub.UpdateDefinition(pb.UpdateDefinitionRequest(name=name, source=document(name, [{"b": {"set": {}}}])))
    revisions = await stub.ListDefinitionRevisions(pb.ListDefinitionRevisionsRequest(name=name))
    assert [d.revision for d in revisions.definitions] == [2, 1]
    old = await stub.GetDefinition(pb.GetDefinitionRequest(name=name, revision=1))
    assert old.definition.task_paths == ["do[0].a"]
    listed = await stub.ListDefinitions(pb.ListDefinitionsRequest(page_size=1000))
    assert [d.revision for d in listed.definitions if d.name == name] == [2]
    checked = await stub.ValidateDefinition(pb.ValidateDefinitionRequest(source=first))
    assert checked.name == name and checked.task_paths == ["do[0].a"]
    await stub.DeleteDefinition(pb.DeleteDefinitionRequest(name=name))
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.GetDefinition(pb.GetDefinitionRequest(name=name))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as mismatch:
        await stub.UpdateDefinition(pb.UpdateDefinitionRequest(name="other", source=first))
    assert mismatch.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_permissions_and_tenancy(mesh: Mesh) -> None:
    name = await register(mesh.workflow.stub(WorkflowServiceStub), document(unique("authz"), [{"a": {"set": {}}}]))
    viewer = mesh.workflow.stub(WorkflowServiceStub, principal=principal_with_role("viewer"))
    assert (await viewer.GetDefinition(pb.GetDefinitionRequest(name=name))).definition.name == name
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await viewer.StartExecution(pb.StartExecutionRequest(definition_name=name))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    stranger = mesh.workflow.stub(WorkflowServiceStub, principal=principal_with_role("owner", organization="org-other"))
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await stranger.GetDefinition(pb.GetDefinitionRequest(name=name))
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    anonymous = mesh.workflow.stub(WorkflowServiceStub, principal=None)
    with pytest.raises(grpc.aio.AioRpcError) as unauthenticated:
        await anonymous.ListExecutions(pb.ListExecutionsRequest())
    assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_idempotent_start_list_filters_and_analytics(mesh: Mesh) -> None:
    stub = mesh.workflow.stub(WorkflowServiceStub)
    name = await register(stub, document(unique("stats"), [
        {"pick": {"switch": [{"bad": {"when": "${ $input.fail }", "then": "boom"}}, {"good": {"then": "ok"}}]}},
        {"boom": {"raise": {"error": {"type": "x", "status": 500, "title": "failed on purpose"}}}},
        {"ok": {"set": {"ok": True}}},
    ]))
    key = unique("key")
    first = await start(stub, name, {"fail": False}, request_id=key)
    assert await start(stub, name, {"fail": False}, request_id=key) == first
    failing = await start(stub, name, {"fail": True})
    assert (await wait_for(stub, first)).status == wf.EXECUTION_STATUS_SUCCEEDED
    assert (await wait_for(stub, failing)).status == wf.EXECUTION_STATUS_FAILED
    failed = await stub.ListExecutions(pb.ListExecutionsRequest(definition_name=name,
                                                                status=wf.EXECUTION_STATUS_FAILED))
    assert [e.execution_id for e in failed.executions] == [failing]
    analytics = (await stub.GetDefinitionAnalytics(pb.GetDefinitionAnalyticsRequest(name=name))).analytics
    assert analytics.total == 2
    assert {c.status: c.count for c in analytics.status_counts} == {wf.EXECUTION_STATUS_SUCCEEDED: 1,
                                                                   wf.EXECUTION_STATUS_FAILED: 1}
    boom = next(t for t in analytics.task_failures if t.path == "do[1].boom")
    assert (boom.attempts, boom.failures, boom.failure_rate) == (1, 1, 1.0)
    assert analytics.duration_p50.ToTimedelta().total_seconds() >= 0
    info = await stub.GetInfo(pb.GetInfoRequest())
    assert info.definition_count >= 1 and "listen" in info.task_kinds
