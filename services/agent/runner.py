"""Runs executions: PENDING -> RUNNING -> SUCCEEDED | FAILED | STOPPED.

With NATS, an execution is a task on the work queue (`agent.run_execution`): any replica's worker
may run it, a worker that dies mid-job leaves it to be redelivered and taken over by another, and
a stop reaches whichever worker runs it through the execution row (the worker polls it while
writing progress). Without NATS, the replica that accepted the execution runs it itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc

from chassis.authz import acting_for
from chassis.errors import FailedPrecondition, Unavailable
from chassis.events import EventBus, Task, Worker
from chassis.protos import from_struct, to_struct
from protomesh.agent.v1 import tasks_pb2
from protomesh.context.v1 import context_service_pb2
from protomesh.context.v1.context_service_pb2_grpc import ContextServiceStub
from services.agent import field_report
from services.agent.agent_types import AGENT_TYPES, Cancelled, ExpressionError, RunContext
from services.agent.rows import ExecutionRow
from services.agent.store import AgentStore
from services.field.client import FieldClient

logger = logging.getLogger(__name__)

TASK_KIND = "agent.run_execution"

# A stop may arrive at another replica: it flips the row to STOPPED and the runner notices
# at its next progress write, so this bounds how long stopped work keeps a core busy.
PROGRESS_INTERVAL_SECONDS = 0.2
WAIT_POLL_SECONDS = 0.05

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    "PENDING": frozenset({"RUNNING", "STOPPED", "FAILED"}),
    "RUNNING": frozenset({"SUCCEEDED", "FAILED", "STOPPED"}),
    "SUCCEEDED": frozenset(),
    "FAILED": frozenset(),
    "STOPPED": frozenset(),
}
FINAL = frozenset(state for state, targets in ALLOWED_TRANSITIONS.items() if not targets)


def sources_of(target: str) -> tuple[str, ...]:
    """States from which `target` may be reached."""
    return tuple(state for state, targets in ALLOWED_TRANSITIONS.items() if target in targets)


class ExecutionRunner:
    """Dispatches executions and runs the ones this replica's worker (or, without NATS, this replica) takes."""

    def __init__(self, store: AgentStore, instance_id: str, contexts: ContextServiceStub | None = None,
                 events: Callable[[], EventBus | None] = lambda: None, fields: FieldClient | None = None) -> None:
        self._store = store
        self.instance_id = instance_id
        self._contexts = contexts
        self._fields = fields
        self._events = events
        self._local: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._running: dict[uuid.UUID, RunContext] = {}

    def worker(self, concurrency: int, ack_wait: float) -> Worker:
        """The task-queue worker that runs executions on this replica."""
        return Worker([TASK_KIND], self._run_task, ack_wait=ack_wait, concurrency=concurrency)

    # --- contexts -----------------------------------------------------------------------------------
    # The context service checks its access list against the principal of each call, and finds only
    # contexts of that principal's organization: while ExecuteAgent is served that is its caller (the
    # chassis client forwards the caller's claims); in the task worker it is the agent service's own
    # principal, `service:agent`, acting in the execution's organization (chassis.acting_for). So a
    # context with an access list must be shared with `service:agent` for executions to read and write
    # it, and a context of another organization is NOT_FOUND to both.

    def _context_service(self) -> ContextServiceStub:
        if self._contexts is None:
            raise FailedPrecondition("this agent replica has no registry to find the context service; "
                                     "set NATS_URL or CONSUL_HTTP_ADDR")
        return self._contexts

    async def read_context(self, context_id: str) -> dict[str, Any]:
        """The context's layers merged into one view (through the discovery-aware, resilient client)."""
        reply = await self._context_service().GetResolvedContext(
            context_service_pb2.GetResolvedContextRequest(context_id=context_id))
        return from_struct(reply.data)

    async def _write_result(self, execution: ExecutionRow, agent_type: str, output: dict[str, Any]) -> str:
        request = context_service_pb2.AddLayerRequest(
            context_id=execution.context_id, name=f"execution-{execution.id}", layer_type="agent-result",
            data=to_struct({"agent_id": str(execution.agent_id), "execution_id": str(execution.id),
                            "agent_type": agent_type, "output": output}))
        try:
            reply = await self._context_service().AddLayer(request)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
            # A worker that took over a redelivered execution finds the first worker's layer.
            layers = await self._context_service().ListLayers(context_service_pb2.ListLayersRequest(
                context_id=execution.context_id, layer_type="agent-result", page_size=1000))
            return next(layer.layer_id for layer in layers.layers if layer.name == request.name)
        return reply.layer.layer_id

    # --- dispatch -----------------------------------------------------------------------------------

    async def dispatch(self, execution: ExecutionRow, agent_type: str, data: dict[str, Any]) -> None:
        """Hand a PENDING execution to the work queue, or run it here when there is no queue."""
        events = self._events()
        if events is None:
            self._start_local(execution, agent_type, data)
            return
        try:
            await events.tasks.submit(TASK_KIND, tasks_pb2.RunExecution(execution_id=str(execution.id)),
                                           task_id=str(execution.id))
        except Exception as exc:
            await self._store.transition(execution.id, from_states=("PENDING",), to="FAILED",
                                         error=f"could not queue the execution: {exc}")
            raise Unavailable("the task queue (NATS) is unavailable; retry shortly") from exc

    def _start_local(self, execution: ExecutionRow, agent_type: str, data: dict[str, Any]) -> None:
        task = asyncio.create_task(self._run(execution, agent_type, data), name=f"execution-{execution.id}")
        self._local[execution.id] = task
        task.add_done_callback(lambda _: self._local.pop(execution.id, None))

    async def _run_task(self, payload: tasks_pb2.RunExecution, task: Task) -> None:
        """Worker side: run (or take over) the execution a task names; returning acknowledges the task.

        The worker's own principal (`service:agent`) belongs to no organization: it acts in the execution's,
        so every query and the context calls below are that organization's, and nothing else is visible.
        """
        execution_id = uuid.UUID(payload.execution_id)
        organization = await self._store.execution_organization(execution_id)
        if organization is None:
            return  # deregistered with its agent
        with acting_for(organization):
            await self._run_in_organization(execution_id)

    async def _run_in_organization(self, execution_id: uuid.UUID) -> None:
        execution = await self._store.get_execution(execution_id)
        if execution is None or execution.state in FINAL:
            return  # deregistered, stopped before it started, or finished by a worker that died before acking
        agent = await self._store.get_agent(execution.agent_id)
        if agent is None:
            return
        try:
            resolved = await self.read_context(execution.context_id) if execution.context_id else {}
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
                await self._store.transition(execution.id, from_states=("PENDING", "RUNNING"), to="FAILED",
                                             error=f"context {execution.context_id}: {error.details()}")
                return
            raise  # the context service is down: let the queue retry the task with backoff
        data = {**agent.config, **resolved, **execution.input}
        if agent.type == field_report.NAME:
            try:
                data = await field_report.gather(self._fields, data)
            except grpc.aio.AioRpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    await self._store.transition(execution.id, from_states=("PENDING", "RUNNING"), to="FAILED",
                                                 error=f"field service: {error.details()}")
                    return
                raise  # the field service is unreachable now: let the queue retry the task with backoff
            except FailedPrecondition as exc:  # no registry to find it: retrying would not help
                await self._store.transition(execution.id, from_states=("PENDING", "RUNNING"), to="FAILED",
                                             error=f"field service: {exc.message}")
                return
        await self._run(execution, agent.type, data)

    async def wait(self, execution_id: uuid.UUID, timeout: float) -> None:
        """Wait up to timeout for an execution (run anywhere) to reach a final state."""
        local = self._local.get(execution_id)
        if local:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(local), timeout)
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            execution = await self._store.get_execution(execution_id)
            if execution is None or execution.state in FINAL:
                return
            await asyncio.sleep(WAIT_POLL_SECONDS)

    def stop_local(self, execution_id: uuid.UUID) -> None:
        """Ask the work of an execution running here to stop now (its row is already STOPPED)."""
        ctx = self._running.get(execution_id)
        if ctx:
            ctx.request_stop()

    # --- running --------------------------------------------------------------------------------------

    async def _run(self, execution: ExecutionRow, agent_type: str, data: dict[str, Any]) -> None:
        execution_id = execution.id
        # PENDING -> RUNNING, or RUNNING -> RUNNING when this worker takes over from one that died.
        if await self._store.transition(execution_id, from_states=("PENDING", "RUNNING"), to="RUNNING",
                                        runner=self.instance_id) is None:
            return  # stopped before it started
        ctx = RunContext()
        self._running[execution_id] = ctx
        try:
            await self._work(execution, agent_type, data, ctx)
        finally:
            self._running.pop(execution_id, None)

    async def _work(self, execution: ExecutionRow, agent_type: str, data: dict[str, Any], ctx: RunContext) -> None:
        execution_id = execution.id
        if agent_type == field_report.NAME and field_report.GATHERED not in data:  # run here, not from the queue
            try:
                data = await field_report.gather(self._fields, data)
            except (grpc.aio.AioRpcError, FailedPrecondition) as exc:
                reason = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else exc.message
                await self._store.transition(execution_id, from_states=sources_of("FAILED"), to="FAILED",
                                             error=f"field service: {reason}")
                return
        work = asyncio.create_task(asyncio.to_thread(AGENT_TYPES[agent_type].run, data, ctx))
        watcher = asyncio.create_task(self._watch(execution_id, ctx, work))
        try:
            output = await asyncio.shield(work)
        except asyncio.CancelledError:
            ctx.request_stop()  # the replica is shutting down: stop the thread; the task will be redelivered
            raise
        except Cancelled:
            logger.info("execution stopped", extra={"execution_id": str(execution_id)})
            return  # the row was set STOPPED by whoever asked
        except (ExpressionError, ValueError, ArithmeticError, RecursionError) as exc:
            await self._store.transition(execution_id, from_states=sources_of("FAILED"), to="FAILED",
                                         error=f"{type(exc).__name__}: {exc}")
            return
        except Exception as exc:  # an agent type's bug must fail its execution, not the replica
            logger.exception("execution crashed", extra={"execution_id": str(execution_id)})
            await self._store.transition(execution_id, from_states=sources_of("FAILED"), to="FAILED",
                                         error=f"internal error: {type(exc).__name__}")
            return
        finally:
            watcher.cancel()
        layer_id = ""
        if execution.context_id:
            try:
                layer_id = await self._write_result(execution, agent_type, output)
            except Exception as exc:  # the result could not reach its context: the execution did not complete
                reason = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
                await self._store.transition(execution_id, from_states=("RUNNING",), to="FAILED", output=output,
                                             error=f"could not write the result to context {execution.context_id}: "
                                                   f"{reason}")
                return
        await self._store.transition(execution_id, from_states=("RUNNING",), to="SUCCEEDED", output=output,
                                     progress=1.0, result_layer_id=layer_id)

    async def _watch(self, execution_id: uuid.UUID, ctx: RunContext, work: asyncio.Task[Any]) -> None:
        """Write progress periodically; stop the work if the row was STOPPED elsewhere."""
        while not work.done():
            await asyncio.sleep(PROGRESS_INTERVAL_SECONDS)
            try:
                state = await self._store.report_progress(execution_id, ctx.progress)
            except Exception:  # progress is best effort; the final transition will tell
                logger.warning("progress update failed", extra={"execution_id": str(execution_id)})
                continue
            if state != "RUNNING":
                ctx.request_stop()
                return

    async def shutdown(self, grace: float) -> None:
        """Stop local work; without a task queue, executions this replica cannot finish are marked FAILED.

        With a queue, the worker has already stopped (its unacknowledged tasks go to another replica).
        """
        if self._local:
            await asyncio.wait(list(self._local.values()), timeout=grace)
        for ctx in list(self._running.values()):
            ctx.request_stop()
        if self._local:
            await asyncio.wait(list(self._local.values()), timeout=2)
        if self._events() is None:
            failed = await self._store.fail_active(self.instance_id, f"replica {self.instance_id} shut down")
            if failed:
                logger.warning("executions interrupted by shutdown", extra={"count": failed})


