"""The cleanup job's queries: expire contexts past their expiry, prune old usage counters.

Mesh-wide on purpose (docs/authorization.md, Tenancy): the job runs as the context service's own principal
and sweeps every organization's rows in one statement; it calls no one and reads nothing for anyone, and
each ContextExpired carries its context's organization (and so its envelope's `pm-organization`).
"""

from __future__ import annotations

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from services.context import events
from services.context.store.transaction import publish

_EXPIRE_DUE = (
    "WITH due AS ("
    "  SELECT id FROM contexts WHERE expires_at <= now() AND status <> 'expired'"
    "  ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED"
    "), expired AS ("
    "  UPDATE contexts c SET status = 'expired', layer_count = 0, size_bytes = 0,"
    "    version = c.version + 1, updated_at = now()"
    "  FROM due WHERE c.id = due.id"
    "  RETURNING c.id, c.name, c.type, c.owner, c.version, c.expires_at, c.updated_at, c.organization_id"
    "), removed AS ("
    "  DELETE FROM context_layers l USING expired WHERE l.context_id = expired.id RETURNING l.context_id"
    "), per_context AS (SELECT context_id, count(*) AS n FROM removed GROUP BY context_id)"
    " SELECT e.*, coalesce(r.n, 0)::int AS deleted_layers"
    " FROM expired e LEFT JOIN per_context r ON r.context_id = e.id ORDER BY e.expires_at, e.id"
)


class Cleanup:
    """What services.context.cleanup runs on every replica."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def expire_due(self, batch: int = 500) -> tuple[int, int]:
        """Mark up to `batch` contexts past their expiry EXPIRED and delete their layers, atomically.

        Rows another replica is expiring right now are skipped (SKIP LOCKED), so replicas can
        run this concurrently; a layer writer waiting on the row lock then sees EXPIRED. One
        ContextExpired per expired context goes into the outbox in the same transaction.
        Returns (contexts expired, layers deleted).
        """
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_EXPIRE_DUE, (batch,))
            rows = await cur.fetchall()
            async with conn.pipeline():  # one round trip for the batch's events, not one per context
                for row in rows:
                    await publish(cur, events.expired(row), events.context_subject(row["id"]))
        return len(rows), sum(row["deleted_layers"] for row in rows)

    async def prune_usage(self, retention_days: int) -> int:
        """Delete usage counters older than the retention; return how many rows went."""
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.execute("DELETE FROM context_usage WHERE hour < now() - make_interval(days => %s)",
                              (retention_days,))
            return cur.rowcount
