"""Each replica's scheduler: claims runnable executions under a lease, runs them, renews, finishes them.

An execution is runnable when it is PENDING, or RUNNING/COMPENSATING with no live lease and either its
timer is due (by the engine's clock), a cancel was requested, or a signal it waits for has arrived. The
claim is one UPDATE ... FOR UPDATE SKIP LOCKED, so two replicas never claim the same execution; a
replica renews the leases of what it runs every third of the lease, so a SIGKILLed replica's
executions become claimable within WORKFLOW_LEASE_SECONDS and another replica resumes them from their
checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from chassis.authz import acting_for
from chassis.events import outbox
from chassis.protos import timestamp
from protomesh.workflow.v1 import events_pb2
from services.workflow.dsl.model import Workflow
from services.workflow.dsl.parse import parse
from services.workflow.engine.calls import MeshCaller
from services.workflow.engine.checkpoints import Checkpoints
from services.workflow.engine.clock import Clock
from services.workflow.engine.interpreter import SOURCE, Interpreter, Scope, static_path
from services.workflow.engine.outcomes import ERRORS, Cancelled, LeaseLost, Suspend, WorkflowError

logger = logging.getLogger(__name__)

# `waiting_for` outlives the claim: an event of that type arriving while this replica re-runs the listen (say,
# after a signal its filter refuses) must still become a signal, or the listen suspends again and misses it.
_CLAIM = """
UPDATE executions e SET lease_owner = %(owner)s, lease_until = now() + make_interval(secs => %(lease)s),
    status = CASE WHEN e.status = 'PENDING' THEN 'RUNNING' ELSE e.status END,
    waiting = '', wake_at = NULL
