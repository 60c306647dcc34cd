"""Envoy and the registry follow the mesh live: a replica added gets traffic, a SIGKILLed one stops getting it."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator

import grpc
import pytest

from chassis.tooling.mesh_testing import eventually, mesh_channel, running_mesh
from chassis.tooling.supervisor import Mesh
from protomesh.agent.v1 import agent_service_pb2 as pb
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub


@pytest.fixture
def mesh() -> Iterator[Mesh]:
    with running_mesh(only=["agent"], extra_env={"REGISTRY_TTL_SECONDS": "2"}) as started:
        yield started


class Load:
    """A bounded stream of idempotent calls through the gateway, counting who answered and what failed."""

    def __init__(self, mesh: Mesh, seconds: float) -> None:
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []
        self.first_seen: dict[str, float] = {}
        self._mesh = mesh
        self._until = time.monotonic() + seconds
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with mesh_channel(self._mesh) as channel:
            stub = AgentServiceStub(channel)
            while time.monotonic() < self._until:
                try:
                    instance = stub.GetInfo(pb.GetInfoRequest(), timeout=10).info.instance_id
                    self.answers[instance] += 1
                    self.first_seen.setdefault(instance, time.monotonic())
                except grpc.RpcError as error:
                    self.failures.append(f"{error.code().name}: {error.details()}")
                time.sleep(0.005)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join()


def endpoint_ports(mesh: Mesh) -> set[int]:
    data = json.loads((mesh.state_dir / "eds" / "agent.json").read_text())
    return {e["endpoint"]["address"]["socket_address"]["port_value"]
            for group in data["resources"][0]["endpoints"] for e in group["lb_endpoints"]}


def test_new_replica_gets_traffic_and_killed_one_is_dropped_without_failed_calls(mesh: Mesh) -> None:
    assert {i.instance_id for i in mesh.bridge.view("agent")} == {"agent-1", "agent-2"}
    with Load(mesh, seconds=12) as load:
        time.sleep(1)
        added_at = time.monotonic()
        mesh._scale_to("agent", 3, wait=False)
        eventually(lambda: "agent-3" in load.answers, timeout=15, what="agent-3 to get traffic")
        print(f"new replica got its first call {load.first_seen['agent-3'] - added_at:.2f}s after it started")
        assert "agent-3" in {i.instance_id for i in mesh.bridge.view("agent")}

        victim = mesh.replicas["agent"][0]
        victim.kill()
        killed_at = time.monotonic()
        eventually(lambda: victim.port not in endpoint_ports(mesh), timeout=15,
                   what="the killed replica to leave Envoy's endpoints")
        print(f"killed replica left the registry and Envoy's endpoints {time.monotonic() - killed_at:.2f}s later")
        before = load.answers["agent-1"]
        time.sleep(1)
        assert load.answers["agent-1"] == before, "the killed replica still seems to answer"
    assert load.failures == [], load.failures[:5]
    assert load.answers["agent-2"] > 0 and load.answers["agent-3"] > 0
    assert {i.instance_id for i in mesh.bridge.view("agent")} == {"agent-2", "agent-3"}


def test_graceful_stop_deregisters_at_once(mesh: Mesh) -> None:
    replica = mesh.replicas["agent"][1]
    replica.stop()
    eventually(lambda: {i.instance_id for i in mesh.bridge.view("agent")} == {"agent-1"}, timeout=5,
               what="the stopped replica to deregister")
    assert replica.port not in endpoint_ports(mesh)
