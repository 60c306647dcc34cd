"""The project's alert rules in a real Prometheus, against a real local mesh: each fault fires its alert, and the
alert resolves after recovery.

One mesh (identity, agent and context, one replica each) scraped every second: each replica's /metrics and
Envoy's /stats/prometheus. The rules are deploy/observability/alerts.yml with every duration divided by 30
(`for: 1m` is 2 s; tests/monitoring/rule_timing.py), so what takes minutes in production takes seconds here.
Alerts are read from Prometheus' /api/v1/alerts. Needs Debian's prometheus (scripts/install_monitoring_tools).
The mesh is spread over three network-namespace hosts where the machine can make them (root), as the chaos suite's
is; MONITORING_MESH=local|hosts|both chooses (docs/monitoring.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nats
import pytest

from chassis.events import subjects
from chassis.events.deadletters import DeadLetters
from chassis.events.streams import inbox_prefix_of, nats_servers
from chassis.tooling import cli
from chassis.tooling.hosts.mesh import HostedMesh
from chassis.tooling.hosts.netns import leftover_namespaces, missing_requirements
from chassis.tooling.identity_session import take_admin_password
from chassis.tooling.infra.ports import free_port
from chassis.tooling.mesh_testing import TEST_SERVICE_ENV, RestClient, eventually, running_mesh
from chassis.tooling.supervisor import Mesh, MeshOptions
from protomesh.identity.v1 import audit_pb2
from services.identity.audit.consumer import CONSUMER_NAME as AUDIT_CONSUMER
from tests.monitoring.prometheus_harness import MonitoredMesh, monitoring, prometheus_binary, wait_for

pytestmark = pytest.mark.skipif(prometheus_binary() is None, reason="prometheus is not installed: run "
                                "scripts/install_monitoring_tools (Debian's prometheus package)")

RUNNING = ("agent", "context", "identity")
FIRE_SECONDS = 30.0
"""Bound on a compressed alert's way to firing: the replicas sample their gauges every 5 s, Prometheus scrapes
and evaluates every second, the longest compressed `for:` is 10 s."""
RESOLVE_SECONDS = 30.0


def mesh_kinds() -> list[str]:
    """Where the cases run: on the mesh spread over three network-namespace hosts (chassis.tooling.hosts: a NATS
    cluster, replicas on the hosts' addresses) wherever this machine can make them (root, iproute2, nftables),
    else on the one-host mesh. MONITORING_MESH=local, hosts or both chooses (MONITORING_HOSTS=1: both)."""
    chosen = os.environ.get("MONITORING_MESH") or ("both" if os.environ.get("MONITORING_HOSTS") == "1" else "")
    if chosen == "both":
        return ["local", "hosts"]
    if chosen in ("local", "hosts"):
        return [chosen]
    return ["hosts"] if missing_requirements() is None else ["local"]


MESH_KINDS = mesh_kinds()
SERVICE_ENV = {"REGISTRY_TTL_SECONDS": "2"}
"""A short registry TTL: a killed replica leaves the gateway's endpoints (and comes back) sooner."""


@contextlib.contextmanager
def hosted_mesh() -> Iterator[Mesh]:
    """The services RUNNING, one replica each, over three hosts; the hosts removed afterwards."""
    problem = missing_requirements()
    if problem:
        pytest.skip(f"the multi-host mesh cannot run here: {problem}")
    state_dir = Path(tempfile.mkdtemp(prefix="protomesh-monitoring-"))
    options = MeshOptions(state_dir=state_dir, gateway_port=free_port(), default_replicas=1, durable=False,
                          only=["agent", "context"], service_env={**TEST_SERVICE_ENV, **SERVICE_ENV})
    hosted = HostedMesh(options)
    try:
        hosted.start()
        take_admin_password(state_dir)
        yield hosted
    finally:
        hosted.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
        assert leftover_namespaces(hosted.topology.prefix) == [], "the hosts' namespaces outlived the mesh"


@pytest.fixture(scope="module", params=MESH_KINDS)
def mesh(request: pytest.FixtureRequest) -> Iterator[Mesh]:
    if request.param == "hosts":
        with hosted_mesh() as started:
            yield started
    else:
        with running_mesh(only=["agent", "context"], replicas=1, extra_env=SERVICE_ENV) as started:
            yield started


@pytest.fixture(scope="module")
def watched(mesh: Mesh) -> Iterator[MonitoredMesh]:
    with monitoring(mesh) as started:
        wait_for(lambda: _healthy_targets(started) >= len(RUNNING) + 1, 30, "every replica and Envoy scraped")
        yield started


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> RestClient:
    return RestClient.for_mesh(mesh)


def _healthy_targets(watched: MonitoredMesh) -> int:
    return sum(target["health"] == "up" for target in watched.api.targets())


def run_cli(mesh: Mesh, *args: str) -> str:
    """`protomesh ...` in this process, in a thread of its own (its asyncio.run must not touch this thread's
    loop); its output, after checking it succeeded."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), ThreadPoolExecutor(1) as pool:
        code = pool.submit(cli.main, ["--state-dir", str(mesh.state_dir), *args]).result(timeout=60)
    assert code == 0, f"protomesh {' '.join(args)}: {err.getvalue()}{out.getvalue()}"
    return out.getvalue()


def test_a_healthy_mesh_raises_no_alert_but_for_the_services_it_does_not_run(watched: MonitoredMesh) -> None:
    """The gateway knows every contract's cluster; those of services this mesh does not run have no replica,
    which is what EnvoyNoHealthyUpstream is for: it fires for them (on Envoy's real stats), and nothing else.

    HighLatency is left out: whether p99 stays under 500 ms depends on the machine's load, not the mesh's health
    (a 2-core CI machine running two test files at once can pass it)."""
    not_running = set(watched.mesh.catalog.names) - set(RUNNING)
    wait_for(lambda: {a.labels.get("envoy_cluster_name") for a in watched.api.firing("EnvoyNoHealthyUpstream", {})}
             == not_running, FIRE_SECONDS, f"EnvoyNoHealthyUpstream for {sorted(not_running)} only")
    assert not watched.api.rule_errors()
    others = [a for a in watched.api.alerts() if a.name not in ("EnvoyNoHealthyUpstream", "HighLatency")]
    assert not others, others
    scraped = {t["labels"].get("service") for t in watched.api.targets() if t["labels"]["job"] == "services"}
    assert scraped == set(RUNNING)


def test_a_killed_replica_fires_replica_down_and_no_healthy_upstream_until_it_is_restarted(
        watched: MonitoredMesh) -> None:
    mesh = watched.mesh
    (replica,) = mesh.replicas["context"]
    replica.kill()
    down = {"service": "context", "instance_id": replica.instance_id}
    fired = watched.wait_firing("ReplicaDown", down, FIRE_SECONDS)
    no_upstream = {"envoy_cluster_name": "context"}
    watched.wait_firing("EnvoyNoHealthyUpstream", no_upstream, FIRE_SECONDS)
    assert mesh.restart_dead() == [replica.name]
    resolved = watched.wait_resolved("ReplicaDown", down, RESOLVE_SECONDS)
    watched.wait_resolved("EnvoyNoHealthyUpstream", no_upstream, RESOLVE_SECONDS)
    # Resolved because the new replica is scraped and up, not because its target went missing.
    wait_for(lambda: [s["value"][1] for s in watched.api.query(f'up{{instance_id="{replica.instance_id}"}}')]
             == ["1"], RESOLVE_SECONDS, "the restarted replica scraped")
    print(f"ReplicaDown fired {fired:.1f}s after the SIGKILL, resolved {resolved:.1f}s after the restart")


def _make_context(rest: RestClient) -> str:
    created = rest.post("/v1/contexts", {"name": "watched", "type": "working"})
    assert created.status == 200, created.body
    context_id = str(created.body["context"]["context_id"])
    layer = rest.post(f"/v1/contexts/{context_id}/layers",
                      {"name": "input", "layer_type": "user", "data": {"expression": "6 * 7"}})
    assert layer.status == 200, layer.body
    return context_id


def test_an_open_breaker_fires_circuit_breaker_open_and_high_error_rate_until_calls_pass_again(
        watched: MonitoredMesh, rest: RestClient) -> None:
    """Calls from the agent to context fail (a fault toggle inside the mesh): the agent's breaker opens, and the
    agent answers every execution that needs the context with UNAVAILABLE, a server-side error of its own."""
    mesh = watched.mesh
    context_id = _make_context(rest)
    agent = rest.post("/v1/agents", {"name": "watched", "type": "calculator"}).body["agent"]
    execute = f"/v1/agents/{agent['agent_id']}/execute"

    def run() -> int:
        return rest.post(execute, {"context_id": context_id, "wait": True}).status

    # Generous: the agent's channel to a context replica restarted by the test before may still be reconnecting.
    eventually(lambda: run() == 200, timeout=90, interval=0.5, what="an execution reading the context")

    run_cli(mesh, "fault", "set", "context", "--abort", "UNAVAILABLE", "--where", "mesh", "--duration", "2m")
    # A breaker is per gRPC service the caller dials.
    breaker = {"service": "agent", "target": mesh.catalog.service("context").grpc_services[0]}
    errors = {"service": "agent"}
    try:
        statuses = []
        for _ in range(20):
            reply = rest.post(execute, {"context_id": context_id, "wait": True})
            statuses.append(reply.status)
            if reply.status == 503 and "circuit" in reply.body.get("message", ""):
                break
        assert statuses[-1] == 503 and "circuit" in reply.body["message"], statuses  # the agent's breaker opened
        breaker_fired = watched.wait_firing("CircuitBreakerOpen", breaker, FIRE_SECONDS)
        # Calls go on (each fails fast, 503) until the error rate has been above 5% for the rule's `for:`.
        errors_fired = wait_for(lambda: run() == 503 and watched.api.firing("HighErrorRate", errors), FIRE_SECONDS,
                                "HighErrorRate for the agent")
    finally:
        run_cli(mesh, "fault", "clear", "context")
    # The breaker closes on the first call that passes after its recovery time (the half-open probe).
    eventually(lambda: run() == 200, timeout=30, interval=0.5, what="executions reading the context again")
    breaker_resolved = watched.wait_resolved("CircuitBreakerOpen", breaker, RESOLVE_SECONDS)
    errors_resolved = watched.wait_resolved("HighErrorRate", errors, RESOLVE_SECONDS)
    print(f"CircuitBreakerOpen fired {breaker_fired:.1f}s after the breaker opened, resolved {breaker_resolved:.1f}s "
          f"after it closed; HighErrorRate fired {errors_fired:.1f}s after that, resolved "
          f"{breaker_resolved + errors_resolved:.1f}s after the breaker closed")


async def _nats(mesh: Mesh) -> nats.NATS:
    # The operator's NATS user; a NATS cluster's URL names every node (each with the user).
    return await nats.connect(nats_servers(mesh.nats_url), name="monitoring-test", allow_reconnect=False,
                              connect_timeout=5, inbox_prefix=inbox_prefix_of(mesh.nats_url))


async def _pause_and_publish_poison(mesh: Mesh, stream: str, count: int) -> None:
    """Pause the audit consumer (server-side: it is delivered nothing, its replica stays healthy), then publish
    `count` messages that are no event at all on its subject: they wait as its backlog."""
    nc = await _nats(mesh)
    try:
        js = nc.jetstream()
        until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)
        await js.pause_consumer(stream, AUDIT_CONSUMER, until.isoformat().replace("+00:00", "Z"))
        subject = subjects.event_subject(audit_pb2.AuditRecorded)
        for number in range(count):
            await js.publish(subject, b"not an event", headers={"Nats-Msg-Id": f"monitoring-poison-{number}"})
    finally:
        await nc.close()


async def _resume(mesh: Mesh, stream: str) -> None:
    nc = await _nats(mesh)
    try:
        await nc.jetstream().resume_consumer(stream, AUDIT_CONSUMER)
    finally:
        await nc.close()


async def _dead_letters(mesh: Mesh) -> int:
    nc = await _nats(mesh)
    try:
        return len(await DeadLetters(nc.jetstream()).list(AUDIT_CONSUMER))
    finally:
        await nc.close()


def test_a_stalled_consumer_fires_consumer_lag_and_its_poison_dead_letters_growing(watched: MonitoredMesh) -> None:
    """The identity service's audit consumer paused with a backlog above ConsumerLag's threshold: ConsumerLag.
    Resumed, it drains the backlog, and since none of it is an event, dead-letters all of it: ConsumerLag
    resolves and DeadLettersGrowing fires. Purged (`protomesh deadletters purge`), that resolves too."""
    mesh = watched.mesh
    threshold = int(re.findall(r">\s*(\d+)", watched.rule("ConsumerLag")["expr"])[-1])
    backlog = threshold + 20
    stream = subjects.event_stream(audit_pb2.AuditRecorded)
    lag = {"service": "identity", "consumer": AUDIT_CONSUMER}
    try:
        asyncio.run(_pause_and_publish_poison(mesh, stream, backlog))
        lag_fired = watched.wait_firing("ConsumerLag", lag, FIRE_SECONDS)
    finally:
        asyncio.run(_resume(mesh, stream))
    lag_resolved = watched.wait_resolved("ConsumerLag", lag, RESOLVE_SECONDS)
    eventually(lambda: asyncio.run(_dead_letters(mesh)) == backlog, timeout=30, interval=0.5,
               what=f"the {backlog} poison messages dead-lettered")
    dead_fired = watched.wait_firing("DeadLettersGrowing", {}, FIRE_SECONDS)
    purged = run_cli(mesh, "deadletters", "purge", "--consumer", AUDIT_CONSUMER)
    assert f"{backlog} dead letters purged" in purged, purged
    dead_resolved = watched.wait_resolved("DeadLettersGrowing", {}, RESOLVE_SECONDS)
    print(f"ConsumerLag fired {lag_fired:.1f}s after {backlog} messages waited, resolved {lag_resolved:.1f}s after "
          f"the resume; DeadLettersGrowing fired {dead_fired:.1f}s after, resolved {dead_resolved:.1f}s after "
          "the purge")


def test_a_killed_gateway_fires_gateway_down_until_the_supervisor_restarts_it(watched: MonitoredMesh) -> None:
    """Last in the module: calls through the gateway fail until it is back."""
    mesh = watched.mesh
    envoy = mesh.envoy
    assert envoy is not None
    envoy.kill()
    down = {"job": "envoy"}
    fired = watched.wait_firing("GatewayDown", down, FIRE_SECONDS)
    # The supervisor brings infrastructure back after a pause (so an outage shows in `status`); poll it as `up` does.
    eventually(lambda: envoy.name in mesh.restart_dead(), timeout=30, interval=0.5, what="Envoy restarted")
    resolved = watched.wait_resolved("GatewayDown", down, RESOLVE_SECONDS)
    print(f"GatewayDown fired {fired:.1f}s after the SIGKILL, resolved {resolved:.1f}s after the restart")
