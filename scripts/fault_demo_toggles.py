"""Fault demo, `--scenario toggles`: run-time failure toggles against the mesh's own services.

Starts a small mesh of its own (agent and context, one replica each; loopback, its own /tmp folder, stopped at
the end) and keeps two streams of calls going through the gateway: executions of an agent that reads a context
(agent -> context, inside the mesh) and reads of that context (client -> gateway -> context). Then, with
`protomesh fault set` as a person would type it:

1. healthy;
2. `context --abort UNAVAILABLE --where mesh`: the agent's calls to context fail, its breaker opens, and
   executions fail fast (503 "circuit open") while direct reads through the gateway are untouched;
3. `context.GetContext --delay 300ms --percent 50 --where gateway`: half the reads are 300 ms slower;
4. nothing is cleared by hand: both toggles end on their own, the breaker closes, and everything answers.

Per phase: calls, answers by HTTP status, p50/p99 latency. Exit 0 when the last phase is healthy again.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from chassis.tooling.mesh_testing import RestClient, running_mesh
from chassis.tooling.supervisor import Mesh


@dataclass
class Stream:
    """What one kind of call saw in one phase."""

    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def line(self, what: str) -> str:
        if not self.latencies:
            return f"  {what}: no calls"
        ordered = sorted(self.latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        codes = ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))
        return (f"  {what:<32} {len(ordered):>4} calls ({codes}); p50 {statistics.median(ordered) * 1000:6.1f} ms, "
                f"p99 {p99 * 1000:6.1f} ms")


def fault(mesh: Mesh, *args: str) -> None:
    """`protomesh fault ...`, printed as typed."""
    print(f"$ protomesh fault {' '.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "chassis.tooling.cli", "fault", *args], capture_output=True,
                          text=True, timeout=30, env={**os.environ, "PROTOMESH_STATE_DIR": str(mesh.state_dir)})
    print("  " + (done.stdout.strip() or done.stderr.strip()), flush=True)
    if done.returncode != 0:
        raise SystemExit(f"protomesh fault {' '.join(args)} failed")


def phase(rest: RestClient, execute: str, context_id: str, name: str, seconds: float) -> tuple[Stream, Stream]:
    """Alternate the two kinds of calls for `seconds`; print and return what they saw."""
    executions, reads = Stream(), Stream()
    print(f"== {name} ({seconds:.0f} s)", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for stream, call in ((executions, lambda: rest.post(execute, {"context_id": context_id, "wait": True})),
                             (reads, lambda: rest.get(f"/v1/contexts/{context_id}"))):
            started = time.monotonic()
            reply = call()
            stream.latencies.append(time.monotonic() - started)
            stream.statuses[reply.status] += 1
    print(executions.line("executions (agent -> context)"))
    print(reads.line("reads (gateway -> context)"))
    return executions, reads


def run(seconds: float) -> int:
    """The scenario; `seconds` is the length of each of its four phases."""
    print("starting a mesh of agent and context (one replica each) ...", flush=True)
    with running_mesh(only=["agent", "context"], replicas=1) as mesh:
        rest = RestClient.for_mesh(mesh)
        context = rest.post("/v1/contexts", {"name": "demo", "type": "working"}).body["context"]["context_id"]
        rest.post(f"/v1/contexts/{context}/layers",
                  {"name": "input", "layer_type": "user", "data": {"expression": "6 * 7"}})
        agent = rest.post("/v1/agents", {"name": "toggle-demo", "type": "calculator"}).body["agent"]["agent_id"]
        execute = f"/v1/agents/{agent}/execute"
        phase(rest, execute, context, "healthy", seconds)
        fault(mesh, "set", "context", "--abort", "UNAVAILABLE", "--where", "mesh", "--duration", f"{seconds:g}s")
        phase(rest, execute, context, "context aborts calls from inside the mesh", seconds)
        fault(mesh, "set", "context.GetContext", "--delay", "300ms", "--percent", "50", "--where", "gateway",
              "--duration", f"{seconds:g}s")
        fault(mesh, "list")
        phase(rest, execute, context, "half the gateway's GetContext calls 300 ms slower", seconds)
        # The breaker's half-open probe comes 3 s after it opened (context's contract); give the end a moment.
        executions, reads = phase(rest, execute, context, "toggles cleared themselves", max(seconds, 6.0))
        healthy = executions.statuses[200] > 0 and set(reads.statuses) == {200}
        print(f"== done: {'everything answers again' if healthy else 'NOT recovered'}")
        return 0 if healthy else 1
