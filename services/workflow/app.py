"""The workflow service, described for the chassis to run."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import chassis
from chassis.events import EventHandlers
from services.workflow.deps import WorkflowDeps
from services.workflow.engine.calls import MeshCaller
from services.workflow.engine.clock import clock_named
from services.workflow.engine.runner import Engine
from services.workflow.listening import listen_consumer
from services.workflow.servicer import WorkflowServicer
from services.workflow.settings import WorkflowSettings
from services.workflow.store import Store


@contextlib.asynccontextmanager
async def lifespan(replica: chassis.Replica, settings: WorkflowSettings) -> AsyncIterator[WorkflowDeps]:
    """Open the store, the mesh caller and the engine; on shutdown hand this replica's leases back."""
    clock = clock_named(settings.clock)
    caller = MeshCaller(replica, settings.call_timeout_seconds)
    # The owner names this process, not just the replica: a restarted replica with the same instance id
    # must not renew or write under the leases of the process it replaced.
    engine = Engine(replica.db, caller, clock, owner=f"{replica.settings.instance_id}/{uuid.uuid4().hex[:8]}",
                    lease_seconds=settings.lease_seconds, poll_seconds=settings.poll_seconds,
                    max_running=settings.max_running, compensation_attempts=settings.compensation_attempts,
                    compensation_backoff_seconds=settings.compensation_backoff_seconds)
    try:
        yield WorkflowDeps(settings, Store(replica.db), engine, clock)
    finally:
        await engine.stop()
        await caller.close()


def handlers(replica: chassis.Replica, deps: WorkflowDeps) -> EventHandlers:
    """The consumer that lets a `listen` wait for another service's domain event."""
    return EventHandlers(consumers=[listen_consumer(deps.store, deps.engine)])


async def schedule(deps: WorkflowDeps) -> None:
    """Claim and run executions (see services.workflow.engine.runner)."""
    await deps.engine.schedule()


async def heartbeat(deps: WorkflowDeps) -> None:
    """Renew this replica's leases."""
    await deps.engine.heartbeat()


def build() -> chassis.Service[WorkflowSettings, WorkflowDeps]:
    """The workflow service: durable Serverless Workflow executions over the mesh's contracts."""
    return chassis.Service(
        name="workflow",
        description="Runs Serverless Workflow definitions checked against the mesh's contracts, durably, with sagas.",
        servicers=[WorkflowServicer],
        settings=WorkflowSettings,
        lifespan=lifespan,
        migrations=Path(__file__).parent / "migrations",
        handlers=handlers,
        background=[chassis.Loop("workflow-scheduler", schedule), chassis.Loop("workflow-leases", heartbeat)],
    )
