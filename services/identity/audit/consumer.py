"""The consumer that keeps the trail: every service's AuditRecorded events into identity.audit_records."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from chassis.events import Backoff, Consumer
from protomesh.events.v1 import envelope_pb2
from protomesh.identity.v1 import audit_pb2
from services.identity.audit.store import insert, record_row

CONSUMER_NAME = "identity-audit"
"""Its durable name (chassis.tooling.nats_auth lets the identity service consume with it)."""


async def on_audit_recorded(event: audit_pb2.AuditRecorded, envelope: envelope_pb2.Envelope,
                            conn: psycopg.AsyncConnection[Any]) -> None:
    """Append the record. The chassis skips a redelivered event (processed_events); the record id is unique
    too, so a record published twice (a relay retry past the stream's duplicate window) is one row."""
    await insert(conn, record_row(event, _record_id(event.record.record_id, envelope.id)))


def _record_id(given: str, envelope_id: str) -> str:
    # The chassis sends a UUID in both places; anything else is replaced by the envelope's (also a UUID).
    try:
        return str(uuid.UUID(given))
    except ValueError:
        return envelope_id


def audit_consumer() -> Consumer:
    """The durable consumer of the audit subject (every service publishes there, from its outbox).

    Many deliveries before dead-lettering: a record must not be lost to a passing database problem (those
    are retried without counting anyway; this covers anything else transient).
    """
    return Consumer(CONSUMER_NAME, [audit_pb2.AuditRecorded], on_audit_recorded, max_deliver=20,
                    backoff=Backoff(initial=0.5), concurrency=4)
