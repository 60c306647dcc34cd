"""The agent service, described for the chassis to run."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import chassis
from chassis.events import EventHandlers
from protomesh.context.v1.context_service_pb2_grpc import ContextServiceStub
from services.agent.deps import AgentDeps
from services.agent.runner import ExecutionRunner
from services.agent.servicer import AgentServicer
from services.agent.settings import AgentSettings
from services.agent.store import AgentStore
from services.agent.v2_servicer import AgentV2Servicer
from services.field.client import FieldClient


@contextlib.asynccontextmanager
async def lifespan(replica: chassis.Replica, settings: AgentSettings) -> AsyncIterator[AgentDeps]:
    """Open the store and the execution runner; on shutdown let executions finish within the grace period."""
    store = AgentStore(replica.db)
    contexts = await replica.client("context", ContextServiceStub) if replica.registry else None
    fields = await FieldClient.connect(replica) if replica.registry else None  # for field-report executions
    runner = ExecutionRunner(store, replica.settings.instance_id, contexts, events=lambda: replica.events,
                             fields=fields)
    try:
        yield AgentDeps(settings, store, runner)
    finally:
        await runner.shutdown(replica.settings.shutdown_grace_seconds)


def handlers(replica: chassis.Replica, deps: AgentDeps) -> EventHandlers:
    """Executions run on the work queue: every replica's worker takes tasks of any agent."""
    return EventHandlers(workers=[deps.runner.worker(concurrency=deps.settings.workers,
                                                  ack_wait=deps.settings.task_ack_wait_seconds)])


def build() -> chassis.Service[AgentSettings, AgentDeps]:
    """The agent service: registers agents, runs their executions, helps find them."""
    return chassis.Service(
        name="agent",
        description="Registers agents, runs their executions and helps find them.",
        # v1 (deprecated) and v2 side by side: one store, one runner (docs/versions.md).
        servicers=[AgentServicer, AgentV2Servicer],
        settings=AgentSettings,
        lifespan=lifespan,
        migrations=Path(__file__).parent / "migrations",
        handlers=handlers,
    )
