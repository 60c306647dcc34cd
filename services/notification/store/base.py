"""What the store's parts share: the pool and the one-row / all-rows query helpers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from chassis import idempotency
from chassis.db import fetch_all, fetch_one


class Queries:
    """Queries over the notification schema through one pool."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def _one(self, query: str | sql.Composed, params: Sequence[Any]) -> dict[str, Any] | None:
        return await fetch_one(self._pool, query, params)

    async def _one_keyed(self, query: str | sql.Composed, params: Sequence[Any]) -> dict[str, Any] | None:
        """_one for a write a request may key: the key is claimed in the same transaction (chassis.idempotency)."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await idempotency.claim(conn)
            await cur.execute(query, params)
            return await cur.fetchone()

    async def _all(self, query: str | sql.Composed, params: Sequence[Any]) -> list[dict[str, Any]]:
        return await fetch_all(self._pool, query, params)
