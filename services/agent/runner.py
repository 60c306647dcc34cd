"""Runs executions in this replica: PENDING -> RUNNING -> SUCCEEDED | FAILED | STOPPED."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from services.agent.agent_types import AGENT_TYPES, Cancelled, ExpressionError, RunContext
from services.agent.store import AgentStore, ExecutionRow

logger = logging.getLogger(__name__)

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

    def __init__(self, store: AgentStore, instance_id: str) -> None:
        self._store = store
        self.instance_id = instance_id
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._contexts: dict[uuid.UUID, RunContext] = {}

    def start(self, execution: ExecutionRow, agent_type: str, data: dict[str, Any]) -> asyncio.Task[None]:
        """Start running a PENDING execution in the background."""
        ctx = RunContext()
        self._contexts[execution.id] = ctx
        task = asyncio.create_task(self._run(execution.id, agent_type, data, ctx), name=f"execution-{execution.id}")
        self._tasks[execution.id] = task
        task.add_done_callback(lambda _: (self._tasks.pop(execution.id, None), self._contexts.pop(execution.id, None)))
        return task

    def stop_local(self, execution_id: uuid.UUID) -> None:
        """Ask a locally running execution to stop now (the row is already STOPPED)."""
        ctx = self._contexts.get(execution_id)
        if ctx:
            ctx.request_stop()

    async def wait(self, execution_id: uuid.UUID, timeout: float) -> None:
        """Wait up to timeout for a local execution to finish."""
        task = self._tasks.get(execution_id)
        if task:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), timeout)

    async def _run(self, execution_id: uuid.UUID, agent_type: str, data: dict[str, Any], ctx: RunContext) -> None:
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
        await self._store.transition(execution_id, from_states=("RUNNING",), to="SUCCEEDED", output=output,
                                     progress=1.0)

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
        for ctx in list(self._contexts.values()):
            ctx.request_stop()
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=2)
        failed = await self._store.fail_active(self.instance_id, f"replica {self.instance_id} shut down")
        if failed:
            logger.warning("executions interrupted by shutdown", extra={"count": failed})
