"""Failure toggles at run time over a real mesh: `protomesh fault` against Envoy's fault filter and the replicas.

One mesh (agent and context, one replica each, so the agent's breaker toward context lives in one process).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from chassis.tooling import cli
from chassis.tooling.mesh_testing import RestClient, eventually, mesh_channel, running_mesh
from chassis.tooling.supervisor import Mesh
from protomesh.context.v1 import context_service_pb2 as pb
from protomesh.context.v1 import context_service_pb2_grpc

TOGGLE_SECONDS = 12
"""Long enough for the breaker to open under a loaded CI machine before the toggle clears itself."""


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    # A short registry TTL, as test_agent_context uses: at the default 5 s the agent kept dialling a context
    # address that closed the socket for longer than the first execution may wait (seen at 8cf71dc).
    with running_mesh(only=["agent", "context"], replicas=1, extra_env={"REGISTRY_TTL_SECONDS": "2"}) as started:
        yield started


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> RestClient:
    return RestClient.for_mesh(mesh)


def run_cli(mesh: Mesh, *args: str) -> tuple[int, str, str]:
    """The `protomesh` CLI's own entry point, in this process (a CLI process costs seconds on a busy machine).

    In a thread of its own: the CLI's asyncio.run must not clear this thread's event loop, which later tests use.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), ThreadPoolExecutor(1) as pool:
        code = pool.submit(cli.main, ["--state-dir", str(mesh.state_dir), *args]).result(timeout=60)
    return code, out.getvalue(), err.getvalue()


def fault(mesh: Mesh, *args: str, ok: bool = True) -> tuple[int, str, str]:
    """`protomesh fault ...`."""
    code, out, err = run_cli(mesh, "fault", *args)
    if ok:
        assert code == 0, err + out
    return code, out, err


def make_context(rest: RestClient, name: str) -> str:
    created = rest.post("/v1/contexts", {"name": name, "type": "working"})
    assert created.status == 200, created.body
    context_id = created.body["context"]["context_id"]
    layer = rest.post(f"/v1/contexts/{context_id}/layers",
                      {"name": "input", "layer_type": "user", "data": {"expression": "6 * 7"}})
    assert layer.status == 200, layer.body
    return str(context_id)


def test_bad_toggles_are_refused_naming_the_field(mesh: Mesh) -> None:
    for args, named in ((["nosuch", "--abort", "UNAVAILABLE"], "service:"),
                        (["context.NoSuchMethod", "--abort", "UNAVAILABLE"], "method:"),
                        (["context", "--abort", "BROKEN"], "abort:"),
                        (["context", "--abort", "UNAVAILABLE", "--percent", "0"], "percent:"),
                        (["context", "--delay", "soon"], "delay:"),
                        (["context", "--abort", "UNAVAILABLE", "--duration", "2d"], "duration:"),
                        (["context"], "delay/abort:")):
        code, _, err = fault(mesh, "set", *args, ok=False)
        assert code == 2 and named in err, (args, err)
    # The console script itself, once: as a person runs it.
    listed = subprocess.run([sys.executable, "-m", "chassis.tooling.cli", "fault", "list"], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PROTOMESH_STATE_DIR": str(mesh.state_dir)})
    assert listed.returncode == 0 and "no failure toggle is set" in listed.stdout, listed.stderr


def test_mesh_toggle_opens_the_callers_breaker_then_clears_itself(mesh: Mesh, rest: RestClient) -> None:
    context_id = make_context(rest, "toggled")
    agent = rest.post("/v1/agents", {"name": "fault-toggled", "type": "calculator"}).body["agent"]
    execute = f"/v1/agents/{agent['agent_id']}/execute"
    # Generous: on a loaded machine the agent's first channel to context has been seen failing its TLS handshake
    # ("Socket closed") and then waiting out gRPC's reconnect backoff before it connects.
    eventually(lambda: rest.post(execute, {"context_id": context_id, "wait": True}).status == 200, timeout=90,
               interval=0.5, what="a first execution reading the context")

    set_at = time.monotonic()
    fault(mesh, "set", "context", "--abort", "UNAVAILABLE", "--where", "mesh", "--duration", f"{TOGGLE_SECONDS}s")
    _, status, _ = run_cli(mesh, "status")
    assert "context.all" in status and "abort UNAVAILABLE" in status, status
    # Only calls between services fail: the gateway still reaches context.
    assert rest.get(f"/v1/contexts/{context_id}").status == 200
    statuses = []
    for _ in range(20):
        reply = rest.post(execute, {"context_id": context_id, "wait": True})
        statuses.append(reply.status)
        if reply.status == 503 and "circuit" in reply.body.get("message", ""):
            break
    assert set(statuses) == {503}, statuses
    assert "circuit" in reply.body["message"], reply.body  # the agent's breaker toward context opened

    # No one clears it: it ends by itself, then the breaker's half-open probe (3 s after opening) closes it.
    done = eventually(lambda: (r := rest.post(execute, {"context_id": context_id, "wait": True})).status == 200
                      and r, timeout=TOGGLE_SECONDS + 30, interval=0.5, what="executions reading the context again")
    assert done.body["execution"]["output"]["result"] == 42
    assert time.monotonic() - set_at >= TOGGLE_SECONDS
    eventually(lambda: "no failure toggle is set" in fault(mesh, "list")[1], timeout=10,
               what="the expired toggle removed from the bucket")
    print(f"breaker opened after {len(statuses)} calls; calls worked again "
          f"{time.monotonic() - set_at:.1f}s after the {TOGGLE_SECONDS} s toggle was set")


def test_gateway_toggle_per_method_aborts_delays_and_clears(mesh: Mesh, rest: RestClient) -> None:
    context_id = make_context(rest, "gateway-toggled")
    fault(mesh, "set", "context.GetContext", "--abort", "UNAVAILABLE", "--where", "gateway", "--duration", "2m")
    eventually(lambda: rest.get(f"/v1/contexts/{context_id}").status == 503, timeout=10,
               what="the gateway aborting GetContext")
    reply = rest.get(f"/v1/contexts/{context_id}")
    assert reply.status == 503, reply.body
    assert rest.get("/v1/contexts").status == 200  # another method of the same service is untouched
    with mesh_channel(mesh) as channel:
        stub = context_service_pb2_grpc.ContextServiceStub(channel)
        with pytest.raises(grpc.RpcError) as failed:
            stub.GetContext(pb.GetContextRequest(context_id=context_id), timeout=5)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "fault filter abort" in (failed.value.details() or "")

    # Half the calls, then a delay instead of the abort: the same key, replaced at run time.
    fault(mesh, "set", "context.GetContext", "--abort", "UNAVAILABLE", "--percent", "50", "--where", "gateway")
    eventually(lambda: 0 < sum(rest.get(f"/v1/contexts/{context_id}").status == 503 for _ in range(20)) < 20,
               timeout=10, what="about half the calls aborted")
    fault(mesh, "set", "context.GetContext", "--delay", "400ms", "--where", "gateway")

    def delayed() -> bool:
        started = time.monotonic()
        ok = rest.get(f"/v1/contexts/{context_id}").status == 200
        return ok and time.monotonic() - started >= 0.4

    eventually(delayed, timeout=10, what="GetContext delayed by 400 ms")
    fault(mesh, "clear", "context")
    eventually(lambda: rest.get(f"/v1/contexts/{context_id}").status == 200, timeout=10, what="cleared at once")
    started = time.monotonic()
    assert rest.get(f"/v1/contexts/{context_id}").status == 200
    assert time.monotonic() - started < 0.4
