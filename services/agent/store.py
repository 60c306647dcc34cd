"""The agent service's PostgreSQL access: every query it makes, in one place.

Tenancy (docs/authorization.md): every query on behalf of a caller filters by the caller's organization in
its SQL (services.agent.tenancy.scope), so another organization's agents and executions are NOT_FOUND and
never listed; a platform admin's queries drop the filter. The two exceptions say so: the task worker's
lookup of the organization it must act in, and a replica failing its own executions at shutdown.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from google.protobuf.message import Message
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from chassis import idempotency
from chassis.authz import creating_organization
from chassis.db import contains_pattern, fetch_one
from chassis.errors import AlreadyExists, FailedPrecondition
from chassis.events import outbox
from chassis.resources import Page, PageRequest
from chassis.resources.keyset import fetch_page
from services.agent import events as agent_events
from services.agent.rows import FINAL_STATES, AgentRow, DeletedAgent, ExecutionRow
from services.agent.tenancy import scope

_AGENT_COLUMNS = """
    a.id, a.name, a.type, a.description, a.capabilities, a.config, a.labels, a.created_at, a.updated_at,
    a.organization_id, x.id AS current_execution_id
"""
_AGENT_JOIN = "agents a LEFT JOIN executions x ON x.agent_id = a.id AND x.state IN ('PENDING', 'RUNNING')"
_AGENT_FROM = f"FROM {_AGENT_JOIN}"


@dataclass(frozen=True)
class AgentFilter:
    """Filters shared by ListAgents and DiscoverAgents."""

    type: str = ""
    busy: bool | None = None
    capabilities: tuple[str, ...] = ()
    name_contains: str = ""

    def where(self) -> tuple[str, list[Any]]:
        """SQL conditions (joined by AND) and their parameters; the caller's organization first."""
        tenancy, params = scope("a.organization_id")
        clauses: list[str] = [tenancy]
        if self.type:
            clauses.append("a.type = %s")
            params.append(self.type)
        if self.busy is not None:
            clauses.append("x.id IS NOT NULL" if self.busy else "x.id IS NULL")
        if self.capabilities:
            clauses.append("a.capabilities @> %s")
            params.append(list(self.capabilities))
        if self.name_contains:
            clauses.append("a.name ILIKE %s")
            params.append(contains_pattern(self.name_contains))
        return " AND ".join(clauses), params


