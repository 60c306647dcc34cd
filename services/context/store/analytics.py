"""Usage counters and summaries: read-only queries over contexts, layers and hourly usage.

Each figure is the caller's organization's (every organization's for a platform admin): usage counters carry
their context's organization, so a deleted context's trends stay its organization's too.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from psycopg_pool import AsyncConnectionPool

from services.context.rows import Summary, Usage
from services.context.store.transaction import STATUS
from services.context.tenancy import scope

_LAST_24H = "date_trunc('hour', now(), 'UTC') - interval '23 hours'"


class Analytics:
    """Figures over the context schema; none of these calls counts as a read."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def context_usage(self, context_id: uuid.UUID) -> tuple[int, int, dict[str, int]]:
        """Reads and writes in the last 24 hours, and layers per type, of one context."""
        tenancy, params = scope("organization_id")
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(
                "SELECT coalesce(sum(reads), 0), coalesce(sum(writes), 0) FROM context_usage"  # noqa: S608 fixed SQL text, values bound
                f" WHERE context_id = %s AND {tenancy} AND hour >= {_LAST_24H}",
                [context_id, *params],
            )
            reads, writes = await cur.fetchone() or (0, 0)
            await cur.execute(
                f"SELECT layer_type, count(*) FROM context_layers WHERE context_id = %s AND {tenancy}"  # noqa: S608 fixed SQL text, values bound
                " GROUP BY layer_type",
                [context_id, *params],
            )
            by_type = {layer_type: n for layer_type, n in await cur.fetchall()}
        return int(reads), int(writes), by_type

    async def summary(self) -> Summary:
        """Counts and totals over the caller's organization's contexts, from one snapshot."""
        tenancy, params = scope("organization_id")
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            await cur.execute(
                "SELECT count(*), coalesce(sum(layer_count), 0), coalesce(sum(size_bytes), 0),"  # noqa: S608 fixed SQL text, values bound
                f" coalesce(sum(access_count), 0) FROM contexts WHERE {tenancy}", params
            )
            total, layers, size, accesses = await cur.fetchone() or (0, 0, 0, 0)
            await cur.execute(f"SELECT {STATUS} AS s, count(*) FROM contexts WHERE {tenancy} GROUP BY s", params)  # noqa: S608 fixed SQL text, values bound
            by_status = {status: n for status, n in await cur.fetchall()}
            await cur.execute(f"SELECT type, count(*) FROM contexts WHERE {tenancy} GROUP BY type", params)  # noqa: S608 fixed SQL text, values bound
            by_type = {type_: n for type_, n in await cur.fetchall()}
            await cur.execute(
                "SELECT coalesce(sum(reads), 0), coalesce(sum(writes), 0) FROM context_usage"  # noqa: S608 fixed SQL text, values bound
                f" WHERE {tenancy} AND hour >= {_LAST_24H}", params
            )
            reads, writes = await cur.fetchone() or (0, 0)
        return Summary(total_contexts=total, by_status=by_status, by_type=by_type, total_layers=int(layers),
                       total_size_bytes=int(size), total_access_count=int(accesses), reads_last_24h=int(reads),
                       writes_last_24h=int(writes))

    async def usage(
        self, bounds: Sequence[datetime], *, context_id: uuid.UUID | None = None, type_: str = ""
    ) -> list[Usage]:
        """Reads, writes and distinct contexts per window; bounds are the windows' edges, oldest first."""
        tenancy, params = scope("u.organization_id")
        filters = f" AND {tenancy}"
        if context_id is not None:
            filters += " AND u.context_id = %s"
            params.append(context_id)
        if type_:
            filters += " AND u.context_type = %s"
            params.append(type_)
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(
                "SELECT w.start, w.stop, coalesce(sum(u.reads), 0), coalesce(sum(u.writes), 0),"  # noqa: S608 fixed SQL text, values bound
                " count(DISTINCT u.context_id)"
                " FROM unnest(%s::timestamptz[], %s::timestamptz[]) AS w(start, stop)"
                f" LEFT JOIN context_usage u ON u.hour >= w.start AND u.hour < w.stop{filters}"
                " GROUP BY w.start, w.stop ORDER BY w.start",
                [list(bounds[:-1]), list(bounds[1:]), *params],
            )
            return [Usage(start, stop, int(r), int(w), int(n)) for start, stop, r, w, n in await cur.fetchall()]
