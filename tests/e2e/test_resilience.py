"""The mesh under faults: a replica SIGKILLed under load, PostgreSQL stopped and restarted, graceful shutdown."""

from __future__ import annotations

import concurrent.futures
import signal
import time
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import struct_pb2

from chassis.tooling.mesh_testing import RestClient, eventually, mesh_channel, running_mesh
from chassis.tooling.supervisor import Mesh
from protomesh.agent.v1 import agent_pb2
from protomesh.agent.v1 import agent_service_pb2 as pb
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub

AGENT_SERVICE = "protomesh.agent.v1.AgentService"


@pytest.fixture
def fresh_mesh() -> Iterator[Mesh]:
    """A mesh of its own: these tests break things."""
    with running_mesh(only=["agent"]) as mesh:
        yield mesh


def test_sigkill_one_of_two_replicas_under_load_loses_no_idempotent_request(fresh_mesh: Mesh) -> None:
    rest = RestClient.for_mesh(fresh_mesh)
    agent_id = rest.post("/v1/agents", {"name": "survivor", "type": "calculator"}).body["agent"]["agent_id"]
    victim = fresh_mesh.replicas["agent"][0]
    results: list[int] = []
    failures: list[object] = []
    grpc_errors: list[str] = []
    cut_after_headers: list[str] = []
    reset_then_retried: list[str] = []

    with mesh_channel(fresh_mesh) as channel:
        stub = AgentServiceStub(channel)

        def one_round(i: int) -> None:
            reply = rest.get(f"/v1/agents/{agent_id}")
            if reply.status == 503 and "reset before headers" in str(reply.body):
                # Rare (2 of ~10 runs under load): the gateway's retries of a read caught by the kill ran out
                # (a hedge and a retry both landed on the dying replica before it left rotation). Counted, and
                # retried once, as the chaos suite counts what one client retry saves: the read must not be lost.
                reset_then_retried.append(str(reply.body)[:200])
                reply = rest.get(f"/v1/agents/{agent_id}")
            results.append(reply.status)
            if reply.status != 200:
                failures.append(reply.body)
            try:
                stub.GetAgent(pb.GetAgentRequest(agent_id=agent_id), timeout=10)
            except grpc.RpcError as error:
                if not committed_then_killed(error):
                    grpc_errors.append(f"{error.code().name}: {error.details()}")
                    return
                # The one loss Envoy cannot hide: the replica died after its response headers (a cached read's
                # ETag goes out as initial metadata just before the message, docs/caching.md) had reached the
                # gateway, which had passed them on. The read is idempotent: one retry must succeed.
                cut_after_headers.append(error.details() or "")
                stub.GetAgent(pb.GetAgentRequest(agent_id=agent_id), timeout=10)

        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(one_round, i) for i in range(150)]
            time.sleep(0.3)
            victim.kill()
            concurrent.futures.wait(futures, timeout=120)
            for future in futures:
                future.result()
    assert not victim.is_running()
    assert len(results) == 150
    assert set(results) == {200}, f"failed REST requests: {failures}"
    assert grpc_errors == []
    print(f"{len(cut_after_headers)} gRPC reads cut after their headers, {len(reset_then_retried)} REST reads reset "
          "before headers (each retried once, successfully)")
    assert len(cut_after_headers) <= 4, cut_after_headers  # at most the calls in flight on the victim
    assert len(reset_then_retried) <= 4, reset_then_retried


def committed_then_killed(error: grpc.RpcError) -> bool:
    """INTERNAL with a reset stream: the gateway had forwarded the replica's headers when the replica died."""
    return error.code() == grpc.StatusCode.INTERNAL and "RST_STREAM" in (error.details() or "")


def test_health_flips_when_postgres_stops_and_recovers_when_it_returns(fresh_mesh: Mesh) -> None:
    rest = RestClient.for_mesh(fresh_mesh)
    replica = fresh_mesh.replicas["agent"][0]
    assert fresh_mesh.postgres is not None
    assert replica.serving(AGENT_SERVICE)
    fresh_mesh.postgres.stop()
    eventually(lambda: not replica.serving(AGENT_SERVICE), what="NOT_SERVING without PostgreSQL")
    ready = eventually(lambda: (r := rest.get("/health/ready")).status == 503 and r, what="/health/ready 503")
    assert "postgres" in ready.body["message"]
    health = rest.get("/health")
    assert health.status == 200 and health.body["health"]["state"] == "HEALTH_STATE_NOT_SERVING"
    unavailable = rest.get("/v1/agents")
    assert unavailable.status == 503
    assert rest.get("/health/live").status == 200
    fresh_mesh.postgres.start()
    eventually(lambda: replica.serving(AGENT_SERVICE), what="SERVING after PostgreSQL returns")
    eventually(lambda: rest.get("/health/ready").status == 200, what="/health/ready 200 again")
    eventually(lambda: rest.post("/v1/agents", {"name": "after-outage", "type": "calculator"}).status == 200,
               what="writes to work again")


def test_graceful_shutdown_lets_an_in_flight_call_finish(fresh_mesh: Mesh) -> None:
    replica = fresh_mesh.replicas["agent"][1]
    with mesh_channel(fresh_mesh, target=replica.address) as channel:  # straight to it, with forwarded claims
        stub = AgentServiceStub(channel)
        agent = stub.RegisterAgent(pb.RegisterAgentRequest(name="slow", type="prime-finder"), timeout=10).agent
        request = pb.ExecuteAgentRequest(agent_id=agent.agent_id, wait=True, input=struct_pb2.Struct())
        request.input.update({"limit": 30_000_000})  # a couple of seconds of sieving
        in_flight = stub.ExecuteAgent.future(request, timeout=60)
        eventually(lambda: stub.GetAgentStatus(pb.GetAgentStatusRequest(agent_id=agent.agent_id), timeout=5)
                   .execution.state == agent_pb2.EXECUTION_STATE_RUNNING, what="the execution to run")
        assert replica.pid is not None
        import os

        os.kill(replica.pid, signal.SIGTERM)
        response = in_flight.result(timeout=60)
    assert response.execution.state == agent_pb2.EXECUTION_STATE_SUCCEEDED
    assert response.execution.output["count"] == 1857859  # pi(3 * 10^7)
    eventually(lambda: not replica.is_running(), what="the replica to exit after the call")
    assert replica.returncode == 0
