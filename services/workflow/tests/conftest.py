"""The workflow service in this process with the agent service beside it (real PostgreSQL and NATS, no Envoy).

One module's tests share one NATS, one PostgreSQL database per service, one workflow replica (its clock
manual: tests move time) and one agent replica the workflow finds through the registry, as in the mesh.
Every test registers definitions under names of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from chassis.testing import InProcess, serve_in_process
from services.workflow.deps import WorkflowDeps
from tests.support.infra_fixtures import fresh_nats, session_postgres
from tests.support.inprocess import build_service

FAST = {"WORKFLOW_CLOCK": "manual", "WORKFLOW_LEASE_SECONDS": "2", "WORKFLOW_POLL_SECONDS": "0.1",
        "WORKFLOW_COMPENSATION_BACKOFF_SECONDS": "60"}
"""A manual clock, short leases (a stopped replica's work moves within ~2 s), compensation retries a
(skippable) minute apart."""


@dataclass(frozen=True)
class Mesh:
    """The services a test calls, and the URLs to start more replicas on."""

    workflow: InProcess[WorkflowDeps]
    agent: InProcess[Any]
    database_url: str
    nats_url: str


@contextlib.asynccontextmanager
async def workflow_replica(database_url: str, nats_url: str) -> AsyncIterator[InProcess[WorkflowDeps]]:
    """Another replica of the workflow service on the same database (for failover tests)."""
    async with serve_in_process(build_service("services.workflow"), database_url=database_url, nats_url=nats_url,
                                env=FAST, fresh_database=False) as replica:
        yield replica


@pytest.fixture(scope="module")
async def mesh(pytestconfig: pytest.Config) -> AsyncIterator[Mesh]:
    postgres = session_postgres(pytestconfig)
    async with contextlib.AsyncExitStack() as stack:
        nats = await stack.enter_async_context(fresh_nats())
        agent = await stack.enter_async_context(serve_in_process(
            build_service("services.agent"), database_url=postgres.url, nats_url=nats.url, env={"AGENT_WORKERS": "2"}))
        workflow = await stack.enter_async_context(serve_in_process(
            build_service("services.workflow"), database_url=postgres.url, nats_url=nats.url, env=FAST))
        assert workflow.database_url is not None
        yield Mesh(workflow, agent, workflow.database_url, nats.url)
