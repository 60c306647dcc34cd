"""What the identity stores share: publishing an event in the write's transaction."""

from __future__ import annotations

from typing import Any

import psycopg
from google.protobuf.message import Message

from chassis.events import outbox
from services.identity import events


async def publish(conn: psycopg.AsyncConnection[Any], event: Message, subject: str) -> None:
    """Queue a domain event in the caller's transaction (the outbox relay publishes it after commit)."""
    await outbox.add(conn, event, subject=subject, source=events.SOURCE)
