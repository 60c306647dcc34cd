"""WorkflowService: definitions (checked against the contracts), executions, history, analytics."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import grpc
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from chassis import Replica
from chassis.authz import creating_organization, tenant
from chassis.errors import AlreadyExists, FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from chassis.idempotency import idempotent
from chassis.protos import from_struct
from chassis.resources import Key, Keyset, found, resource_id
from chassis.standard_rpcs import HealthRpcs
from protomesh.workflow.v1 import workflow_pb2, workflow_service_pb2, workflow_service_pb2_grpc
from services.workflow.deps import WorkflowDeps
from services.workflow.dsl.model import TASK_KINDS, Workflow
from services.workflow.dsl.parse import parse
from services.workflow.messages import definition_message, execution_message, status_name, task_message

logger = logging.getLogger(__name__)

pb = workflow_service_pb2
_DEFINITIONS = Keyset("workflow-definitions", (Key("name", str),))
_EXECUTIONS = Keyset.newest_first("workflow-executions")
_DEFAULT_WINDOW = timedelta(hours=24)


def _traceparent() -> str:
    """The current call's trace context: the execution's tasks become spans of the trace that started it."""
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    if "traceparent" not in carrier:
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            return f"00-{span.trace_id:032x}-{span.span_id:016x}-{span.trace_flags:02x}"
    return carrier.get("traceparent", "")


def _time(value: object, default: datetime) -> datetime:
    return value.ToDatetime(tzinfo=UTC) if value is not None and value.ByteSize() else default  # type: ignore[attr-defined]


class WorkflowServicer(HealthRpcs, workflow_service_pb2_grpc.WorkflowServiceServicer):
    """Implements protomesh.workflow.v1.WorkflowService over PostgreSQL and the engine."""

    def __init__(self, replica: Replica, deps: WorkflowDeps) -> None:
        self._replica = replica
        self._store = deps.store
        self._engine = deps.engine
        self._clock = deps.clock

    # --- definitions ----------------------------------------------------------------------------

    async def _register(self, source: str, *, first: bool, name: str = "") -> workflow_pb2.Definition:
        workflow: Workflow = parse(source)
        if name and workflow.name != name:
            raise InvalidArgument([FieldViolation("source", f"document.name is {workflow.name!r}, not {name!r} "
                                                            "(the definition being updated)")])
        organization = creating_organization("a workflow definition")
        row = await self._store.add_revision(organization, workflow, source, tenant().subject, first=first)
        if row is None and first:
            raise AlreadyExists(f"a workflow definition named {workflow.name!r} exists; "
                                "UpdateDefinition adds a revision")
        if row is None:
            raise NotFound("workflow definition", workflow.name)
        logger.info("workflow definition registered", extra={"definition": row["name"], "revision": row["revision"]})
        return definition_message(row)

    @idempotent(pb.CreateDefinitionResponse)
    async def CreateDefinition(self, request: pb.CreateDefinitionRequest,
                               context: grpc.aio.ServicerContext) -> pb.CreateDefinitionResponse:
        return pb.CreateDefinitionResponse(definition=await self._register(request.source, first=True))

    @idempotent(pb.UpdateDefinitionResponse)
    async def UpdateDefinition(self, request: pb.UpdateDefinitionRequest,
                               context: grpc.aio.ServicerContext) -> pb.UpdateDefinitionResponse:
        return pb.UpdateDefinitionResponse(
            definition=await self._register(request.source, first=False, name=request.name))

    async def ValidateDefinition(self, request: pb.ValidateDefinitionRequest,
                                 context: grpc.aio.ServicerContext) -> pb.ValidateDefinitionResponse:
        workflow = parse(request.source)
        return pb.ValidateDefinitionResponse(name=workflow.name, task_paths=workflow.task_paths)

    async def GetDefinition(self, request: pb.GetDefinitionRequest,
                            context: grpc.aio.ServicerContext) -> pb.GetDefinitionResponse:
        row = found(await self._store.get_definition(request.name, request.revision), "workflow definition",
                    request.name if not request.revision else f"{request.name} revision {request.revision}")
        return pb.GetDefinitionResponse(definition=definition_message(row))

    async def ListDefinitions(self, request: pb.ListDefinitionsRequest,
                              context: grpc.aio.ServicerContext) -> pb.ListDefinitionsResponse:
        result = await self._store.list_definitions(_DEFINITIONS.page(request, None))
        return pb.ListDefinitionsResponse(definitions=[definition_message(r) for r in result.items],
                                          page_info=result.page_info())

    async def ListDefinitionRevisions(self, request: pb.ListDefinitionRevisionsRequest,
                                      context: grpc.aio.ServicerContext) -> pb.ListDefinitionRevisionsResponse:
        rows = await self._store.revisions(request.name)
        if not rows:
            raise NotFound("workflow definition", request.name)
        return pb.ListDefinitionRevisionsResponse(definitions=[definition_message(r) for r in rows])

    async def DeleteDefinition(self, request: pb.DeleteDefinitionRequest,
                               context: grpc.aio.ServicerContext) -> pb.DeleteDefinitionResponse:
        removed = await self._store.delete_definition(request.name)
        if not removed:
            raise NotFound("workflow definition", request.name)
        return pb.DeleteDefinitionResponse(name=request.name, revisions=removed)

    async def GetDefinitionAnalytics(self, request: pb.GetDefinitionAnalyticsRequest,
                                     context: grpc.aio.ServicerContext) -> pb.GetDefinitionAnalyticsResponse:
        found(await self._store.get_definition(request.name), "workflow definition", request.name)
        now = datetime.now(UTC)
        before = _time(request.end_time if request.HasField("end_time") else None, now)
        after = _time(request.start_time if request.HasField("start_time") else None, before - _DEFAULT_WINDOW)
        if after >= before:
            raise InvalidArgument([FieldViolation("start_time", "must be before end_time")])
        counts, percentiles, failures = await self._store.analytics(request.name, after, before)
        analytics = workflow_pb2.DefinitionAnalytics(definition_name=request.name,
                                                     total=sum(int(r["n"]) for r in counts))
        for row in counts:
            analytics.status_counts.add(status=workflow_pb2.ExecutionStatus.Value(f"EXECUTION_STATUS_{row['status']}"),
                                        count=int(row["n"]))
        values = percentiles.get("p") or [None, None, None]
        for target, seconds in zip((analytics.duration_p50, analytics.duration_p95, analytics.duration_p99), values,
                                   strict=True):
            if seconds is not None:
                target.FromTimedelta(timedelta(seconds=float(seconds)))
        for row in failures:
            attempts, failed = int(row["attempts"]), int(row["failures"])
            analytics.task_failures.add(path=row["path"], attempts=attempts, failures=failed,
                                        failure_rate=failed / attempts if attempts else 0.0)
        return pb.GetDefinitionAnalyticsResponse(analytics=analytics)

    # --- executions -----------------------------------------------------------------------------

    @idempotent(pb.StartExecutionResponse)
    async def StartExecution(self, request: pb.StartExecutionRequest,
                             context: grpc.aio.ServicerContext) -> pb.StartExecutionResponse:
        definition = await self._store.get_definition(request.definition_name, request.revision)
        if definition is None:
            raise NotFound("workflow definition", request.definition_name)
        row = await self._store.start(definition, from_struct(request.input), tenant().subject, _traceparent())
        self._engine.wake()
        logger.info("workflow execution started", extra={"execution_id": str(row["id"]),
                                                          "definition": row["definition_name"]})
        return pb.StartExecutionResponse(execution=execution_message(row))

    async def _execution(self, execution_id: str) -> dict[str, object]:
        return found(await self._store.get_execution(resource_id("execution", execution_id)), "execution",
                     execution_id)

    async def GetExecution(self, request: pb.GetExecutionRequest,
                           context: grpc.aio.ServicerContext) -> pb.GetExecutionResponse:
        return pb.GetExecutionResponse(execution=execution_message(await self._execution(request.execution_id)))

    async def ListExecutions(self, request: pb.ListExecutionsRequest,
                             context: grpc.aio.ServicerContext) -> pb.ListExecutionsResponse:
        after = _time(request.start_time, datetime.min.replace(tzinfo=UTC)) if request.HasField("start_time") else None
        before = _time(request.end_time, datetime.max.replace(tzinfo=UTC)) if request.HasField("end_time") else None
        filters = (request.definition_name, request.status, str(after), str(before))
        result = await self._store.list_executions(_EXECUTIONS.page(request, filters), request.definition_name,
                                                   status_name(request.status), after, before)
        return pb.ListExecutionsResponse(executions=[execution_message(r) for r in result.items],
                                         page_info=result.page_info())

    async def CancelExecution(self, request: pb.CancelExecutionRequest,
                              context: grpc.aio.ServicerContext) -> pb.CancelExecutionResponse:
        row = found(await self._store.request_cancel(resource_id("execution", request.execution_id)), "execution",
                    request.execution_id)
        if not row["cancel_requested"]:
            raise FailedPrecondition(f"execution {request.execution_id} is {row['status']}; only a PENDING or "
                                     "RUNNING execution can be cancelled")
        self._engine.wake()
        return pb.CancelExecutionResponse(execution=execution_message(row))

    async def TerminateExecution(self, request: pb.TerminateExecutionRequest,
                                 context: grpc.aio.ServicerContext) -> pb.TerminateExecutionResponse:
        row, changed = await self._store.terminate(resource_id("execution", request.execution_id),
                                                   request.reason or "terminated on request", self._clock.now())
        row = found(row, "execution", request.execution_id)
        if not changed:
            raise FailedPrecondition(f"execution {request.execution_id} is {row['status']}; it has ended already")
        return pb.TerminateExecutionResponse(execution=execution_message(row))

    @idempotent(pb.RetryExecutionResponse)
    async def RetryExecution(self, request: pb.RetryExecutionRequest,
                             context: grpc.aio.ServicerContext) -> pb.RetryExecutionResponse:
        row = await self._store.retry(resource_id("execution", request.execution_id))
        self._engine.wake()
        return pb.RetryExecutionResponse(execution=execution_message(row))

    @idempotent(pb.SignalExecutionResponse)
    async def SignalExecution(self, request: pb.SignalExecutionRequest,
                              context: grpc.aio.ServicerContext) -> pb.SignalExecutionResponse:
        execution_id = resource_id("execution", request.execution_id)
        signal_id = await self._store.signal(execution_id, request.type, from_struct(request.data))
        self._engine.wake()
        return pb.SignalExecutionResponse(signal_id=str(signal_id))

    async def GetExecutionHistory(self, request: pb.GetExecutionHistoryRequest,
                                  context: grpc.aio.ServicerContext) -> pb.GetExecutionHistoryResponse:
        row = await self._execution(request.execution_id)
        steps = await self._store.history(row["id"])  # type: ignore[arg-type]
        return pb.GetExecutionHistoryResponse(execution=execution_message(row),
                                              tasks=[task_message(s) for s in steps])

    async def GetInfo(self, request: pb.GetInfoRequest, context: grpc.aio.ServicerContext) -> pb.GetInfoResponse:
        definitions, active = await self._store.counts()
        return pb.GetInfoResponse(info=self._replica.service_info(), definition_count=definitions,
                                  active_execution_count=active, task_kinds=list(TASK_KINDS))
