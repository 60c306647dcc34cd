"""Helpers of the workflow tests: register a definition, start it, wait for a status (bounded polls)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import grpc
import yaml
from google.protobuf import struct_pb2

from protomesh.workflow.v1 import workflow_pb2
from protomesh.workflow.v1 import workflow_service_pb2 as pb
from protomesh.workflow.v1.workflow_service_pb2_grpc import WorkflowServiceStub

FINISHED = {workflow_pb2.EXECUTION_STATUS_SUCCEEDED, workflow_pb2.EXECUTION_STATUS_FAILED,
            workflow_pb2.EXECUTION_STATUS_CANCELLED, workflow_pb2.EXECUTION_STATUS_TERMINATED,
            workflow_pb2.EXECUTION_STATUS_NEEDS_ATTENTION}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def document(name: str, tasks: list[Any], **extra: Any) -> str:
    """A DSL document (YAML) named `name` with these top-level tasks."""
    return yaml.safe_dump({"document": {"dsl": "1.0.0", "namespace": "test", "name": name, "version": "1.0.0"},
                           "do": tasks, **extra}, sort_keys=False)


async def register(stub: WorkflowServiceStub, source: str) -> str:
    reply = await stub.CreateDefinition(pb.CreateDefinitionRequest(source=source))
    return reply.definition.name


async def start(stub: WorkflowServiceStub, name: str, data: dict[str, Any] | None = None, revision: int = 0,
                request_id: str = "") -> str:
    payload = struct_pb2.Struct()
    payload.update(data or {})
    reply = await stub.StartExecution(pb.StartExecutionRequest(definition_name=name, input=payload, revision=revision,
                                                               request_id=request_id))
    return reply.execution.execution_id


async def wait_for(stub: WorkflowServiceStub, execution_id: str, statuses: set[int] | None = None, *,
                   waiting: bool = False, after: str = "", timeout: float = 15.0) -> workflow_pb2.Execution:
    """The execution once its status is in `statuses` (default: finished), or once it waits (`waiting`) on
    something other than `after` (what it waited on before the test moved the clock)."""
    wanted = statuses or FINISHED
    deadline = time.monotonic() + timeout
    while True:
        try:
            execution = (await stub.GetExecution(pb.GetExecutionRequest(execution_id=execution_id))).execution
        except grpc.aio.AioRpcError as error:
            # UNAVAILABLE says "retry": PostgreSQL restarting under the replica (test_postgres_restart).
            if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        waits = bool(execution.waiting) and execution.waiting != after
        if (waiting and waits) or (not waiting and execution.status in wanted):
            return execution
        if time.monotonic() > deadline:
            raise AssertionError(f"execution {execution_id} still {workflow_pb2.ExecutionStatus.Name(execution.status)}"
                                 f" (waiting {execution.waiting!r}) after {timeout}s: {execution}")
        await asyncio.sleep(0.02)


async def history(stub: WorkflowServiceStub, execution_id: str) -> list[workflow_pb2.TaskRecord]:
    return list((await stub.GetExecutionHistory(pb.GetExecutionHistoryRequest(execution_id=execution_id))).tasks)
