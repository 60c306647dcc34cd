"""The workflow service in a real mesh: through the gateway (REST and gRPC, with the admin's token), calling
the agent service over mTLS through discovery, and a workflow replica SIGKILLed under a bounded load of
executions: its executions are resumed by the other replica once their leases run out, none is lost and no
call is applied twice (each registers agents whose names are unique, so a call run twice without its
idempotency key would fail the execution with ALREADY_EXISTS)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from chassis.paths import REPO_ROOT
from chassis.tooling.mesh_testing import RestClient, eventually, mesh_channel, running_mesh
from chassis.tooling.supervisor import Mesh
from protomesh.workflow.v1 import workflow_service_pb2 as pb
from protomesh.workflow.v1.workflow_service_pb2_grpc import WorkflowServiceStub
from tests.e2e.test_readme import for_mesh, run_bash, section_blocks

LEASE_SECONDS = 2.0
REGISTER = "protomesh.agent.v1.AgentService/RegisterAgent"
EXECUTE = "protomesh.agent.v1.AgentService/ExecuteAgent"
FINISHED = {"EXECUTION_STATUS_SUCCEEDED", "EXECUTION_STATUS_FAILED", "EXECUTION_STATUS_CANCELLED",
            "EXECUTION_STATUS_TERMINATED", "EXECUTION_STATUS_NEEDS_ATTENTION"}


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    with running_mesh(only=["agent", "workflow"], extra_env={
            "WORKFLOW_LEASE_SECONDS": str(LEASE_SECONDS), "WORKFLOW_POLL_SECONDS": "0.2"}) as running:
        yield running


def _document(name: str, tasks: list[object]) -> str:
    return yaml.safe_dump({"document": {"dsl": "1.0.0", "namespace": "e2e", "name": name, "version": "1.0.0"},
                           "do": tasks}, sort_keys=False)


def _finished(rest: RestClient, execution_id: str, timeout: float = 30.0) -> dict[str, object]:
    def done() -> dict[str, object] | None:
        reply = rest.get(f"/v1/workflows/executions/{execution_id}")
        assert reply.status == 200, reply.body
        execution: dict[str, object] = reply.body["execution"]
        return execution if execution["status"] in FINISHED else None
    return eventually(done, timeout=timeout, interval=0.1, what=f"execution {execution_id} to finish")


def test_rest_registers_checks_and_runs_a_workflow_calling_the_agent_service(mesh: Mesh) -> None:
    rest = RestClient.for_mesh(mesh, timeout=15)
    assert rest.anonymous().get("/v1/workflows/executions").status == 401
    bad = rest.post("/v1/workflows/definitions", {"source": _document("bad-e2e", [
        {"a": {"set": {}}}, {"b": {"set": {}}},
        {"chargeCard": {"call": EXECUTE, "with": {"agent_id": "x", "amount": 5}}}])})
    assert bad.status == 400 and "do[2].chargeCard.with.amount" in bad.field_violations(), bad.body
    name = f"calc-{uuid.uuid4().hex[:8]}"
    created = rest.post("/v1/workflows/definitions", {"source": _document(name, [
        {"register": {"call": REGISTER, "with": {"name": "${ $input.agent }", "type": "calculator"}}},
        {"compute": {"call": EXECUTE, "with": {"agent_id": "${ .agent.agent_id }", "wait": True,
                                               "input": {"expression": "${ $input.expression }"}}}},
        {"answer": {"set": {"result": "${ .execution.output.result }"}}}])})
    assert created.status == 200, created.body
    started = rest.post("/v1/workflows/executions", {"definition_name": name, "input": {
        "agent": f"wf-e2e-{uuid.uuid4().hex[:8]}", "expression": "6*7"}})
    assert started.status == 200, started.body
    execution = _finished(rest, started.body["execution"]["execution_id"])
    assert execution["status"] == "EXECUTION_STATUS_SUCCEEDED", execution
    assert execution["output"] == {"result": 42}
    history = rest.get(f"/v1/workflows/executions/{execution['execution_id']}/history").body["tasks"]
    assert [t["path"] for t in history] == ["do[0].register", "do[1].compute", "do[2].answer"]


def test_grpc_through_the_gateway(mesh: Mesh) -> None:
    rest = RestClient.for_mesh(mesh, timeout=15)
    name = f"hello-{uuid.uuid4().hex[:8]}"
    assert rest.post("/v1/workflows/definitions", {"source": _document(name, [
        {"greet": {"set": {"greeting": "${ \"hello \" + $input.who }"}}}])}).status == 200
    with mesh_channel(mesh) as channel:
        stub = WorkflowServiceStub(channel)
        started = stub.StartExecution(pb.StartExecutionRequest(definition_name=name), timeout=10)
        execution = _finished(rest, started.execution.execution_id)
        assert execution["status"] == "EXECUTION_STATUS_SUCCEEDED"
        info = stub.GetInfo(pb.GetInfoRequest(), timeout=10)
        assert info.info.name == "workflow"


def test_a_sigkilled_replica_s_executions_finish_on_the_other_once(mesh: Mesh) -> None:
    rest = RestClient.for_mesh(mesh, timeout=15)
    name = f"failover-{uuid.uuid4().hex[:8]}"
    steps = 8
    assert rest.post("/v1/workflows/definitions", {"source": _document(name, [
        {"each": {"for": {"each": "i", "in": "${ [range(" + str(steps) + ")] }"}, "do": [
            {"register": {"call": REGISTER, "with": {"name": "${ $input.prefix + \"-\" + ($i | tostring) }",
                                                     "type": "calculator"}}}]}},
        {"done": {"set": {"ok": True}}}])}).status == 200
    prefix = f"fo-{uuid.uuid4().hex[:6]}"
    count = 20
    with ThreadPoolExecutor(max_workers=4) as pool:
        replies = list(pool.map(lambda i: rest.post("/v1/workflows/executions", {
            "definition_name": name, "input": {"prefix": f"{prefix}-{i}"}}), range(count)))
    ids = [r.body["execution"]["execution_id"] for r in replies]
    victim = mesh.replicas["workflow"][0]
    assert victim.pid is not None
    time.sleep(0.3)  # let both replicas take executions and be in the middle of their calls
    killed_at = time.monotonic()
    os.kill(victim.pid, signal.SIGKILL)
    finished = [_finished(rest, execution_id, timeout=60) for execution_id in ids]
    took = time.monotonic() - killed_at
    failed = [(e["status"], e.get("error")) for e in finished if e["status"] != "EXECUTION_STATUS_SUCCEEDED"]
    assert not failed, failed
    agents = rest.get(f"/v1/agents?name_contains={prefix}&page_size=1000").body
    assert len(agents.get("agents", [])) == count * steps  # every call applied exactly once
    # The survivor took over executions the victim had checkpointed (this workflow has no timer or signal
    # that would resume one otherwise).
    survivor = mesh.replicas["workflow"][1]
    resumed = (mesh.state_dir / "logs" / f"{survivor.instance_id}.log").read_text().count("workflow execution resumed")
    assert resumed >= 1
    print(f"workflow replica SIGKILLed with {count} executions of {steps} calls in flight: all finished "
          f"{took:.1f} s after the kill (lease {LEASE_SECONDS:g} s), {resumed} resumed by the other replica")


def test_the_readme_section_runs_as_written(mesh: Mesh) -> None:
    [block] = section_blocks("Workflows", "bash")
    output = run_bash(block, mesh)
    assert '"result":42' in output.replace(" ", ""), output
    assert '"result":1024' in output.replace(" ", ""), output
    assert "answer [set] SUCCEEDED" in output, output  # `workflows show` draws the tree
    [python] = section_blocks("Workflows", "python")
    env = {**os.environ, "PROTOMESH_STATE_DIR": str(mesh.state_dir)}
    result = subprocess.run([sys.executable, "-c", for_mesh(python, mesh)], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1] in ("1", "2", "3"), result.stdout  # PENDING, RUNNING or SUCCEEDED


def test_a_listen_resumes_on_the_agent_services_event_over_the_mesh_s_nats(mesh: Mesh) -> None:
    rest = RestClient.for_mesh(mesh, timeout=15)
    name, agent = f"await-{uuid.uuid4().hex[:8]}", f"awaited-{uuid.uuid4().hex[:8]}"
    assert rest.post("/v1/workflows/definitions", {"source": _document(name, [
        {"awaitAgent": {"listen": {"to": {"one": {"with": {"type": "protomesh.agent.v1.AgentRegistered",
                                                           "name": "${ $input.agent }"}}}}}}])}).status == 200
    execution_id = rest.post("/v1/workflows/executions", {"definition_name": name, "input": {"agent": agent}}
                             ).body["execution"]["execution_id"]
    eventually(lambda: rest.get(f"/v1/workflows/executions/{execution_id}").body["execution"].get("waiting"),
               timeout=15, what="the execution to wait for the event")
    registered = rest.post("/v1/agents", {"name": agent, "type": "calculator"}).body["agent"]
    execution = _finished(rest, execution_id, timeout=30)
    assert execution["status"] == "EXECUTION_STATUS_SUCCEEDED", execution
    assert execution["output"]["agent_id"] == registered["agent_id"]