FROM definitions d
WHERE e.id IN (
    SELECT x.id FROM executions x
    WHERE x.status IN ('PENDING', 'RUNNING', 'COMPENSATING')
      AND (x.lease_until IS NULL OR x.lease_until < now())
      AND (x.wake_at IS NULL OR x.wake_at <= %(clock)s OR x.cancel_requested
           OR (x.waiting_for IS NOT NULL AND EXISTS (
               SELECT 1 FROM signals s WHERE s.execution_id = x.id AND s.type = x.waiting_for
                                         AND s.consumed_by IS NULL)))
    ORDER BY x.created_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
  AND d.organization_id = e.organization_id AND d.name = e.definition_name AND d.revision = e.revision
RETURNING e.id, e.organization_id, e.definition_name, e.revision, e.status, e.input, e.cancel_requested,
          e.traceparent, e.error, e.parent_execution_id, d.source
"""


class Engine:
    """Runs executions on this replica: the scheduler loop, the lease heartbeat and one task per execution."""

    def __init__(self, pool: AsyncConnectionPool, caller: MeshCaller, clock: Clock, *, owner: str,
                 lease_seconds: float, poll_seconds: float, max_running: int, compensation_attempts: int,
                 compensation_backoff_seconds: float) -> None:
        self._pool, self._caller, self.clock = pool, caller, clock
        self.owner = owner
        self._lease, self._poll, self._max = lease_seconds, poll_seconds, max_running
        self._compensation_attempts = compensation_attempts
        self._compensation_backoff = compensation_backoff_seconds
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        clock.on_advance(self.wake)

    def wake(self) -> None:
        """Look for runnable executions now (a start, a signal, a cancel, a clock moved by a test)."""
        self._wake.set()

    @property
    def running(self) -> int:
        return len(self._running)

    # --- the loops ------------------------------------------------------------------------------

    async def schedule(self) -> None:
        """Claim and start runnable executions until cancelled (a chassis background loop)."""
        while True:
            self._wake.clear()
            room = self._max - len(self._running)
            claimed: list[dict[str, Any]] = []
            if room > 0:
                try:
                    claimed = await self._claim(room)
                except (psycopg.OperationalError, OSError) as exc:  # PostgreSQL away: try again next round
                    logger.warning("workflow claim failed", extra={"error": str(exc)})
            for row in claimed:
                self._running[row["id"]] = asyncio.create_task(self._run(row), name=f"workflow-{row['id']}")
            if len(claimed) == room and room > 0:
                continue  # there may be more waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)

    async def heartbeat(self) -> None:
        """Renew the leases of the executions this replica runs, every third of the lease."""
        while True:
            await asyncio.sleep(self._lease / 3)
            if not self._running:
                continue
            try:
                async with self._pool.connection() as conn:
                    await conn.execute(
                        "UPDATE executions SET lease_until = now() + make_interval(secs => %s)"
                        " WHERE lease_owner = %s AND id = ANY(%s)", (self._lease, self.owner, list(self._running)))
            except (psycopg.OperationalError, OSError) as exc:
                logger.warning("workflow lease renewal failed", extra={"error": str(exc)})

    async def stop(self) -> None:
        """Stop running executions here and hand their leases back, so another replica resumes them at once."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(psycopg.Error, OSError):
            async with self._pool.connection() as conn:
                await conn.execute(
                    "UPDATE executions SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = %s",
                                   (self.owner,))

    async def _claim(self, limit: int) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_CLAIM, {"owner": self.owner, "lease": self._lease, "clock": self.clock.now(),
                                       "limit": limit})
            return await cur.fetchall()

    # --- one execution --------------------------------------------------------------------------

    async def _run(self, row: dict[str, Any]) -> None:
        execution_id: uuid.UUID = row["id"]
        try:
            with acting_for(row["organization_id"]):
                await self._drive(row)
        except LeaseLost:
            logger.info("workflow execution taken over or terminated", extra={"execution_id": str(execution_id)})
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug or an infrastructure failure: the lease runs out and a replica (maybe this one) tries again.
            logger.exception("workflow execution run failed", extra={"execution_id": str(execution_id)})
            with contextlib.suppress(psycopg.Error, OSError):
                async with self._pool.connection() as conn:
                    await conn.execute(
                        "UPDATE executions SET lease_owner = NULL, lease_until = now() + interval '1 second'"
                                       " WHERE id = %s AND lease_owner = %s", (execution_id, self.owner))
        finally:
            self._running.pop(execution_id, None)
            self.wake()  # a slot is free: a replica at its WORKFLOW_MAX_RUNNING claims the next at once

    async def _drive(self, row: dict[str, Any]) -> None:
        workflow = _parsed(row["source"])
        checkpoints = Checkpoints(self._pool, row["id"], self.owner, self._lease)
        await checkpoints.load()
        if checkpoints.steps:  # after a timer, a signal, or another replica's death: replayed, not run again
            logger.info("workflow execution resumed", extra={"execution_id": str(row["id"]),
                                                             "checkpoints": len(checkpoints.steps)})
        interpreter = Interpreter(row["id"], row["organization_id"], workflow, checkpoints, self._caller,
                                  self.clock, row["traceparent"])
        scope = Scope({"input": row["input"], "context": {},
                       "workflow": {"id": str(row["id"]), "definition": row["definition_name"],
                                    "revision": row["revision"]}})
        error = WorkflowError.from_json(row["error"]) if row["error"] else None
        if row["status"] == "RUNNING" and not row["cancel_requested"]:
            try:
                output, _ = await interpreter.run_list(workflow.do, row["input"], scope)
                if workflow.output_as is not None:
                    output = workflow.output_as.render(output, {**scope.variables, "context": interpreter.context})
                await self._finish(row, "SUCCEEDED", output=output)
                return
            except Suspend as wait:
                await self._suspend(row["id"], wait)
                return
            except Cancelled:
                pass
            except WorkflowError as failed:
                error = failed
        await self._compensate(row, workflow, interpreter, checkpoints, scope, error)

    async def _compensate(self, row: dict[str, Any], workflow: Workflow, interpreter: Interpreter,
                          checkpoints: Checkpoints, scope: Scope, error: WorkflowError | None) -> None:
        """Run the compensations of the completed tasks, latest first; then finish FAILED or CANCELLED."""
        # No error means the run stopped for a cancel; a resumed COMPENSATING run finds it recorded as such.
        cancelled = error is None or error.type == ERRORS + "cancelled"
        if error is None:
            error = WorkflowError(ERRORS + "cancelled", 499, "cancelled", "cancel requested")
        await self._mark_compensating(row["id"], error, checkpoints)
        done: list[str] = []
        failed: list[str] = []
        try:
            for step in await checkpoints.compensable():
                task = workflow.by_path[static_path(step.path)]
                base = Scope(scope.variables, marks=((f"{task.path}.", f"{step.path}."),), compensation=True)
                problem = await self._compensate_one(interpreter, task.compensate, step.output, step.path, base)
                if problem is None:
                    done.append(step.path)
                else:
                    failed.append(f"{step.path}: {problem}")
        except Suspend as wait:  # a compensation's backoff (or its own wait): resumed like any timer
            await self._suspend(row["id"], wait)
            return
        if failed:
            error.detail = f"{error.detail}; compensations kept failing: {'; '.join(failed)}".lstrip("; ")
            await self._finish(row, "NEEDS_ATTENTION", error=error, compensated=bool(done), compensations=done)
        else:
            await self._finish(row, "CANCELLED" if cancelled else "FAILED", error=error, compensated=bool(done),
                               compensations=done)

    async def _compensate_one(self, interpreter: Interpreter, tasks: Sequence[Any], output: Any, path: str,
                              base: Scope) -> WorkflowError | None:
        """Run one task's compensation, retried with backoff; the last error if every attempt failed."""
        for attempt in range(1, self._compensation_attempts + 1):
            try:
                await interpreter.run_list(tasks, output, replace_attempt(base, attempt))
                return None
            except WorkflowError as problem:
                if attempt == self._compensation_attempts:
                    return problem
            await interpreter.timer(f"{path}.compensate.retry", replace_attempt(base, attempt),
                                    self._compensation_backoff * 2 ** (attempt - 1))
        return None

    async def _mark_compensating(self, execution_id: uuid.UUID, error: WorkflowError, checkpoints: Checkpoints) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await checkpoints.fence(conn)
            await conn.execute("UPDATE executions SET status = 'COMPENSATING', error = %s WHERE id = %s",
                               (Jsonb(error.as_json()), execution_id))

    async def _suspend(self, execution_id: uuid.UUID, wait: Suspend) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE executions SET lease_owner = NULL, lease_until = NULL, wake_at = %s, waiting = %s,"
                " waiting_for = %s WHERE id = %s AND lease_owner = %s",
                (wait.wake_at or datetime.max.replace(tzinfo=self.clock.now().tzinfo), wait.waiting,
                 wait.signal_type, execution_id, self.owner))
        self.wake()  # a signal may already be there, and a zero-length timer is due now

    async def _finish(self, row: dict[str, Any], status: str, *, output: Any = None, error: WorkflowError | None = None,
                      compensated: bool = False, compensations: Sequence[str] = ()) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE executions SET status = %s, output = %s, error = %s, compensated = %s, ended_at = %s,"
                " lease_owner = NULL, lease_until = NULL, waiting = '', waiting_for = NULL, wake_at = NULL"
                " WHERE id = %s AND lease_owner = %s AND status IN ('RUNNING', 'COMPENSATING') RETURNING ended_at",
                (status, Jsonb(output) if output is not None else None,
                 Jsonb(error.as_json()) if error else None, compensated, self.clock.now(), row["id"], self.owner))
            found = await cur.fetchone()
            if found is None:
                raise LeaseLost
            for event in finished_events(row, status, found[0], error, compensations):
                await outbox.add(conn, event, subject=f"workflows/executions/{row['id']}", source=SOURCE)
            if row.get("parent_execution_id"):  # the parent's `run` task waits for this signal
                await conn.execute(
                    "INSERT INTO signals (id, execution_id, type, data) VALUES (gen_random_uuid(), %s, %s, %s)",
                    (row["parent_execution_id"], f"child:{row['id']}",
                     Jsonb({"status": status, "output": output, "error": error.as_json() if error else None})))
        logger.info("workflow execution finished", extra={"execution_id": str(row["id"]), "status": status})
        if row.get("parent_execution_id"):
            self.wake()


