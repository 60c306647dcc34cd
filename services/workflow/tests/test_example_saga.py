"""The example saga (examples/order_saga.yaml) against real agent, context and integration replicas: it
registers an agent, writes a context and stores a receipt, fails at its last step, and the compensations
undo the three, latest first; the execution's domain events say so."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf import json_format, struct_pb2

from chassis.testing import InProcess, serve_in_process
from protomesh.agent.v1 import agent_service_pb2 as agent_pb
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub
from protomesh.context.v1 import context_service_pb2 as context_pb
from protomesh.context.v1.context_service_pb2_grpc import ContextServiceStub
from protomesh.integration.v1 import integration_pb2
from protomesh.integration.v1 import integration_service_pb2 as integration_pb
from protomesh.integration.v1.integration_service_pb2_grpc import IntegrationServiceStub
from protomesh.workflow.v1 import workflow_pb2 as wf
from protomesh.workflow.v1 import workflow_service_pb2 as pb
from protomesh.workflow.v1.workflow_service_pb2_grpc import WorkflowServiceStub
from services.workflow.tests.conftest import FAST
from services.workflow.tests.support import history, start, unique, wait_for
from tests.support.infra_fixtures import fresh_nats, session_postgres
from tests.support.inprocess import build_service

EXAMPLE = Path(__file__).parents[3] / "examples" / "order_saga.yaml"


@pytest.fixture(scope="module")
async def services(pytestconfig: pytest.Config) -> AsyncIterator[dict[str, InProcess[Any]]]:
    postgres = session_postgres(pytestconfig)
    with pytest.MonkeyPatch.context() as patch:
        # The integration service reads its key from the process environment; removed when the module ends.
        patch.setenv("INTEGRATION_ENCRYPTION_KEY", base64.b64encode(os.urandom(32)).decode())
        async with contextlib.AsyncExitStack() as stack:
            nats = await stack.enter_async_context(fresh_nats())
            served = {}
            for name, env in (("agent", {"AGENT_WORKERS": "1"}), ("context", {}), ("integration", {}),
                              ("workflow", FAST)):
                served[name] = await stack.enter_async_context(serve_in_process(
                    build_service(f"services.{name}"), database_url=postgres.url, nats_url=nats.url, env=env))
            yield served


async def test_the_example_saga_undoes_its_three_steps(services: dict[str, InProcess[Any]]) -> None:
    integrations = services["integration"].stub(IntegrationServiceStub)
    root = tempfile.mkdtemp(prefix="order-saga-test-")
    config = struct_pb2.Struct()
    config.update({"root": root})
    storage = (await integrations.CreateIntegration(integration_pb.CreateIntegrationRequest(
        name=unique("receipts"), kind=integration_pb2.INTEGRATION_KIND_LOCAL_STORAGE, config=config))).integration
    workflows = services["workflow"].stub(WorkflowServiceStub)
    await workflows.CreateDefinition(pb.CreateDefinitionRequest(source=EXAMPLE.read_text()))
    order = unique("o")
    execution_id = await start(workflows, "order-saga", {"order_id": order, "amount": 42,
                                                         "storage_integration_id": storage.integration_id})
    execution = await wait_for(workflows, execution_id)
    assert execution.status == wf.EXECUTION_STATUS_FAILED, execution
    assert execution.compensated and execution.error.title == "card declined"
    tasks = await history(workflows, execution_id)
    done = [t.path for t in tasks if t.status == wf.TASK_STATUS_SUCCEEDED and t.kind == "call"]
    assert done == ["do[0].registerAgent", "do[1].writeContext", "do[2].storeReceipt",
                    "do[2].storeReceipt.compensate[0].deleteReceipt", "do[1].writeContext.compensate[0].deleteContext",
                    "do[0].registerAgent.compensate[0].deregisterAgent"]
    agents = await services["agent"].stub(AgentServiceStub).ListAgents(agent_pb.ListAgentsRequest(
        name_contains=f"order-{order}"))
    assert list(agents.agents) == []
    contexts = services["context"].stub(ContextServiceStub)
    written = next(t for t in tasks if t.path == "do[1].writeContext")
    context_id = str(json_format.MessageToDict(written.output)["context"]["context_id"])
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await contexts.GetContext(context_pb.GetContextRequest(context_id=context_id))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    assert not await asyncio.to_thread(Path(root, "receipts", f"{order}.json").exists)
    async with await psycopg.AsyncConnection.connect(services["workflow"].database_url or "") as conn:
        cur = await conn.execute("SELECT event_type FROM workflow.outbox WHERE event_type LIKE %s ORDER BY seq",
                                 ("protomesh.workflow.%",))
        events = [row[0] for row in await cur.fetchall()]
    assert events == ["protomesh.workflow.v1.ExecutionStarted", "protomesh.workflow.v1.ExecutionCompensated",
                           "protomesh.workflow.v1.ExecutionFailed"]
