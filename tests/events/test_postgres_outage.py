"""The relay and consumers ride out a PostgreSQL restart: nothing committed is lost, nothing is handled twice."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from chassis import db
from chassis.events import Backoff, Consumer, EventBus, outbox
from chassis.tooling.infra.nats import NatsProcess
from chassis.tooling.infra.postgres import PostgresProcess
from protomesh.agent.v1 import events_pb2
from tests.events.conftest import SERVICE_TABLES, Service, commit_events, eventually, recording_handler


@pytest.fixture
def own_postgres() -> Iterator[PostgresProcess]:
    """A PostgreSQL of this test's own, since the test stops it (the shared one stays up for the others)."""
    folder = Path(tempfile.mkdtemp(prefix="protomesh-events-pg-outage-"))
    folder.chmod(0o755)
    server = PostgresProcess(folder / "data", durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def test_relay_and_consumer_survive_a_postgres_restart(
    own_postgres: PostgresProcess, nats_server: NatsProcess
) -> None:
    url, schema = own_postgres.create_database("outage"), "outage"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(f"SET search_path TO {schema}")
        await conn.execute(SERVICE_TABLES)
    await outbox.migrate(url, schema)
    pool = db.open_pool(url, schema, min_size=1, max_size=8, timeout=10)
    await pool.open(wait=True)
    service = Service(schema, url, pool)
    consumer = Consumer("outage", [events_pb2.AgentRegistered], recording_handler("outage"),
                        backoff=Backoff(initial=0.1, maximum=0.5))
    try:
        async with EventBus(service.settings(nats_server.url), pool, consumers=[consumer]):
            ids = await commit_events(service, 150, per_transaction=5, prefix="before")
            await asyncio.to_thread(own_postgres.kill)  # SIGKILL: every connection breaks mid-whatever
            await asyncio.sleep(0.3)
            await asyncio.to_thread(own_postgres.start)
            await pool.check()  # what the chassis's health monitor does when PostgreSQL is back
            ids += await commit_events(service, 150, per_transaction=5, prefix="after")

            async def all_handled() -> bool:
                return await service.scalar("SELECT count(*) FROM handled") >= len(ids)

            await eventually(all_handled, 40, f"{len(ids)} events handled after the restart")
            await asyncio.sleep(0.5)
        handled = await service.column("SELECT event_id FROM handled")
        assert len(handled) == len(ids) and set(handled) == set(ids)
        assert await service.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    finally:
        await pool.close()
