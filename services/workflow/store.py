"""Definitions and executions in PostgreSQL, every query scoped to the caller's organization."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from chassis import idempotency
from chassis.authz import organization_scope
from chassis.errors import FailedPrecondition, NotFound
from chassis.events import outbox
from chassis.protos import timestamp
from chassis.resources import Page, PageRequest
from chassis.resources.keyset import fetch_page
from protomesh.workflow.v1 import events_pb2
from services.workflow.dsl.model import Workflow
from services.workflow.engine.interpreter import SOURCE

Row = dict[str, Any]
ACTIVE = ("PENDING", "RUNNING", "COMPENSATING")
_EXECUTION_COLUMNS = ("id, organization_id, definition_name, revision, status, input, output, error, waiting,"
                      " compensated, created_at, ended_at, parent_execution_id, created_by, traceparent,"
                      " cancel_requested")
_COLUMNS = sql.SQL(_EXECUTION_COLUMNS)


def _where(extra: str = "TRUE") -> tuple[sql.Composable, list[Any]]:
    scope, params = organization_scope()
    return sql.SQL("({}) AND ({})").format(scope, sql.SQL(extra)), params


async def _refuse(cur: psycopg.AsyncCursor[Row], execution_id: uuid.UUID, why: str) -> None:
    """NOT_FOUND for an execution the caller cannot see, else FAILED_PRECONDITION saying its status and `why`."""
    where, params = _where("id = %s")
    await cur.execute(sql.SQL("SELECT status FROM executions WHERE {}").format(where), [*params, execution_id])
    row = await cur.fetchone()
    if row is None:
        raise NotFound("execution", str(execution_id))
    raise FailedPrecondition(f"execution {execution_id} is {row['status']}; {why}")


class Store:
    """The workflow schema's queries for the servicer."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    # --- definitions ----------------------------------------------------------------------------

    async def add_revision(self, organization: str, workflow: Workflow, source: str, created_by: str, *,
                           first: bool) -> Row | None:
        """Insert the next revision; None if `first` and the name exists, or not `first` and it does not."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await idempotency.claim(conn)
            # One registration at a time per name, so two updates cannot take the same revision number.
            await cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{organization}/{workflow.name}",))
            await cur.execute(
                "SELECT max(revision) AS last, bool_or(deleted_at IS NULL) AS live FROM definitions"
                " WHERE organization_id = %s AND name = %s", (organization, workflow.name))
            current = await cur.fetchone()
            live = bool(current and current["live"])
            if live == first:
                return None
            revision = int(current["last"] or 0) + 1 if current else 1
            await cur.execute(
                "INSERT INTO definitions (organization_id, name, revision, document_version, namespace, summary,"
                " source, task_paths, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
                (organization, workflow.name, revision, workflow.version, workflow.namespace, workflow.summary,
                 source, workflow.task_paths, created_by))
            if first and revision > 1:  # registered again after a delete: the old revisions come back too
                await cur.execute("UPDATE definitions SET deleted_at = NULL WHERE organization_id = %s AND name = %s",
                                  (organization, workflow.name))
            return await cur.fetchone()

    async def get_definition(self, name: str, revision: int = 0) -> Row | None:
        where, params = _where("name = %s AND deleted_at IS NULL" + (" AND revision = %s" if revision else ""))
        query = sql.SQL("SELECT * FROM definitions WHERE {} ORDER BY revision DESC LIMIT 1").format(where)
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, [*params, name, *([revision] if revision else [])])
            return await cur.fetchone()

    async def list_definitions(self, page: PageRequest) -> Page[Row]:
        where, params = _where("deleted_at IS NULL AND revision = (SELECT max(revision) FROM definitions o"
                               " WHERE o.organization_id = d.organization_id AND o.name = d.name)")
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return await fetch_page(cur, page, select="*", from_="definitions d", where=where, params=params)

    async def revisions(self, name: str) -> list[Row]:
        where, params = _where("name = %s AND deleted_at IS NULL")
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql.SQL("SELECT * FROM definitions WHERE {} ORDER BY revision DESC").format(where),
                              [*params, name])
            return await cur.fetchall()

    async def delete_definition(self, name: str) -> int:
        where, params = _where("name = %s AND deleted_at IS NULL")
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql.SQL("UPDATE definitions SET deleted_at = now() WHERE {}").format(where),
                                     [*params, name])
            return cur.rowcount

    # --- executions -----------------------------------------------------------------------------

    async def start(self, definition: Row, input_: dict[str, Any], created_by: str, traceparent: str) -> Row:
        """A new PENDING execution of the definition revision, with its ExecutionStarted event."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await idempotency.claim(conn)
            await cur.execute(
                f"INSERT INTO executions (id, organization_id, definition_name, revision, status, input, created_by,"  # noqa: S608 the column list is a module constant
                f" traceparent) VALUES (%s, %s, %s, %s, 'PENDING', %s, %s, %s) RETURNING {_EXECUTION_COLUMNS}",
                (uuid.uuid4(), definition["organization_id"], definition["name"], definition["revision"],
                 Jsonb(input_), created_by, traceparent))
            row = await cur.fetchone()
            assert row is not None  # noqa: S101 an INSERT ... RETURNING returns its row
            await outbox.add(conn, events_pb2.ExecutionStarted(
                execution_id=str(row["id"]), definition_name=row["definition_name"], revision=row["revision"],
                start_time=timestamp(row["created_at"]), organization_id=row["organization_id"]),
                subject=f"workflows/executions/{row['id']}", source=SOURCE)
            return row

    async def get_execution(self, execution_id: uuid.UUID) -> Row | None:
        where, params = _where("id = %s")
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql.SQL("SELECT {} FROM executions WHERE {}").format(_COLUMNS, where),
                              [*params, execution_id])
            return await cur.fetchone()

    async def list_executions(self, page: PageRequest, definition: str, status: str, after: datetime | None,
                              before: datetime | None) -> Page[Row]:
        conditions, values = ["TRUE"], []
        for condition, value in (("definition_name = %s", definition), ("status = %s", status),
                                 ("created_at >= %s", after), ("created_at < %s", before)):
            if value:
                conditions.append(condition)
                values.append(value)
        where, params = _where(" AND ".join(conditions))
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return await fetch_page(cur, page, select=_EXECUTION_COLUMNS, from_="executions", where=where,
                                    params=[*params, *values])

    async def request_cancel(self, execution_id: uuid.UUID) -> Row | None:
        """Ask the execution to stop and compensate; its runner (or the next claim) sees it."""
        where, params = _where("id = %s")
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql.SQL(
                "UPDATE executions SET cancel_requested = status IN ('PENDING', 'RUNNING') OR cancel_requested"
                " WHERE {} RETURNING {}").format(where, _COLUMNS), [*params, execution_id])
            return await cur.fetchone()

    async def terminate(self, execution_id: uuid.UUID, reason: str, now: datetime) -> tuple[Row | None, bool]:
        """Stop an active execution where it stands (no compensation); (the row, whether it was active)."""
        where, params = _where("id = %s")
        error = {"type": "https://serverlessworkflow.io/spec/1.0.0/errors/runtime", "status": 499,
                 "title": "terminated", "detail": reason, "instance": ""}
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql.SQL(
                "UPDATE executions SET status = 'TERMINATED', error = %s, ended_at = %s, lease_owner = NULL,"
                " lease_until = NULL, wake_at = NULL, waiting = '', waiting_for = NULL"
                " WHERE {} AND status IN ('PENDING', 'RUNNING', 'COMPENSATING') RETURNING {}"
            ).format(where, _COLUMNS), [Jsonb(error), now, *params, execution_id])
            row = await cur.fetchone()
            if row is not None:
                await outbox.add(conn, events_pb2.ExecutionFailed(
                    execution_id=str(row["id"]), definition_name=row["definition_name"], revision=row["revision"],
                    status="TERMINATED", error=f"terminated: {reason}", end_time=timestamp(now),
                    organization_id=row["organization_id"]), subject=f"workflows/executions/{row['id']}", source=SOURCE)
                return row, True
        return await self.get_execution(execution_id), False

    async def retry(self, execution_id: uuid.UUID) -> Row:
        """A FAILED execution runs again from its failed task: failed and compensation steps become history."""
        where, params = _where("id = %s AND status = 'FAILED'")
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await idempotency.claim(conn)
            await cur.execute(sql.SQL(
                "UPDATE executions SET status = 'RUNNING', error = NULL, compensated = false, ended_at = NULL,"
                " wake_at = NULL, cancel_requested = false WHERE {} RETURNING {}").format(where, _COLUMNS),
                [*params, execution_id])
            row = await cur.fetchone()
            if row is None:  # raised inside the transaction: a claimed idempotency key rolls back with it
                await _refuse(cur, execution_id, "only a FAILED execution can be retried")
            await cur.execute("UPDATE steps SET superseded = true WHERE execution_id = %s AND NOT superseded"
                              " AND (status <> 'SUCCEEDED' OR compensation)", (execution_id,))
            assert row is not None  # noqa: S101 _refuse raised otherwise; narrows the type for mypy
            return row

    async def signal(self, execution_id: uuid.UUID, type_: str, data: dict[str, Any]) -> uuid.UUID:
        """Record a signal for an active execution (NOT_FOUND, or FAILED_PRECONDITION once it ended)."""
        where, params = _where("id = %s AND status IN ('PENDING', 'RUNNING', 'COMPENSATING')")
        signal_id = uuid.uuid4()
        async with self._pool.connection() as conn, conn.transaction():
            await idempotency.claim(conn)
            cur = await conn.execute(sql.SQL("SELECT id FROM executions WHERE {} FOR UPDATE").format(where),
                                     [*params, execution_id])
            if await cur.fetchone() is None:  # raised inside the transaction, as in retry()
                await _refuse(conn.cursor(row_factory=dict_row), execution_id, "it takes no more signals")
            await conn.execute("INSERT INTO signals (id, execution_id, type, data) VALUES (%s, %s, %s, %s)",
                               (signal_id, execution_id, type_, Jsonb(data)))
        return signal_id

    async def signal_waiting(self, conn: psycopg.AsyncConnection[Any], organization: str, type_: str,
                             data: dict[str, Any]) -> int:
        """A domain event as a signal to every execution of its organization waiting on its type."""
        cur = await conn.execute(
            "INSERT INTO signals (id, execution_id, type, data) SELECT gen_random_uuid(), id, %s, %s FROM executions"
            " WHERE organization_id = %s AND waiting_for = %s AND status IN ('RUNNING', 'COMPENSATING')",
            (type_, Jsonb(data), organization, type_))
        return cur.rowcount

    async def history(self, execution_id: uuid.UUID) -> list[Row]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT * FROM steps WHERE execution_id = %s ORDER BY started_at, id", (execution_id,))
            return await cur.fetchall()

    # --- analytics ------------------------------------------------------------------------------

    async def analytics(self, name: str, after: datetime, before: datetime) -> tuple[list[Row], Row, list[Row]]:
        """(counts by status, duration percentiles in seconds, failures by task) of one definition's window."""
        where, params = _where("definition_name = %s AND created_at >= %s AND created_at < %s")
        window = [*params, name, after, before]
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql.SQL("SELECT status, count(*) AS n FROM executions WHERE {} GROUP BY status"
                                      ).format(where), window)
            counts = await cur.fetchall()
            await cur.execute(sql.SQL(
                "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP"
                " (ORDER BY extract(epoch FROM ended_at - created_at)) AS p FROM executions"
                " WHERE {} AND ended_at IS NOT NULL").format(where), window)
            percentiles = await cur.fetchone() or {"p": None}
            await cur.execute(sql.SQL(
                "SELECT regexp_replace(path, '#[0-9]+', '', 'g') AS path, count(*) AS attempts,"
                " count(*) FILTER (WHERE status = 'FAILED') AS failures FROM steps"
                " WHERE execution_id IN (SELECT id FROM executions WHERE {}) AND kind <> 'backoff'"
                " GROUP BY 1 ORDER BY 3 DESC, 1").format(where), window)
            failures = await cur.fetchall()
        return counts, percentiles, failures

    async def counts(self) -> tuple[int, int]:
        """(live definitions, active executions) of the caller's organization."""
        where, params = _where()
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql.SQL(
                "SELECT (SELECT count(DISTINCT name) FROM definitions WHERE {} AND deleted_at IS NULL),"
                " (SELECT count(*) FROM executions WHERE {} AND status IN ('PENDING', 'RUNNING', 'COMPENSATING'))"
            ).format(where, where), [*params, *params])
            row = await cur.fetchone()
            return (int(row[0]), int(row[1])) if row else (0, 0)
