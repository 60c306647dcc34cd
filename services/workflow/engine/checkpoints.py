"""One execution's checkpoints in PostgreSQL, every write fenced by the lease this replica holds.

Each write first renews the lease with `WHERE lease_owner = me AND status IN (RUNNING, COMPENSATING)`:
when another replica has taken the execution over (this one was presumed dead) or it was terminated,
that matches nothing and the run stops (LeaseLost) without writing. The renewal also reports whether a
cancel was requested, so the interpreter sees a cancel at its next task.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from services.workflow.engine.outcomes import LeaseLost

InTransaction = Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]


@dataclass
class Step:
    """A checkpoint as loaded: what a resumed run replays instead of running the task again."""

    path: str
    attempt_key: str
    kind: str
    status: str
    input: Any
    output: Any
    context: Any
    error: dict[str, Any] | None
    wake_at: datetime | None
    started_at: datetime
    ended: bool
    ended_at: datetime | None = None
    attempt: int = 1
    compensation: bool = False
    compensable: bool = False
    stored: bool = True
    """Whether the row exists: a step begun in memory is written once, with its outcome."""


class Checkpoints:
    """Reads and writes the steps of one execution under this replica's lease."""

    def __init__(self, pool: AsyncConnectionPool, execution_id: uuid.UUID, owner: str, lease_seconds: float) -> None:
        self._pool, self.execution_id, self._owner, self._lease = pool, execution_id, owner, lease_seconds
        self.steps: dict[tuple[str, str], Step] = {}

    async def load(self) -> None:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT path, attempt_key, kind, status, input, output, context, error, wake_at, started_at, ended,"
                " ended_at, attempt, compensation, compensable"
                " FROM steps WHERE execution_id = %s AND NOT superseded", (self.execution_id,))
            for row in await cur.fetchall():
                self.steps[(row["path"], row["attempt_key"])] = Step(**row)

    async def fence(self, conn: psycopg.AsyncConnection[Any]) -> bool:
        """Renew the lease inside `conn`'s transaction; True if a cancel was requested. LeaseLost if not ours."""
        cur = await conn.execute(
            "UPDATE executions SET lease_until = now() + make_interval(secs => %s)"
            " WHERE id = %s AND lease_owner = %s AND status IN ('RUNNING', 'COMPENSATING') RETURNING cancel_requested",
            (self._lease, self.execution_id, self._owner))
        row = await cur.fetchone()
        if row is None:
            raise LeaseLost
        return bool(row[0])

    async def begin(self, path: str, attempt_key: str, attempt: int, kind: str, task_input: Any, *,
                    compensation: bool, compensable: bool, started_at: datetime, wake_at: datetime | None = None,
                    store: bool = True) -> tuple[Step, bool]:
        """A task's start: written now when `store` (a timer, whose due time must outlive this replica), else
        kept in memory and written with the task's outcome. (The step, whether a cancel was requested.)"""
        step = Step(path, attempt_key, kind, "RUNNING", task_input, None, None, None, wake_at, started_at, False)
        step.attempt, step.compensation, step.compensable = attempt, compensation, compensable
        step.stored = False
        cancel = False
        if store:
            async with self._pool.connection() as conn, conn.transaction():
                cancel = await self.fence(conn)
                await self._insert(conn, step)
            step.stored = True
        self.steps[(path, attempt_key)] = step
        return step, cancel

    async def _insert(self, conn: psycopg.AsyncConnection[Any], step: Step) -> None:
        await conn.execute(
            "INSERT INTO steps (execution_id, path, kind, attempt_key, attempt, status, compensation, compensable,"
            " input, output, context, error, wake_at, started_at, ended_at, ended, completed_seq)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " CASE WHEN %s THEN nextval('steps_completed_seq') END)",
            (self.execution_id, step.path, step.kind, step.attempt_key, step.attempt, step.status, step.compensation,
             step.compensable, Jsonb(step.input), Jsonb(step.output), Jsonb(step.context),
             Jsonb(step.error) if step.error else None, step.wake_at, step.started_at, step.ended_at, step.ended,
             step.status == "SUCCEEDED"))

    async def _insert_fenced(self, step: Step) -> bool:
        """Renew the lease and insert the step in one statement (one round trip: pool connections autocommit,
        so the statement is its own transaction); whether a cancel was requested. LeaseLost if not ours."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "WITH fence AS (UPDATE executions SET lease_until = now() + make_interval(secs => %s)"
                "  WHERE id = %s AND lease_owner = %s AND status IN ('RUNNING', 'COMPENSATING')"
                "  RETURNING cancel_requested),"
                " written AS (INSERT INTO steps (execution_id, path, kind, attempt_key, attempt, status, compensation,"
                "  compensable, input, output, context, error, wake_at, started_at, ended_at, ended, completed_seq)"
                "  SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                "  CASE WHEN %s THEN nextval('steps_completed_seq') END FROM fence RETURNING 1)"
                " SELECT cancel_requested, (SELECT count(*) FROM written) FROM fence",
                (self._lease, self.execution_id, self._owner,
                 self.execution_id, step.path, step.kind, step.attempt_key, step.attempt, step.status,
                 step.compensation, step.compensable, Jsonb(step.input), Jsonb(step.output), Jsonb(step.context),
                 Jsonb(step.error) if step.error else None, step.wake_at, step.started_at, step.ended_at, step.ended,
                 step.status == "SUCCEEDED"))
            row = await cur.fetchone()
        if row is None:
            raise LeaseLost
        step.stored = True
        return bool(row[0])

    async def succeed(self, step: Step, output: Any, context: Any, ended_at: datetime, *, ended: bool = False,
                      also: Sequence[InTransaction] = ()) -> bool:
        """Record a task's output (and the context after it), with `also` in the same transaction; whether a
        cancel was requested meanwhile."""
        step.status, step.output, step.context = "SUCCEEDED", output, context
        step.ended, step.ended_at = ended, ended_at
        if not step.stored and not also:
            return await self._insert_fenced(step)
        async with self._pool.connection() as conn, conn.transaction():
            cancel = await self.fence(conn)
            if step.stored:
                await conn.execute(
                    "UPDATE steps SET status = 'SUCCEEDED', output = %s, context = %s, ended_at = %s, ended = %s,"
                    " completed_seq = nextval('steps_completed_seq')"
                    " WHERE execution_id = %s AND path = %s AND attempt_key = %s AND NOT superseded",
                    (Jsonb(output), Jsonb(context), ended_at, ended, self.execution_id, step.path, step.attempt_key))
            else:
                await self._insert(conn, step)
            for extra in also:
                await extra(conn)
        step.stored = True
        return cancel

    async def fail(self, step: Step, error: dict[str, Any], ended_at: datetime) -> None:
        """Record a task's error."""
        step.status, step.error, step.ended_at = "FAILED", error, ended_at
        if not step.stored:
            await self._insert_fenced(step)
            return
        async with self._pool.connection() as conn, conn.transaction():
            await self.fence(conn)
            if step.stored:
                await conn.execute(
                    "UPDATE steps SET status = 'FAILED', error = %s, ended_at = %s"
                    " WHERE execution_id = %s AND path = %s AND attempt_key = %s AND NOT superseded",
                    (Jsonb(error), ended_at, self.execution_id, step.path, step.attempt_key))
            else:
                await self._insert(conn, step)
        step.stored = True

    async def compensable(self) -> list[Step]:
        """The completed tasks that declare a compensation, latest completion first (the saga's order)."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT path, attempt_key, kind, status, input, output, context, error, wake_at, started_at, ended,"
                " ended_at, attempt, compensation, compensable"
                " FROM steps WHERE execution_id = %s AND NOT superseded AND status = 'SUCCEEDED' AND compensable"
                " AND NOT compensation ORDER BY completed_seq DESC", (self.execution_id,))
            return [Step(**row) for row in await cur.fetchall()]

    async def start_child(self, child_id: uuid.UUID, organization: str, definition: str, child_input: Any,
                          traceparent: str) -> bool:
        """Start the child execution `child_id` of the latest revision of `definition` (nothing if it exists
        already: a replayed run task); False if there is no such definition."""
        async with self._pool.connection() as conn, conn.transaction():
            await self.fence(conn)
            cur = await conn.execute(
                "INSERT INTO executions (id, organization_id, definition_name, revision, status, input, created_by,"
                " traceparent, parent_execution_id)"
                " SELECT %s, organization_id, name, revision, 'PENDING', %s, %s, %s, %s"
                " FROM definitions WHERE organization_id = %s AND name = %s AND deleted_at IS NULL"
                " ORDER BY revision DESC LIMIT 1 ON CONFLICT (id) DO NOTHING RETURNING 1",
                (child_id, Jsonb(child_input), f"workflow:{self.execution_id}", traceparent, self.execution_id,
                 organization, definition))
            if await cur.fetchone() is not None:
                return True
            found = await conn.execute("SELECT 1 FROM executions WHERE id = %s", (child_id,))
            return await found.fetchone() is not None

    async def open_signals(self, signal_type: str) -> list[tuple[uuid.UUID, Any]]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, data FROM signals WHERE execution_id = %s AND type = %s AND consumed_by IS NULL"
                " ORDER BY created_at, id", (self.execution_id, signal_type))
            return [(row[0], row[1]) for row in await cur.fetchall()]

    async def ignore_signals(self, ids: Sequence[uuid.UUID], by: str) -> None:
        """Mark signals that a listen's filter refused, so they do not wake the execution again."""
        if ids:
            async with self._pool.connection() as conn:
                await conn.execute("UPDATE signals SET consumed_by = %s WHERE id = ANY(%s) AND consumed_by IS NULL",
                                   (f"ignored by {by}", list(ids)))
