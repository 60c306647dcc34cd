"""Which calls a replica traces when the sampler leaves them out: failed and slow ones, not fast successful ones.

A real replica process (tests.runtime.traced_echo) exports to a real OTLP collector (chassis.tooling.trace_store)
with OTEL_TRACES_SAMPLER=always_off, so that every call is unsampled and only the keep rules
(PROTOMESH_TRACE_KEEP, PROTOMESH_TRACE_SLOW_MS) decide. Each test sends its own traceparent and looks
for that trace id in the stored spans; the fast call's absence is checked after a failing call sent
after it is stored (the replica exports its spans in the order they end).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from bench.scenarios.grpc_overhead import CLAIMS
from chassis.tooling.infra.ports import free_port
from chassis.tooling.infra.postgres import PostgresProcess
from chassis.tooling.mesh_testing import eventually
from chassis.tooling.trace_store import TraceCollector, load_traces
from protomesh.agent.v1 import agent_service_pb2, agent_service_pb2_grpc
from tests.runtime.traced_echo import SLOW_ID, SLOW_SECONDS

REPO = Path(__file__).resolve().parents[2]
METHOD_NAME = "/protomesh.agent.v1.AgentService/GetAgent"
KNOWN_ID = str(uuid.UUID(int=2))
UNKNOWN_ID = str(uuid.UUID(int=999_999))


@dataclass
class Replica:
    port: int
    traces: Path
    log: Path


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    folder = tmp_path_factory.mktemp("tracing")
    collector = TraceCollector(folder / "traces")
    collector.start()
    port = free_port()
    log = folder / "replica.log"
    env = {**os.environ, "GRPC_PORT": str(port), "GRPC_HOST": "127.0.0.1", "INSTANCE_ID": "traced-echo-1",
           "MESH_TLS": "off", "METRICS_PORT": "-1", "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
           "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_TRACES_SAMPLER": "always_off",
           "PROTOMESH_TRACE_KEEP": "failed,slow", "PROTOMESH_TRACE_SLOW_MS": str(SLOW_SECONDS * 1000 * 0.8)}
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "tests.runtime.traced_echo"], cwd=REPO, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        started = Replica(port, folder / "traces", log)
        eventually(lambda: _answers(started), timeout=60, interval=0.2, what=f"the replica to serve (log: {log})")
        yield started
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        collector.stop()


def _answers(replica: Replica) -> bool:
    return call(replica, KNOWN_ID, "") == grpc.StatusCode.OK


def call(replica: Replica, agent_id: str, traceparent: str) -> grpc.StatusCode:
    """GetAgent with the bench's claims and `traceparent` (none when empty); the status code."""
    metadata = (*CLAIMS.items(), *((("traceparent", traceparent),) if traceparent else ()))
    with grpc.insecure_channel(f"127.0.0.1:{replica.port}") as channel:
        stub = agent_service_pb2_grpc.AgentServiceStub(channel)
        try:
            stub.GetAgent(agent_service_pb2.GetAgentRequest(agent_id=agent_id), timeout=5, metadata=metadata)
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]  # a grpc.Call's code()
    return grpc.StatusCode.OK


