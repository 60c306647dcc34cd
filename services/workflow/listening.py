"""`listen` on domain events: every event another service publishes becomes a signal to the executions of its
organization that wait for its type (their filter is checked by the engine when they resume)."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from google.protobuf import json_format

from chassis.contracts import domain_event_types
from chassis.events import Consumer
from protomesh.events.v1 import envelope_pb2
from services.workflow.engine.runner import Engine
from services.workflow.store import Store

logger = logging.getLogger(__name__)

CONSUMER_NAME = "workflow-listen"
OWN_PACKAGE = "protomesh.workflow.v1"
"""Not our own events: an `emit` waking a `listen` of the same service goes through signals, not a loop."""


def listen_consumer(store: Store, engine: Engine) -> Consumer:
    """The durable consumer turning domain events into signals."""

    async def on_event(event: Any, envelope: envelope_pb2.Envelope, conn: psycopg.AsyncConnection[Any]) -> None:
        organization = envelope.organization_id
        if not organization:
            return
        data = json_format.MessageToDict(event, preserving_proto_field_name=True)
        woken = await store.signal_waiting(conn, organization, envelope.type, data)
        if woken:
            logger.info("domain event signalled waiting executions", extra={"event_type": envelope.type,
                                                                           "executions": woken})
            engine.wake()  # a moment early (before this commit): the next poll finds it anyway

    return Consumer(CONSUMER_NAME, list(domain_event_types(excluding=OWN_PACKAGE)), on_event, max_deliver=5)
