"""Databases and stand-in services for the event bus tests; helpers shared by them.

The PostgreSQL (`postgres`) and the per-test nats-server (`nats_server`) come from tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from chassis import db
from chassis.config import Settings
from chassis.events import outbox
from chassis.tooling.infra.postgres import PostgresProcess

SERVICE_TABLES = """
CREATE TABLE IF NOT EXISTS things (id text PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS handled (consumer text NOT NULL, event_id text NOT NULL, event_type text NOT NULL,
                                    trace_parent text NOT NULL DEFAULT '', at timestamptz NOT NULL DEFAULT now());
"""
"""A stand-in service's own tables: its domain rows, and what its handlers did (deliberately no unique key,
so a handler running twice for one event shows up as two rows)."""


@pytest.fixture(scope="module")
def database_url(postgres: PostgresProcess, request: pytest.FixtureRequest) -> str:
    """A database of this test module's own."""
    name = re.sub(r"[^a-z0-9_]", "_", request.module.__name__.rpartition(".")[2].lower())
    return postgres.create_database(name)


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[Service]:
    """A fresh schema (as a service owns one) with the chassis tables and a pool on it."""
    schema = "svc_" + uuid.uuid4().hex[:8]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(f"SET search_path TO {schema}")
        await conn.execute(SERVICE_TABLES)
    await outbox.migrate(database_url, schema)
    pool = db.open_pool(database_url, schema, min_size=1, max_size=12, timeout=10)
    await pool.open(wait=True)
    try:
        yield Service(schema, database_url, pool)
    finally:
        await pool.close()


class Service:
    """A schema, its URL and pool, and the queries the tests make."""

    def __init__(self, schema: str, url: str, pool: AsyncConnectionPool) -> None:
        self.schema, self.url, self.pool = schema, url, pool

    def settings(self, nats_url: str, **overrides: object) -> Settings:
        """Settings of a replica of this stand-in service."""
        values: dict[str, object] = dict(service=self.schema, database_url=self.url, nats_url=nats_url,
                                         instance_id=f"{self.schema}-{uuid.uuid4().hex[:4]}",
                                         shutdown_grace_seconds=2.0)
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    async def scalar(self, query: str, params: tuple[object, ...] = ()) -> object:
        """The first column of the first row."""
        async with self.pool.connection() as conn:
            row = await (await conn.execute(query, params)).fetchone()
        return row[0] if row else None

    async def column(self, query: str, params: tuple[object, ...] = ()) -> list[object]:
        """The first column of every row."""
        async with self.pool.connection() as conn:
            return [row[0] for row in await (await conn.execute(query, params)).fetchall()]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.1) -> None:
    """Wait until check() is true, or fail saying what did not happen (a bound, never a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f}s waiting for: {what}")
        await asyncio.sleep(interval)


async def commit_events(service: Service, count: int, *, per_transaction: int = 1, prefix: str = "a") -> list[str]:
    """Commit `count` domain rows, each with its AgentRegistered event in the same transaction; the event ids."""
    from protomesh.agent.v1 import events_pb2

    ids: list[str] = []
    for start in range(0, count, per_transaction):
        async with service.pool.connection() as conn, conn.transaction():
            for i in range(start, min(start + per_transaction, count)):
                thing = f"{prefix}{i}-{uuid.uuid4().hex[:6]}"
                await conn.execute("INSERT INTO things (id) VALUES (%s)", (thing,))
                envelope = await outbox.add(conn, events_pb2.AgentRegistered(agent_id=thing, name=f"agent {i}"),
                                            subject=f"agents/{thing}", source="test")
                ids.append(envelope.id)
    return ids


def recording_handler(consumer: str, calls: list[str] | None = None):
    """A handler that records each event it handles in the `handled` table, in the consumer's transaction."""
    from chassis.events import current_delivery

    async def handle(event: object, envelope: object, conn: psycopg.AsyncConnection) -> None:
        delivery = current_delivery.get()
        assert delivery is not None
        if calls is not None:
            calls.append(envelope.id)  # type: ignore[attr-defined]
        await conn.execute(
            "INSERT INTO handled (consumer, event_id, event_type, trace_parent) VALUES (%s, %s, %s, %s)",
            (consumer, envelope.id, envelope.type,  # type: ignore[attr-defined]
             delivery.trace_headers.get("traceparent", "")),
        )

    return handle