class AgentStore:
    """Queries over the agent schema."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def _one(self, query: str, params: tuple[Any, ...] | list[Any]) -> dict[str, Any] | None:
        return await fetch_one(self._pool, query, params)

    async def _publish(self, conn: psycopg.AsyncConnection, event: Message | None, subject: str) -> None:
        if event is not None:
            await outbox.add(conn, event, subject=subject, source=agent_events.SOURCE)

    # --- agents ---------------------------------------------------------------------------------

    async def create_agent(
        self, *, name: str, type_: str, description: str, capabilities: list[str], config: dict[str, Any],
        labels: dict[str, str],
    ) -> AgentRow:
        """Insert an agent and its AgentRegistered event; a taken name raises AlreadyExists."""
        try:
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                await idempotency.claim(conn)  # first: a repeat of a keyed request stops here, not at the name
                await cur.execute(
                    "INSERT INTO agents (id, name, type, description, capabilities, config, labels, organization_id)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    " RETURNING *, NULL::uuid AS current_execution_id",
                    (uuid.uuid4(), name, type_, description, capabilities, Jsonb(config), Jsonb(labels),
                     creating_organization("an agent")),
                )
                row = AgentRow(**(await cur.fetchone() or {}))
                await self._publish(conn, agent_events.registered(row), agent_events.agent_subject(row.id))
        except psycopg.errors.UniqueViolation:
            raise AlreadyExists(f"an agent named {name!r} already exists", metadata={"field": "name"}) from None
        return row

    async def get_agent(self, agent_id: uuid.UUID) -> AgentRow | None:
        """One agent of the caller's organization, or None."""
        tenancy, params = scope("a.organization_id")
        row = await self._one(f"SELECT {_AGENT_COLUMNS} {_AGENT_FROM} WHERE a.id = %s AND {tenancy}",
                              [agent_id, *params])
        return AgentRow(**row) if row else None

    async def list_agents(self, flt: AgentFilter, page: PageRequest) -> Page[AgentRow]:
        """One page of matching agents in the page's keyset order, with the count of all that match."""
        where, params = flt.where()
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = await fetch_page(cur, page, select=_AGENT_COLUMNS, from_=_AGENT_JOIN, where=where,
                                    params=params, alias="a")
        return rows.map(lambda r: AgentRow(**r))

    async def discover(self, flt: AgentFilter, limit: int) -> list[AgentRow]:
        """Matching agents, idle ones first, then by name."""
        where, params = flt.where()
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {_AGENT_COLUMNS} {_AGENT_FROM} WHERE {where}"
                " ORDER BY (x.id IS NOT NULL), a.name LIMIT %s",
                [*params, limit],
            )
            return [AgentRow(**r) for r in await cur.fetchall()]

    async def count_agents(self) -> int:
        """How many agents the caller's organization has registered (every organization's, for a platform admin)."""
        tenancy, params = scope("organization_id")
        row = await self._one(f"SELECT count(*) AS n FROM agents WHERE {tenancy}", params)  # noqa: S608 fixed SQL text, values bound
        return row["n"] if row else 0

    async def update_agent(self, agent_id: uuid.UUID, changes: dict[str, Any]) -> AgentRow | None:
        """Apply column changes; None when the caller's organization has no such agent; a taken name raises
        AlreadyExists."""
        if not changes:
            return await self.get_agent(agent_id)
        columns = ", ".join(f"{column} = %s" for column in changes)
        values = [Jsonb(v) if column in ("config", "labels") else v for column, v in changes.items()]
        tenancy, params = scope("organization_id")
        try:
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    f"WITH updated AS (UPDATE agents SET {columns}, updated_at = now() WHERE id = %s AND {tenancy}"  # noqa: S608 fixed SQL text, values bound
                    " RETURNING *)"
                    " SELECT updated.*, x.id AS current_execution_id FROM updated"
                    " LEFT JOIN executions x ON x.agent_id = updated.id AND x.state IN ('PENDING', 'RUNNING')",
                    [*values, agent_id, *params],
                )
                found = await cur.fetchone()
                if found is None:
                    return None
                row = AgentRow(**found)
                await self._publish(conn, agent_events.updated(row, sorted(changes)),
                                    agent_events.agent_subject(row.id))
        except psycopg.errors.UniqueViolation:
            raise AlreadyExists(f"an agent named {changes.get('name')!r} already exists",
                                metadata={"field": "name"}) from None
        return row

    async def delete_agent(self, agent_id: uuid.UUID) -> tuple[bool, uuid.UUID | None]:
        """Stop the agent's active execution and delete it, with their events; (deleted, stopped execution id).

        Both statements are restricted to the caller's organization: another's agent is simply not deleted."""
        tenancy, params = scope("organization_id")
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "UPDATE executions SET state = 'STOPPED', error = 'agent deregistered', finished_at = now()"  # noqa: S608 fixed SQL text, values bound
                f" WHERE agent_id = %s AND state IN ('PENDING', 'RUNNING') AND {tenancy}"
                " RETURNING *, (SELECT type FROM agents WHERE id = agent_id) AS agent_type",
                [agent_id, *params],
            )
            stopped = await cur.fetchone()
            if stopped:
                execution = ExecutionRow(**stopped)
                await self._publish(conn, agent_events.execution_changed(execution),
                                    agent_events.execution_subject(execution.id))
            await cur.execute(f"DELETE FROM agents WHERE id = %s AND {tenancy}"  # noqa: S608 fixed SQL text, values bound
                              " RETURNING id, name, type, organization_id, now() AS deleted_at", [agent_id, *params])
            found = await cur.fetchone()
            deleted = DeletedAgent(**found) if found else None
            if deleted:
                await self._publish(conn, agent_events.deregistered(deleted, stopped["id"] if stopped else None),
                                    agent_events.agent_subject(agent_id))
            return deleted is not None, stopped["id"] if stopped else None

    # --- executions -----------------------------------------------------------------------------

    async def create_execution(self, agent: AgentRow, input_: dict[str, Any], runner: str,
                               context_id: str = "") -> ExecutionRow:
        """A new PENDING execution of an agent the caller was allowed to load, in the agent's organization
        (a platform admin's execution of another organization's agent belongs to that organization);
        FailedPrecondition if the agent already has an active one."""
        agent_id = agent.id
        try:
            # One transaction, so a keyed request's key commits with its execution (chassis.idempotency).
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                await idempotency.claim(conn)
                await cur.execute(
                    "INSERT INTO executions (id, agent_id, state, input, runner, context_id, organization_id)"
                    " VALUES (%s, %s, 'PENDING', %s, %s, %s, %s) RETURNING *",
                    (uuid.uuid4(), agent_id, Jsonb(input_), runner, context_id, agent.organization_id),
                )
                row = await cur.fetchone()
        except psycopg.errors.UniqueViolation:
            active = await self._one(
                "SELECT id FROM executions WHERE agent_id = %s AND state IN ('PENDING', 'RUNNING')", (agent_id,)
            )
            raise FailedPrecondition(
                f"agent {agent_id} is busy with execution {active['id'] if active else '?'}; stop it or wait",
                metadata={"execution_id": str(active["id"]) if active else ""},
            ) from None
        except psycopg.errors.ForeignKeyViolation:
            raise FailedPrecondition(f"agent {agent_id} was deregistered") from None
        assert row is not None  # noqa: S101 an invariant, not a check
        return ExecutionRow(**row)

    async def get_execution(self, execution_id: uuid.UUID) -> ExecutionRow | None:
        """One execution of the caller's organization, or None."""
        tenancy, params = scope("organization_id")
        row = await self._one(f"SELECT * FROM executions WHERE id = %s AND {tenancy}", [execution_id, *params])  # noqa: S608 fixed SQL text, values bound
        return ExecutionRow(**row) if row else None

    async def execution_organization(self, execution_id: uuid.UUID) -> str | None:
        """The organization of an execution, whoever asks, or None when it is gone.

        Unscoped on purpose, and only for the task worker: it runs as the service's own principal, which
        belongs to no organization, and learns here the one it then acts in (chassis.acting_for) for the
        rest of the task."""
        row = await self._one("SELECT organization_id FROM executions WHERE id = %s", (execution_id,))
        return str(row["organization_id"]) if row else None

    async def latest_execution(self, agent_id: uuid.UUID) -> ExecutionRow | None:
        """The agent's active execution, else its newest one, or None (in the caller's organization)."""
        tenancy, params = scope("organization_id")
        row = await self._one(
            f"SELECT * FROM executions WHERE agent_id = %s AND {tenancy}"  # noqa: S608 fixed SQL text, values bound
            " ORDER BY (state IN ('PENDING', 'RUNNING')) DESC, created_at DESC LIMIT 1",
            [agent_id, *params],
        )
        return ExecutionRow(**row) if row else None

    async def transition(
        self, execution_id: uuid.UUID, *, from_states: tuple[str, ...], to: str, **fields: Any
    ) -> ExecutionRow | None:
        """Move an execution to `to` only if it is in one of `from_states`, publishing the change's event;
        None if it was in another state (or is not the caller's organization's). RUNNING -> RUNNING is a new
        worker taking over (no event)."""
        tenancy, params = scope("organization_id")
        sets = ["state = %s"]
        values: list[Any] = [to]
        for column, value in fields.items():
            sets.append(f"{column} = %s")
            values.append(Jsonb(value) if column == "output" else value)
        if to == "RUNNING":
            sets.append("started_at = now()")
        if to in FINAL_STATES:
            sets.append("finished_at = now()")
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"WITH before AS (SELECT state FROM executions WHERE id = %s AND {tenancy} FOR UPDATE)"  # noqa: S608 fixed SQL text, values bound
                f" UPDATE executions SET {', '.join(sets)} WHERE id = %s AND state = ANY(%s) AND {tenancy}"
                " RETURNING *, (SELECT state FROM before) AS previous_state,"
                " (SELECT type FROM agents WHERE id = agent_id) AS agent_type",
                [execution_id, *params, *values, execution_id, list(from_states), *params],
            )
            found = await cur.fetchone()
            if found is None:
                return None
            previous = found.pop("previous_state")
            row = ExecutionRow(**found)
            if previous != row.state:
                await self._publish(conn, agent_events.execution_changed(row), agent_events.execution_subject(row.id))
            return row

    async def report_progress(self, execution_id: uuid.UUID, progress: float) -> str | None:
        """Store progress of a running execution; return its state (to notice a stop by another replica)."""
        tenancy, params = scope("organization_id")
        row = await self._one(
            "UPDATE executions SET progress = CASE WHEN state = 'RUNNING' THEN %s ELSE progress END"  # noqa: S608 fixed SQL text, values bound
            f" WHERE id = %s AND {tenancy} RETURNING state",
            [progress, execution_id, *params],
        )
        return row["state"] if row else None

    async def fail_active(self, runner: str, reason: str) -> int:
        """Mark every active execution of this runner FAILED, with events (a replica without a task queue
        shutting down).

        Unscoped on purpose: the replica's own clean-up of the executions it ran, whichever organization they
        belong to (each event carries its execution's organization)."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "UPDATE executions SET state = 'FAILED', error = %s, finished_at = now()"
                " WHERE runner = %s AND state IN ('PENDING', 'RUNNING')"
                " RETURNING *, (SELECT type FROM agents WHERE id = agent_id) AS agent_type",
                (reason, runner),
            )
            rows = [ExecutionRow(**r) for r in await cur.fetchall()]
            for row in rows:
                await self._publish(conn, agent_events.execution_changed(row), agent_events.execution_subject(row.id))
            return len(rows)
