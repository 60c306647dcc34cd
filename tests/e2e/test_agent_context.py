"""Agent executions that read and write a context through the discovery-aware, resilient client."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from chassis.tooling.mesh_testing import RestClient, eventually, running_mesh
from chassis.tooling.supervisor import Mesh
from tests.e2e.context_principals import service_account


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    with running_mesh(only=["agent", "context"],
                      extra_env={"REGISTRY_TTL_SECONDS": "2"}) as started:
        yield started


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> RestClient:
    return RestClient.for_mesh(mesh)


def make_context(rest: RestClient, name: str, data: dict) -> str:
    created = rest.post("/v1/contexts", {"name": name, "type": "working"})
    assert created.status == 200, created.body
    context_id = created.body["context"]["context_id"]
    layer = rest.post(f"/v1/contexts/{context_id}/layers", {"name": "input", "layer_type": "user", "data": data})
    assert layer.status == 200, layer.body
    return context_id


def test_execution_reads_the_context_and_writes_its_result_as_a_layer(rest: RestClient) -> None:
    context_id = make_context(rest, "doc", {"text": "one two two three three three", "top": 1})
    agent = rest.post("/v1/agents", {"name": "ctx-reader", "type": "text-analyzer"}).body["agent"]
    reply = rest.post(f"/v1/agents/{agent['agent_id']}/execute",
                      {"context_id": context_id, "wait": True, "input": {}})
    assert reply.status == 200, reply.body
    execution = reply.body["execution"]
    assert execution["state"] == "EXECUTION_STATE_SUCCEEDED", execution
    assert execution["output"]["top_words"] == [{"word": "three", "count": 3}]  # the text came from the context
    assert execution["context_id"] == context_id and execution["result_layer_id"]
    layers = rest.get(f"/v1/contexts/{context_id}/layers").body["layers"]
    result = next(layer for layer in layers if layer["layer_id"] == execution["result_layer_id"])
    assert result["name"] == f"execution-{execution['execution_id']}" and result["layer_type"] == "agent-result"
    resolved = rest.get(f"/v1/contexts/{context_id}/resolved").body["data"]
    assert resolved["output"]["words"] == 6 and resolved["execution_id"] == execution["execution_id"]


def test_executions_on_the_queue_act_as_service_agent(rest: RestClient) -> None:
    """ExecuteAgent reads the context as its caller, the worker as `service:agent`: a context with an access
    list must name service:agent for the execution to read it and write its result."""
    context_id = make_context(rest, "private", {"expression": "3 * 3"})
    assert rest.post(f"/v1/contexts/{context_id}/shares", {"service": "client:someone-else"}).status == 200
    agent = rest.post("/v1/agents", {"name": "ctx-private", "type": "calculator"}).body["agent"]
    refused = rest.post(f"/v1/agents/{agent['agent_id']}/execute", {"context_id": context_id, "wait": True})
    assert refused.status == 200, refused.body
    assert refused.body["execution"]["state"] == "EXECUTION_STATE_FAILED"
    assert "service:agent" in refused.body["execution"]["error"], refused.body["execution"]
    assert rest.post(f"/v1/contexts/{context_id}/shares", {"service": "service:agent"}).status == 200
    done = rest.post(f"/v1/agents/{agent['agent_id']}/execute", {"context_id": context_id, "wait": True})
    assert done.body["execution"]["state"] == "EXECUTION_STATE_SUCCEEDED", done.body
    assert done.body["execution"]["output"]["result"] == 9


def test_input_overrides_the_context(rest: RestClient) -> None:
    context_id = make_context(rest, "calc", {"expression": "1 + 1"})
    agent = rest.post("/v1/agents", {"name": "ctx-calc", "type": "calculator"}).body["agent"]
    reply = rest.post(f"/v1/agents/{agent['agent_id']}/execute",
                      {"context_id": context_id, "wait": True, "input": {"expression": "6 * 7"}})
    assert reply.body["execution"]["output"]["result"] == 42


def test_unknown_context_is_404(rest: RestClient) -> None:
    agent = rest.post("/v1/agents", {"name": "ctx-missing", "type": "calculator"}).body["agent"]
    reply = rest.post(f"/v1/agents/{agent['agent_id']}/execute",
                      {"context_id": "00000000-0000-0000-0000-000000000000", "input": {"expression": "1"}})
    assert reply.status == 404, reply.body
    assert "context" in reply.body["message"]


def test_executions_use_contexts_of_their_own_organization_only(mesh: Mesh, rest: RestClient) -> None:
    """The agent calls the context service as its caller (ExecuteAgent) and, on the queue, as service:agent in
    the execution's organization: a context of another organization is NOT_FOUND to both, like an unknown id."""
    other = rest.post("/v1/organizations", {"name": f"tenant-{uuid.uuid4().hex[:8]}"})
    assert other.status == 200, other.body
    organization_id = other.body["organization"]["organization_id"]
    outsider = service_account(mesh, rest, "agent-context-tenant", organization_id).rest()
    theirs = make_context(rest, "their-context", {"expression": "5 * 5"})  # the admin's organization (local)
    agent = outsider.post("/v1/agents", {"name": "tenant-agent", "type": "calculator"}).body["agent"]
    assert agent["organization_id"] == organization_id
    execute = f"/v1/agents/{agent['agent_id']}/execute"

    refused = outsider.post(execute, {"context_id": theirs, "wait": True})
    assert refused.status == 404 and "context" in refused.body["message"], refused.body
    assert outsider.get(f"/v1/contexts/{theirs}").status == 404
    # In its own organization the same agent reads its own context, and the worker writes the result there.
    own = make_context(outsider, "own-context", {"expression": "6 * 6"})
    done = outsider.post(execute, {"context_id": own, "wait": True})
    assert done.status == 200 and done.body["execution"]["state"] == "EXECUTION_STATE_SUCCEEDED", done.body
    assert done.body["execution"]["output"]["result"] == 36
    assert done.body["execution"]["organization_id"] == organization_id
    layers = outsider.get(f"/v1/contexts/{own}/layers").body["layers"]
    assert done.body["execution"]["result_layer_id"] in [layer["layer_id"] for layer in layers]
    # The admin's organization's agents cannot be run by the outsider either.
    mine = rest.post("/v1/agents", {"name": "local-agent", "type": "calculator"}).body["agent"]
    assert outsider.post(f"/v1/agents/{mine['agent_id']}/execute", {"input": {"expression": "1"}}).status == 404


