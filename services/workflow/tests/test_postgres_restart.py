"""PostgreSQL restarted under a running workflow replica: the execution's timer and checkpoints survive, the
replica's pool reconnects, the scheduler's failed claims are retried, and the execution finishes."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chassis.testing import InProcess, serve_in_process
from chassis.tooling.infra.postgres import PostgresProcess
from protomesh.workflow.v1 import workflow_pb2 as wf
from protomesh.workflow.v1.workflow_service_pb2_grpc import WorkflowServiceStub
from services.workflow.deps import WorkflowDeps
from services.workflow.engine.clock import ManualClock
from services.workflow.tests.conftest import FAST
from services.workflow.tests.support import document, history, register, start, unique, wait_for
from tests.support.infra_fixtures import fresh_nats
from tests.support.inprocess import build_service


@pytest.fixture(scope="module")
async def restartable() -> AsyncIterator[tuple[PostgresProcess, InProcess[WorkflowDeps]]]:
    folder = Path(tempfile.mkdtemp(prefix="protomesh-test-wf-pg-"))
    await asyncio.to_thread(folder.chmod, 0o755)  # as root PostgreSQL runs as another user: it must reach it
    postgres = PostgresProcess(folder / "data", durable=False)
    await asyncio.to_thread(postgres.start)
    try:
        async with contextlib.AsyncExitStack() as stack:
            nats = await stack.enter_async_context(fresh_nats())
            workflow = await stack.enter_async_context(serve_in_process(
                build_service("services.workflow"), database_url=postgres.url, nats_url=nats.url, env=FAST))
            yield postgres, workflow
    finally:
        await asyncio.to_thread(postgres.stop)
        shutil.rmtree(folder, ignore_errors=True)


async def test_an_execution_outlives_a_postgres_restart(
        restartable: tuple[PostgresProcess, InProcess[WorkflowDeps]]) -> None:
    postgres, workflow = restartable
    stub = workflow.stub(WorkflowServiceStub)
    name = await register(stub, document(unique("pg-restart"), [
        {"before": {"set": {"step": 1}}},
        {"hold": {"wait": "PT1H"}},
        {"after": {"set": {"step": 2}}},
    ]))
    execution_id = await start(stub, name)
    await wait_for(stub, execution_id, waiting=True)
    await asyncio.to_thread(postgres.stop)
    await asyncio.to_thread(postgres.start)
    clock = workflow.deps.clock
    assert isinstance(clock, ManualClock)
    clock.advance(7200)
    execution = await wait_for(stub, execution_id, timeout=30)
    assert execution.status == wf.EXECUTION_STATUS_SUCCEEDED, execution.error
    assert dict(execution.output) == {"step": 2.0}
    assert [t.path for t in await history(stub, execution_id)] == ["do[0].before", "do[1].hold", "do[2].after"]


async def test_executions_checkpointing_through_a_postgres_restart_all_finish(
        restartable: tuple[PostgresProcess, InProcess[WorkflowDeps]]) -> None:
    postgres, workflow = restartable
    stub = workflow.stub(WorkflowServiceStub)
    steps = 40
    name = await register(stub, document(unique("pg-busy"), [
        {"each": {"for": {"each": "i", "in": "${ [range(" + str(steps) + ")] }"},
                  "do": [{"count": {"set": {"n": "${ $i + 1 }"}}}]}},
    ]))
    ids = [await start(stub, name) for _ in range(5)]
    await asyncio.to_thread(postgres.stop)  # while they write their checkpoints
    await asyncio.to_thread(postgres.start)
    for execution_id in ids:
        execution = await wait_for(stub, execution_id, timeout=45)
        assert execution.status == wf.EXECUTION_STATUS_SUCCEEDED, execution.error
        assert dict(execution.output) == {"n": float(steps)}
        counted = [t for t in await history(stub, execution_id) if t.kind == "set"]
        assert len(counted) == steps  # each loop step recorded once