def replace_attempt(scope: Scope, attempt: int) -> Scope:
    return Scope(scope.variables, scope.marks, (attempt,), scope.compensation)


def finished_events(row: dict[str, Any], status: str, ended_at: datetime, error: WorkflowError | None,
                    compensations: Sequence[str]) -> list[Any]:
    """The domain events of an execution's end: completed, or failed (with compensated when they ran)."""
    common = {"execution_id": str(row["id"]), "definition_name": row["definition_name"],
              "organization_id": row["organization_id"]}
    if status == "SUCCEEDED":
        return [events_pb2.ExecutionCompleted(**common, revision=row["revision"], end_time=timestamp(ended_at))]
    events: list[Any] = []
    if compensations and status != "NEEDS_ATTENTION":
        events.append(events_pb2.ExecutionCompensated(**common, compensated_tasks=list(compensations),
                                                      end_time=timestamp(ended_at)))
    events.append(events_pb2.ExecutionFailed(
        **common, revision=row["revision"], status=status,
        error=f"{error.title}: {error.detail}" if error else "", task_path=error.instance if error else "",
        end_time=timestamp(ended_at)))
    return events


@functools.lru_cache(maxsize=256)
def _parsed(source: str) -> Workflow:
    """A revision's checked workflow; revisions are immutable, so their source is the cache key."""
    return parse(source)
