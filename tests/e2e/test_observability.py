"""Observability without code in services: one trace per REST call through Envoy, trace ids in logs, the CLI."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from chassis.tooling.mesh_testing import RestClient, eventually, running_mesh
from chassis.tooling.supervisor import Mesh
from chassis.tooling.trace_store import load_traces


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    # Every call traced: these tests follow one given call's whole trace, which the local default (a
    # sample, plus failed and slow calls: chassis.telemetry) records only sometimes. Envoy's config is
    # written in this process, so the variable is set here, for this module only.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OTEL_TRACES_SAMPLER", "always_on")
        with running_mesh(only=["agent", "notification"], replicas=1) as started:
            yield started


def protomesh(mesh: Mesh, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chassis.tooling.cli", "--state-dir", str(mesh.state_dir), *args],
                          capture_output=True, text=True, timeout=60)


def trace_with(mesh: Mesh, span_name: str) -> list[dict]:
    def find() -> list[dict] | None:
        for spans in load_traces(mesh.state_dir / "traces").values():
            if (any(s["name"].endswith(span_name) for s in spans) and any(s["kind"] == "client" for s in spans)
                    and any(s["service"] == "gateway" and s["kind"] == "server" for s in spans)):
                return spans
        return None

    return eventually(find, timeout=30, interval=0.5, what=f"a stored trace with {span_name}")


def test_a_rest_call_is_one_trace_from_envoy_through_the_service_to_sql(mesh: Mesh) -> None:
    rest = RestClient.for_mesh(mesh)
    assert rest.post("/v1/agents", {"name": "traced", "type": "calculator"}).status == 200
    spans = trace_with(mesh, "AgentService/RegisterAgent")
    assert len({s["trace_id"] for s in spans}) == 1
    by_id = {s["span_id"]: s for s in spans}
    # Envoy's ingress span (the trace may also hold its client span of a JWKS fetch the call waited for).
    gateway = next(s for s in spans if s["service"] == "gateway" and s["kind"] == "server")
    server = next(s for s in spans if s["name"].endswith("RegisterAgent") and s["service"] == "agent")
    sql = [s for s in spans if s["service"] == "agent" and s["kind"] == "client"]
    assert server["parent_span_id"] == gateway["span_id"]
    assert sql and all(by_id.get(s["parent_span_id"]) is server for s in sql)
    assert any(s["name"].startswith("INSERT") for s in sql)

    # The AgentRegistered event the call caused is handled by the notification service in the same trace.
    spans = eventually(lambda: next((t for t in load_traces(mesh.state_dir / "traces").values()
                                     if any(s["span_id"] == server["span_id"] for s in t)
                                     and any(s["service"] == "notification" and s["kind"] == "consumer" for s in t)),
                                    None), timeout=15, what="the notification consumer span in the trace")
    consumer = next(s for s in spans if s["service"] == "notification" and s["kind"] == "consumer")
    assert consumer["name"] == "process protomesh.agent.v1.AgentRegistered"
    producer = next(s for s in spans if s["span_id"] == consumer["parent_span_id"])
    assert producer["kind"] == "producer" and producer["parent_span_id"] == server["span_id"]

    trace_id = spans[0]["trace_id"]
    log_lines = protomesh(mesh, "logs", "--service", "agent", "--trace", trace_id, "-n", "0").stdout
    assert "RegisterAgent" in log_lines and "agent registered" in log_lines

    listed = protomesh(mesh, "traces", "--service", "agent")
    assert listed.returncode == 0 and trace_id in listed.stdout
    tree = protomesh(mesh, "trace", trace_id[:12])
    assert tree.returncode == 0
    lines = tree.stdout.splitlines()
    assert lines[0].startswith("gateway: ") and "ms" in lines[0]
    assert any(line.startswith("  agent: /protomesh.agent.v1.AgentService/RegisterAgent") for line in lines)
    assert any(line.startswith("    agent: INSERT") for line in lines)


def test_logs_filter_by_level(mesh: Mesh) -> None:
    rest = RestClient.for_mesh(mesh)
    rest.post("/v1/agents", {"type": "calculator"})  # a 400: logged at info, not error
    errors = protomesh(mesh, "logs", "--level", "error", "-n", "0")
    assert errors.returncode == 0
    assert "INVALID_ARGUMENT" not in errors.stdout
    everything = protomesh(mesh, "logs", "-n", "0").stdout
    assert "INVALID_ARGUMENT" in everything


def scrape(mesh: Mesh, service: str) -> str:
    assert mesh.bridge is not None
    instance = mesh.bridge.view(service)[0]
    port = instance.meta["metrics_port"]
    with urllib.request.urlopen(f"http://{instance.address}:{port}/metrics", timeout=5) as reply:
        return reply.read().decode()


def metric_value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_calls_and_errors(mesh: Mesh) -> None:
    rest = RestClient.for_mesh(mesh)
    method = "/protomesh.agent.v1.AgentService/GetAgent"
    listing = "/protomesh.agent.v1.AgentService/ListAgents"
    before = scrape(mesh, "agent")
    ok_before = metric_value(before, "protomesh_rpc_requests_total", method=listing, code="OK")
    missing_before = metric_value(before, "protomesh_rpc_requests_total", method=method, code="NOT_FOUND")
    assert rest.get("/v1/agents").status == 200
    assert rest.get("/v1/agents/00000000-0000-0000-0000-000000000000").status == 404
    after = eventually(lambda: (t := scrape(mesh, "agent")) and metric_value(
        t, "protomesh_rpc_requests_total", method=method, code="NOT_FOUND") > missing_before and t,
        what="the error to be counted")
    assert metric_value(after, "protomesh_rpc_requests_total", method=listing, code="OK") == ok_before + 1
    assert metric_value(after, "protomesh_rpc_duration_seconds_count", method=method) >= 1
    assert metric_value(after, "protomesh_up", service="agent") == 1
    assert "protomesh_db_pool_connections" in after and "protomesh_outbox_backlog" in after
    envoy_stats = mesh.envoy.admin_get("/stats/prometheus")
    assert "envoy_cluster_upstream_rq_total" in envoy_stats


def test_work_caused_by_a_rest_call_continues_its_trace_through_nats(mesh: Mesh) -> None:
    rest = RestClient.for_mesh(mesh)
    agent = rest.post("/v1/agents", {"name": "traced-exec", "type": "calculator"}).body["agent"]
    reply = rest.post(f"/v1/agents/{agent['agent_id']}/execute", {"input": {"expression": "1+2"}, "wait": True})
    assert reply.body["execution"]["state"] == "EXECUTION_STATE_SUCCEEDED"
    spans = trace_with(mesh, "AgentService/ExecuteAgent")
    names = {s["name"] for s in spans}
    assert "publish protomesh.agent.v1.RunExecution" in names  # the task, written by the request
    worker = next(s for s in spans if s["name"] == "run task agent.run_execution")
    assert worker["kind"] == "consumer"
    assert any(s["name"] == "publish protomesh.agent.v1.ExecutionSucceeded" for s in spans)  # caused by the worker
    assert any(s["parent_span_id"] == worker["span_id"] and s["kind"] == "client" for s in spans)  # its SQL
