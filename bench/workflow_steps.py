"""What the workflow engine costs per step, and how many executions it runs at once (issue 14's Speed).

One run, in this process: PostgreSQL (fsync off) and nats-server started here, the agent and workflow
services served in process (chassis.testing), a 5-step workflow whose every step calls the agent service's
GetAgent, and the same five GetAgent calls made in a plain loop through the same discovery-aware client.
It prints the plain RPC's time per call, the workflow's time per step (from each execution's create and
end times) and the difference, then starts `--concurrent` executions at once and reports how many
finished, how many failed and executions per second. A measurement to read, not a test.

    .venv/bin/python -m bench.workflow_steps [--executions 40] [--concurrent 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import struct_pb2

from chassis.identity import acting_as
from chassis.testing import TEST_PRINCIPAL, InProcess, serve_in_process
from chassis.tooling.infra.nats import NatsProcess
from chassis.tooling.infra.postgres import PostgresProcess
from protomesh.agent.v1 import agent_service_pb2 as agent_pb
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub
from protomesh.workflow.v1 import workflow_pb2 as wf
from protomesh.workflow.v1 import workflow_service_pb2 as pb
from protomesh.workflow.v1.workflow_service_pb2_grpc import WorkflowServiceStub
from services.workflow.engine.calls import MeshCaller
from tests.support.inprocess import build_service

STEPS = 5
GET_AGENT = "protomesh.agent.v1.AgentService/GetAgent"
FINISHED = {wf.EXECUTION_STATUS_SUCCEEDED, wf.EXECUTION_STATUS_FAILED, wf.EXECUTION_STATUS_NEEDS_ATTENTION}


@contextlib.asynccontextmanager
async def infrastructure() -> AsyncIterator[tuple[str, str]]:
    folder = Path(tempfile.mkdtemp(prefix="protomesh-bench-workflow-"))
    await asyncio.to_thread(folder.chmod, 0o755)  # as root, PostgreSQL runs as another user: it must reach it
    postgres = PostgresProcess(folder / "pg", durable=False)
    nats = NatsProcess(folder / "nats", durable=False)
    await asyncio.to_thread(postgres.start)
    await asyncio.to_thread(nats.start)
    try:
        yield postgres.url, nats.url
    finally:
        await asyncio.to_thread(nats.stop)
        await asyncio.to_thread(postgres.stop)
        shutil.rmtree(folder, ignore_errors=True)


def definition() -> str:
    tasks = [{f"step{i}": {"call": GET_AGENT, "with": {"agent_id": "${ $input.agent_id }"}}} for i in range(STEPS)]
    return yaml.safe_dump({"document": {"dsl": "1.0.0", "namespace": "bench", "name": "five-steps",
                                        "version": "1.0.0"}, "do": tasks}, sort_keys=False)


async def plain_loop(workflow: InProcess[Any], agent_id: str, rounds: int) -> float:
    """Seconds per GetAgent made through the same client a call task uses, five per round."""
    caller = MeshCaller(workflow.replica, 10.0)
    with acting_as(TEST_PRINCIPAL):
        await caller.call(GET_AGENT, {"agent_id": agent_id}, "bench-warm", "bench")
        started = time.perf_counter()
        for round_ in range(rounds):
            for step in range(STEPS):
                await caller.call(GET_AGENT, {"agent_id": agent_id}, f"bench-{round_}-{step}", "bench")
        took = time.perf_counter() - started
    await caller.close()
    return took / (rounds * STEPS)


async def finish(stub: WorkflowServiceStub, execution_id: str, timeout: float = 120.0) -> wf.Execution:
    deadline = time.monotonic() + timeout
    while True:
        execution = (await stub.GetExecution(pb.GetExecutionRequest(execution_id=execution_id))).execution
        if execution.status in FINISHED or time.monotonic() > deadline:
            return execution
        # Not faster: the polls are served by the same process and event loop as the engine.
        await asyncio.sleep(0.02)


def seconds(execution: wf.Execution) -> float:
    return (execution.end_time.ToNanoseconds() - execution.create_time.ToNanoseconds()) / 1e9


async def run(executions: int, concurrent: int) -> None:
    async with infrastructure() as (postgres_url, nats_url), contextlib.AsyncExitStack() as stack:
        agent = await stack.enter_async_context(serve_in_process(
            build_service("services.agent"), database_url=postgres_url, nats_url=nats_url,
            env={"DB_POOL_MAX": "10", "AGENT_WORKERS": "1"}))
        workflow = await stack.enter_async_context(serve_in_process(
            build_service("services.workflow"), database_url=postgres_url, nats_url=nats_url,
            env={"DB_POOL_MAX": "10", "WORKFLOW_POLL_SECONDS": "0.05", "WORKFLOW_MAX_RUNNING": str(concurrent)}))
        agent_id = (await agent.stub(AgentServiceStub).RegisterAgent(agent_pb.RegisterAgentRequest(
            name="bench-target", type="calculator"))).agent.agent_id
        stub = workflow.stub(WorkflowServiceStub)
        await stub.CreateDefinition(pb.CreateDefinitionRequest(source=definition()))
        payload = {"agent_id": agent_id}

        async def start() -> str:
            data = struct_pb2.Struct()
            data.update(payload)
            reply = await stub.StartExecution(pb.StartExecutionRequest(definition_name="five-steps", input=data))
            return reply.execution.execution_id

        per_rpc = await plain_loop(workflow, agent_id, executions)
        durations = []
        for _ in range(executions):
            durations.append(seconds(await finish(stub, await start())))
        per_step = statistics.median(durations) / STEPS
        print(f"plain loop: {per_rpc * 1000:.2f} ms per GetAgent ({executions * STEPS} calls)")
        print(f"workflow, one at a time: {per_step * 1000:.2f} ms per step (median of {executions} executions, "
              f"create to end / {STEPS}); engine overhead {(per_step - per_rpc) * 1000:.2f} ms per step "
              f"(target <= 2 ms)")
        began = time.perf_counter()
        ids = set(await asyncio.gather(*(start() for _ in range(concurrent))))
        # One list call a poll (not one per execution): 200 pollers would take the engine's event loop.
        finished: dict[str, int] = {}
        while len(finished) < len(ids) and time.perf_counter() - began < 300:
            await asyncio.sleep(0.1)
            page = await stub.ListExecutions(pb.ListExecutionsRequest(definition_name="five-steps", page_size=1000))
            finished = {e.execution_id: e.status for e in page.executions if e.execution_id in ids
                        and e.status in FINISHED}
        took = time.perf_counter() - began
        ok = sum(1 for status in finished.values() if status == wf.EXECUTION_STATUS_SUCCEEDED)
        print(f"{concurrent} concurrent executions: {ok} succeeded, {concurrent - ok} did not, in {took:.1f} s "
              f"({concurrent / took:.0f} executions/s, {concurrent * STEPS / took:.0f} steps/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executions", type=int, default=40, help="sequential executions measured")
    parser.add_argument("--concurrent", type=int, default=200, help="executions started at once")
    args = parser.parse_args()
    asyncio.run(run(args.executions, args.concurrent))


if __name__ == "__main__":
    main()