def test_context_outage_fails_fast_once_the_breaker_opens_and_recovers(mesh: Mesh, rest: RestClient) -> None:
    context_id = make_context(rest, "outage", {"expression": "2 + 2"})
    agent = rest.post("/v1/agents", {"name": "ctx-outage", "type": "calculator"}).body["agent"]
    execute = f"/v1/agents/{agent['agent_id']}/execute"
    for replica in mesh.replicas["context"]:
        replica.stop()
    statuses, durations = [], []
    for _ in range(16):
        started = time.monotonic()
        reply = rest.post(execute, {"context_id": context_id, "wait": True})
        durations.append(time.monotonic() - started)
        statuses.append(reply.status)
        if reply.status == 503 and "circuit" in reply.body.get("message", ""):
            break
    assert set(statuses) == {503}, statuses
    assert "circuit" in reply.body["message"], reply.body  # the breaker opened and now fails fast
    print(f"calls until the breaker opened: {len(statuses)}; last call took {durations[-1] * 1000:.1f} ms")

    for replica in mesh.replicas["context"]:
        replica.start()
    done = eventually(lambda: (r := rest.post(execute, {"context_id": context_id, "wait": True})).status == 200
                      and r, timeout=30, interval=0.5, what="executions with a context to work again")
    assert done.body["execution"]["output"]["result"] == 4
