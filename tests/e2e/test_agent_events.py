"""Agent executions on the work queue and their events, while workers and nats-server are killed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import nats
import pytest

from chassis.events import subjects
from chassis.events.envelope import ORGANIZATION_HEADER, open_envelope
from chassis.tooling.mesh_testing import RestClient, eventually, running_mesh
from chassis.tooling.supervisor import Mesh
from protomesh.agent.v1 import events_pb2

FINAL = {"EXECUTION_STATE_SUCCEEDED", "EXECUTION_STATE_FAILED", "EXECUTION_STATE_STOPPED"}


@pytest.fixture
def mesh() -> Iterator[Mesh]:
    # A short ack wait, so a job whose worker was killed is redelivered quickly.
    with running_mesh(only=["agent"], extra_env={"AGENT_TASK_ACK_WAIT_SECONDS": "2", "AGENT_WORKERS": "2"}) as m:
        yield m


def stream_events(mesh: Mesh, event_type: type) -> list[events_pb2.ExecutionSucceeded]:
    """Every event of a type in the agent event stream, decoded (what any consumer would receive)."""

    async def read() -> list:
        nc = await nats.connect(mesh.nats_url)
        try:
            js = nc.jetstream()
            sub = await js.subscribe(subjects.event_subject(event_type), ordered_consumer=True,
                                     stream=subjects.event_stream(event_type))
            found = []
            while True:
                try:
                    msg = await sub.next_msg(timeout=1.0)
                except nats.errors.TimeoutError:
                    return found
                event, envelope = open_envelope(msg.data)
                # Tenancy: every agent event names its organization, in the payload, the envelope and the
                # pm-organization header (a consumer acts within it without decoding the payload).
                assert event.organization_id and envelope.organization_id == event.organization_id, envelope
                assert (msg.headers or {}).get(ORGANIZATION_HEADER) == event.organization_id, msg.headers
                found.append(event)
        finally:
            await nc.close()

    return asyncio.run(read())


def test_worker_killed_mid_job_has_its_job_finished_by_another(mesh: Mesh) -> None:
    rest = RestClient.for_mesh(mesh)
    agent_id = rest.post("/v1/agents", {"name": "long", "type": "prime-finder"}).body["agent"]["agent_id"]
    started = rest.post(f"/v1/agents/{agent_id}/execute", {"input": {"limit": 60_000_000}})
    assert started.status == 200, started.body
    execution_id = started.body["execution"]["execution_id"]

    def running_on() -> str:
        execution = rest.get(f"/v1/agents/{agent_id}/status").body["execution"]
        return execution["runner"] if execution["state"] == "EXECUTION_STATE_RUNNING" and execution["progress"] else ""

    first_runner = eventually(running_on, what="the execution to run on some worker")
    victim = next(r for r in mesh.replicas["agent"] if r.instance_id == first_runner)
    victim.kill()
    done = eventually(lambda: (e := rest.get(f"/v1/agents/{agent_id}/status").body["execution"])["state"] in FINAL
                      and e, timeout=60, interval=0.2, what="the execution to finish after its worker died")
    assert done["execution_id"] == execution_id
    assert done["state"] == "EXECUTION_STATE_SUCCEEDED", done
    assert done["runner"] != first_runner
    assert done["output"]["count"] == 3_562_115  # pi(6 * 10^7)
    succeeded = [e for e in stream_events(mesh, events_pb2.ExecutionSucceeded) if e.execution_id == execution_id]
    assert len(succeeded) == 1


def test_executions_and_their_events_survive_a_nats_restart(mesh: Mesh) -> None:
    rest = RestClient.for_mesh(mesh)
    agents = [rest.post("/v1/agents", {"name": f"calc-{i}", "type": "calculator"}).body["agent"]["agent_id"]
              for i in range(6)]
    accepted: list[str] = []
    refused = 0
    assert mesh.nats is not None
    for round_ in range(5):
        if round_ == 2:
            mesh.nats.kill()  # this round runs while nats-server is down
        if round_ == 3:
            mesh.nats.start()
            # Without NATS a replica is ready but DEGRADED (its writes' events wait in the outbox); the task queue
            # needs NATS, so wait until both replicas (round robin) report it back.
            eventually(lambda: all(rest.get("/health").body["health"]["state"] == "HEALTH_STATE_SERVING"
                                   for _ in range(4)), timeout=30, what="replicas to reconnect to NATS")
        for agent_id in agents:
            reply = rest.post(f"/v1/agents/{agent_id}/execute", {"input": {"expression": f"{round_} + 1"},
                                                                  "wait": True})
            if reply.status == 200:
                accepted.append(reply.body["execution"]["execution_id"])
            else:
                assert reply.status == 503, reply.body  # refused, not lost: the client was told to retry
                refused += 1
    print(f"{len(accepted)} executions accepted, {refused} refused while NATS was down")

    def all_final() -> bool:
        replies = [rest.get(f"/v1/agents/{a}/status") for a in agents]
        return all(r.status == 200 and r.body["execution"]["state"] in FINAL for r in replies)

    eventually(all_final, timeout=60, what="every accepted execution to finish")
    succeeded = {e.execution_id for e in stream_events(mesh, events_pb2.ExecutionSucceeded)}
    started = {e.execution_id for e in stream_events(mesh, events_pb2.ExecutionStarted)}
    assert set(accepted) <= started
    assert set(accepted) <= succeeded, f"missing events for {set(accepted) - succeeded}"
    assert len(accepted) >= 18 and refused > 0
