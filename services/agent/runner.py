"""Runs executions in this replica: PENDING -> RUNNING -> SUCCEEDED | FAILED | STOPPED."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import grpc

from chassis.errors import FailedPrecondition
from chassis.protos import from_struct, to_struct
from protomesh.context.v1 import context_service_pb2
from protomesh.context.v1.context_service_pb2_grpc import ContextServiceStub
from services.agent.agent_types import AGENT_TYPES, Cancelled, ExpressionError, RunContext
from services.agent.store import AgentStore, ExecutionRow

logger = logging.getLogger(__name__)

CALLER = "agent"
"""How the agent service names itself to the context service's access lists."""

# A stop may arrive at another replica: it flips the row to STOPPED and the runner notices
# at its next progress write, so this bounds how long stopped work keeps a core busy.
PROGRESS_INTERVAL_SECONDS = 0.2

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    "PENDING": frozenset({"RUNNING", "STOPPED", "FAILED"}),
    "RUNNING": frozenset({"SUCCEEDED", "FAILED", "STOPPED"}),
    "SUCCEEDED": frozenset(),
    "FAILED": frozenset(),
    "STOPPED": frozenset(),
}


def sources_of(target: str) -> tuple[str, ...]:
    """States from which `target` may be reached."""
    return tuple(state for state, targets in ALLOWED_TRANSITIONS.items() if target in targets)


class ExecutionRunner:
    """Owns the asyncio tasks of the executions this replica runs."""

    def __init__(self, store: AgentStore, instance_id: str, contexts: ContextServiceStub | None = None) -> None:
        self._store = store
        self.instance_id = instance_id
        self._contexts = contexts
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._run_contexts: dict[uuid.UUID, RunContext] = {}

    def _context_service(self) -> ContextServiceStub:
        if self._contexts is None:
            raise FailedPrecondition("this agent replica has no registry to find the context service; "
                                     "set NATS_URL or CONSUL_HTTP_ADDR")
        return self._contexts

    async def read_context(self, context_id: str) -> dict[str, Any]:
        """The context's layers merged into one view (through the discovery-aware, resilient client)."""
        reply = await self._context_service().GetResolvedContext(
            context_service_pb2.GetResolvedContextRequest(context_id=context_id, caller=CALLER))
        return from_struct(reply.data)

    async def _write_result(self, execution: ExecutionRow, agent_type: str, output: dict[str, Any]) -> str:
        name = f"execution-{execution.id}"
        request = context_service_pb2.AddLayerRequest(
            context_id=execution.context_id, name=name, layer_type="agent-result", caller=CALLER,
            data=to_struct({"agent_id": str(execution.agent_id), "execution_id": str(execution.id),
                            "agent_type": agent_type, "output": output}))
        reply = await self._context_service().AddLayer(request)
        return reply.layer.layer_id

    def start(self, execution: ExecutionRow, agent_type: str, data: dict[str, Any]) -> asyncio.Task[None]:
        """Start running a PENDING execution in the background."""
        ctx = RunContext()
        self._run_contexts[execution.id] = ctx
        task = asyncio.create_task(self._run(execution, agent_type, data, ctx), name=f"execution-{execution.id}")
        self._tasks[execution.id] = task
        task.add_done_callback(lambda _: self._forget(execution.id))
        return task

    def _forget(self, execution_id: uuid.UUID) -> None:
        self._tasks.pop(execution_id, None)
        self._run_contexts.pop(execution_id, None)

    def stop_local(self, execution_id: uuid.UUID) -> None:
        """Ask a locally running execution to stop now (the row is already STOPPED)."""
        ctx = self._run_contexts.get(execution_id)
        if ctx:
            ctx.request_stop()

    async def wait(self, execution_id: uuid.UUID, timeout: float) -> None:
        """Wait up to timeout for a local execution to finish."""
        task = self._tasks.get(execution_id)
        if task:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), timeout)

    async def _run(self, execution: ExecutionRow, agent_type: str, data: dict[str, Any], ctx: RunContext) -> None:
        execution_id = execution.id
        spec = AGENT_TYPES[agent_type]
        if await self._store.transition(execution_id, from_states=sources_of("RUNNING"), to="RUNNING",
                                        runner=self.instance_id) is None:
            return  # stopped before it started
        work = asyncio.create_task(asyncio.to_thread(spec.run, data, ctx))
        watcher = asyncio.create_task(self._watch(execution_id, ctx, work))
        try:
            output = await work
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
        """Let running executions finish within grace, then stop them and mark them FAILED."""
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=grace)
        for ctx in list(self._run_contexts.values()):
            ctx.request_stop()
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=2)
        failed = await self._store.fail_active(self.instance_id, f"replica {self.instance_id} shut down")
        if failed:
            logger.warning("executions interrupted by shutdown", extra={"count": failed})
