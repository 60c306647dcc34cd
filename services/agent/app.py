"""The agent service, described for the chassis to run."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import chassis
from chassis.config import env_float, env_int
from chassis.events import EventsSpec
from protomesh.agent.v1 import agent_service_pb2, agent_service_pb2_grpc
from protomesh.context.v1.context_service_pb2_grpc import ContextServiceStub
from services.agent.runner import ExecutionRunner
from services.agent.servicer import AgentServicer
from services.agent.store import AgentStore


@contextlib.asynccontextmanager
async def lifespan(runtime: chassis.Runtime) -> AsyncIterator[None]:
    """Open the store and the execution runner; on shutdown let executions finish within the grace period."""
    store = AgentStore(runtime.db)
    contexts = await runtime.client("context", ContextServiceStub) if runtime.registry else None
    runner = ExecutionRunner(store, runtime.settings.instance_id, contexts, events=lambda: runtime.events)
    runtime.state.update(store=store, runner=runner)
    try:
        yield
    finally:
        await runner.shutdown(runtime.settings.shutdown_grace_seconds)


def events(runtime: chassis.Runtime) -> EventsSpec:
    """Executions run on the work queue: every replica's worker takes tasks of any agent."""
    env = os.environ
    runner: ExecutionRunner = runtime.state["runner"]
    return EventsSpec(workers=[runner.worker(
        concurrency=env_int(env, "AGENT_WORKERS", 2, low=1, high=64),
        ack_wait=env_float(env, "AGENT_TASK_ACK_WAIT_SECONDS", 30.0, low=1, high=3600),
    )])


def build() -> chassis.Service:
    """The agent service: registers agents, runs their executions, helps find them."""
    return chassis.Service(
        name="agent",
        description="Registers agents, runs their executions and helps find them.",
        servicers=[
            chassis.Servicer(
                descriptor=agent_service_pb2.DESCRIPTOR.services_by_name["AgentService"],
                add_to_server=agent_service_pb2_grpc.add_AgentServiceServicer_to_server,
                factory=AgentServicer,
            )
        ],
        migrations=Path(__file__).parent / "migrations",
        lifespan=lifespan,
        events=events,
    )
