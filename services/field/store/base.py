"""What the field store's parts share: the pool, transactions, the per-organization lock, the outbox."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from google.protobuf.message import Message
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from chassis import idempotency
from chassis.db import fetch_all, fetch_one
from chassis.events import outbox
from services.field import events

Cursor = psycopg.AsyncCursor[DictRow]


class Queries:
    """Queries over the field schema through one pool."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    @contextlib.asynccontextmanager
    async def _write(self, *, keyed: bool = False) -> AsyncIterator[Cursor]:
        """A transaction for a write; `keyed` claims the request's idempotency key first (chassis.idempotency),
        so a repeat stops there, before any check of the data."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            if keyed:
                await idempotency.claim(conn)
            yield cur

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[Cursor]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            yield cur

    async def _one(self, query: Any, params: Any) -> dict[str, Any] | None:
        return await fetch_one(self._pool, query, params)

    async def _all(self, query: Any, params: Any) -> list[dict[str, Any]]:
        return await fetch_all(self._pool, query, params)


async def lock_boundaries(cur: Cursor, organization: str) -> None:
    """Serialise the organization's boundary writes until the transaction ends: two writes checking overlaps
    at once could each miss the other's new boundary. Other organizations' writes do not wait."""
    await cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"field-boundaries:{organization}",))


async def publish(cur: Cursor, event: Message, subject: str) -> None:
    """Queue a domain event in the write's transaction (the relay publishes it after commit)."""
    await outbox.add(cur.connection, event, subject=subject, source=events.SOURCE)
