"""Transactional outbox: an event is written in the same PostgreSQL transaction as the change it describes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import psycopg
from google.protobuf import message

from chassis import db
from chassis.caching.writes import note_event
from chassis.events import subjects
from chassis.events.envelope import new_envelope
from protomesh.events.v1 import envelope_pb2

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATIONS_TABLE = "chassis_migrations"
"""Where the chassis records its own migrations in a service's schema (apart from schema_migrations)."""
NOTIFY_PREFIX = "protomesh_outbox."
IDLE_LOCK_CLASS = 0x70726F74
"""First key of the advisory lock an idle relay holds on a schema (the second is hashtext(channel))."""


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes a schema's idle relay."""
    return NOTIFY_PREFIX + schema


async def migrate(url: str, schema: str) -> list[int]:
    """Create or upgrade the outbox and processed_events tables in a service's schema."""
    return await db.migrate(url, schema, MIGRATIONS, table=MIGRATIONS_TABLE)


async def add(
    conn: psycopg.AsyncConnection,
    event: message.Message,
    *,
    subject: str,
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
) -> envelope_pb2.Envelope:
    """Queue an event in the caller's transaction; the relay publishes it once the transaction commits.

    `conn` must use the service's schema (pool connections do) and should be inside
    `conn.transaction()` together with the domain change; nothing is published if the transaction
    rolls back.

    Waking the relay: a busy relay polls and needs no signal, so a NOTIFY is sent only when a relay
    is idle. An idle relay holds the schema's advisory lock (IDLE_LOCK_CLASS, hashtext(channel))
    exclusively; this statement takes it shared until the commit when it can, and sends the NOTIFY
    (delivered on commit) when it cannot. A relay going idle waits for the shared holders, so every
    row committed under a shared lock is visible to the check it makes once it holds the lock: no
    wake-up is lost, and a busy relay costs producers no NOTIFY (the channel's queue lock is taken
    by every notifying commit, which serialises producers).
    """
    envelope = new_envelope(event, subject=subject, source=source, event_id=event_id, time=time)
    await conn.execute(
        "WITH queued AS (INSERT INTO outbox (event_id, event_type, nats_subject, envelope)"  # noqa: S608 NOTIFY_PREFIX and IDLE_LOCK_CLASS are module constants; the values are %s parameters
        " VALUES (%s, %s, %s, %s) RETURNING seq)"
        f" SELECT pg_notify('{NOTIFY_PREFIX}' || current_schema(), '') FROM queued WHERE NOT"
        f" pg_try_advisory_xact_lock_shared({IDLE_LOCK_CLASS}, hashtext('{NOTIFY_PREFIX}' || current_schema()))",
        (envelope.id, envelope.type, subjects.event_subject(event), envelope.SerializeToString()),
    )
    note_event(envelope.type, envelope.organization_id)  # the cache's fence (chassis.caching) acts on it
    return envelope
