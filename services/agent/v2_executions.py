"""The one query v2 adds to the agent store: an agent's executions, a page at a time (ListExecutions)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from chassis.resources import Page, PageRequest
from chassis.resources.keyset import fetch_page
from services.agent.rows import ExecutionRow
from services.agent.tenancy import scope


@dataclass(frozen=True)
class ExecutionFilter:
    """Which executions of one agent a list shows (a page token is bound to these values)."""

    agent_id: uuid.UUID
    state: str = ""
    """A stored state (PENDING ... STOPPED); empty means any."""

    def where(self) -> tuple[str, list[Any]]:
        """SQL conditions and parameters, the caller's organization first (services.agent.tenancy)."""
        tenancy, params = scope("organization_id")
        clauses = [tenancy, "agent_id = %s"]
        params.append(self.agent_id)
        if self.state:
            clauses.append("state = %s")
            params.append(self.state)
        return " AND ".join(clauses), params


async def list_executions(pool: AsyncConnectionPool, flt: ExecutionFilter, page: PageRequest) -> Page[ExecutionRow]:
    """One page of the agent's executions, newest first, with the count of all that match."""
    where, params = flt.where()
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = await fetch_page(cur, page, select="*", from_="executions", where=where, params=params)
    return rows.map(lambda r: ExecutionRow(**r))