def unsampled_parent() -> tuple[str, str, str]:
    """(traceparent with the sampled flag off, its trace id, its span id): the caller did not sample the trace."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-00", trace_id, span_id


def stored(replica: Replica, trace_id: str) -> list[dict]:
    return load_traces(replica.traces).get(trace_id, [])


def test_an_unsampled_failing_call_is_still_traced(replica: Replica) -> None:
    traceparent, trace_id, parent_span = unsampled_parent()
    assert call(replica, UNKNOWN_ID, traceparent) == grpc.StatusCode.NOT_FOUND
    spans = eventually(lambda: stored(replica, trace_id), timeout=15, what="the failing call's span")
    [span] = spans  # only its server span: its inner work was not recorded while it ran
    assert span["name"] == METHOD_NAME and span["kind"] == "server" and span["status"] == 2  # ERROR
    assert span["parent_span_id"] == parent_span  # in the caller's trace
    assert span["attributes"]["protomesh.trace.kept"] == "failed"
    assert span["attributes"]["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    # The call's log line names the span it was kept with.
    line = eventually(lambda: _log_line(replica, trace_id), timeout=10, what="the failing call's log line")
    assert line["status"] == "NOT_FOUND" and line["span_id"] == span["span_id"]


def test_an_unsampled_slow_call_is_traced(replica: Replica) -> None:
    traceparent, trace_id, _ = unsampled_parent()
    assert call(replica, SLOW_ID, traceparent) == grpc.StatusCode.OK
    [span] = eventually(lambda: stored(replica, trace_id), timeout=15, what="the slow call's span")
    assert span["attributes"]["protomesh.trace.kept"] == "slow" and span["status"] != 2
    assert (span["end_ns"] - span["start_ns"]) / 1e9 >= SLOW_SECONDS * 0.9


def test_a_fast_successful_unsampled_call_is_not_traced_but_logs_the_callers_trace(replica: Replica) -> None:
    fast_parent, fast_trace, fast_span = unsampled_parent()
    assert call(replica, KNOWN_ID, fast_parent) == grpc.StatusCode.OK
    # A failing call after it: once its span is stored, a span of the fast call would be too.
    failing_parent, failing_trace, _ = unsampled_parent()
    assert call(replica, UNKNOWN_ID, failing_parent) == grpc.StatusCode.NOT_FOUND
    eventually(lambda: stored(replica, failing_trace), timeout=15, what="the later failing call's span")
    assert stored(replica, fast_trace) == []
    # Unrecorded, the call still runs in its caller's trace: its log line carries that trace id.
    line = eventually(lambda: _log_line(replica, fast_trace), timeout=10, what="the fast call's log line")
    assert line["status"] == "OK" and line["span_id"] == fast_span


def test_a_call_without_trace_context_starts_a_trace_only_when_it_fails(replica: Replica) -> None:
    before = set(load_traces(replica.traces))
    assert call(replica, KNOWN_ID, "") == grpc.StatusCode.OK
    assert call(replica, UNKNOWN_ID, "") == grpc.StatusCode.NOT_FOUND

    def new_spans() -> list[dict]:
        return [s for t, spans in load_traces(replica.traces).items() if t not in before for s in spans]

    eventually(new_spans, timeout=15, what="the failing call's new trace")
    time.sleep(0.5)  # one more export interval: a span of the successful call would have come with it
    [span] = new_spans()
    assert span["parent_span_id"] == "" and span["status"] == 2


def _log_line(replica: Replica, trace_id: str) -> dict | None:
    for text in replica.log.read_text(errors="replace").splitlines():
        if trace_id in text and '"msg":"call"' in text:
            return json.loads(text)  # type: ignore[no-any-return]
    return None


def test_sql_spans_are_recorded_only_under_a_recording_span(postgres: PostgresProcess, tmp_path: Path) -> None:
    collector = TraceCollector(tmp_path / "traces")
    collector.start()
    try:
        sampled_trace, unsampled_trace = secrets.token_hex(16), secrets.token_hex(16)
        sampled = f"00-{sampled_trace}-{secrets.token_hex(8)}-01"
        unsampled = f"00-{unsampled_trace}-{secrets.token_hex(8)}-00"
        subprocess.run([sys.executable, "-m", "tests.runtime.sql_spans_probe", postgres.url, sampled, unsampled],
                       cwd=REPO, env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint},
                       check=True, timeout=60)
    finally:
        collector.stop()
    traces = load_traces(tmp_path / "traces")
    query, call_span = sorted(traces[sampled_trace], key=lambda s: s["kind"])  # "client" < "server"
    assert (query["kind"], call_span["kind"]) == ("client", "server")
    assert query["parent_span_id"] == call_span["span_id"]
    assert query["name"] == "SELECT" and query["attributes"]["db.statement"] == "SELECT 1 AS probe"
    assert unsampled_trace not in traces  # the unsampled call's statement made no span
