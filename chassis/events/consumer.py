"""Durable event consumers: validated events, handled once per consumer, retried with backoff, then dead-lettered."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import psycopg_pool
from google.protobuf import message
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from psycopg_pool import AsyncConnectionPool

from chassis.callcontext import CallContext, current_call
from chassis.events import subjects
from chassis.events.deadletters import dead_letter
from chassis.events.delivery import Backoff, PullLoop, current_delivery, delivery_of, heartbeat
from chassis.events.envelope import InvalidEvent, open_envelope
from chassis.events.streams import Streams
from chassis.identity import claims_metadata
from chassis.telemetry import consumer_span
from protomesh.events.v1 import envelope_pb2

logger = logging.getLogger(__name__)

Handler = Callable[[Any, envelope_pb2.Envelope, psycopg.AsyncConnection], Awaitable[None]]
"""`async def handle(event, envelope, conn)`: `conn` is inside the transaction that records the event as handled."""

INFRASTRUCTURE_ERRORS = (psycopg.OperationalError, psycopg_pool.PoolTimeout)
"""PostgreSQL unreachable: not the event's fault, so retried without ever dead-lettering."""


@dataclass(frozen=True)
class Consumer:
    """A durable consumer of some event types, declared by a service.

    `events` are contract message classes (or descriptors or full names); the JetStream
    consumers, their streams and filter subjects are derived from them. Each delivery runs
    `handler` in a transaction that also inserts (name, event id) into processed_events, so a
    redelivered event is skipped. A failure rolls back and NAKs with `backoff`; the
    `max_deliver`-th failed delivery goes to DEAD_LETTERS. Events that fail validation go
    there at once and never reach the handler. A consumer declared for the first time starts
    at the beginning of its streams (events are kept for streams.EVENT_MAX_AGE_SECONDS).
    """

    name: str
    events: Sequence[Any]
    handler: Handler
    max_deliver: int = 5
    backoff: Backoff = field(default_factory=Backoff)
    ack_wait: float = 30.0
    """Seconds before an unacknowledged delivery is redelivered; heartbeats extend it while the handler runs."""
    concurrency: int = 4
    """Deliveries handled at once by this replica (each holds a pooled connection)."""

    def __post_init__(self) -> None:
        subjects.check_name(self.name, "consumer")
        if not self.events:
            raise ValueError(f"consumer {self.name} declares no event types")
        if self.max_deliver < 1:
            raise ValueError("max_deliver must be at least 1")

    def subjects_by_stream(self) -> dict[str, list[str]]:
        """The filter subjects of this consumer, grouped by the stream (domain package) holding them."""
        grouped: dict[str, list[str]] = defaultdict(list)
        for event in self.events:
            grouped[subjects.event_stream(event)].append(subjects.event_subject(event))
        return {stream: sorted(set(found)) for stream, found in grouped.items()}

    def packages(self) -> dict[str, str]:
        """Stream name -> domain package, for creating the streams."""
        return {subjects.event_stream(event): subjects.package_of(event) for event in self.events}


class ConsumerRunner:
    """Runs one Consumer in this replica: one pull loop per stream it reads."""

    def __init__(self, consumer: Consumer, js: JetStreamContext, pool: AsyncConnectionPool, streams: Streams) -> None:
        self.consumer = consumer
        self._js = js
        self._pool = pool
        self._streams = streams
        self._loops: list[PullLoop] = []
        self.handled = 0
        """Events this runner's handler committed (for logs and tests)."""

    async def start(self) -> None:
        """Create the streams (now) and the durable consumers (as the pull loops start), then handle events."""
        c = self.consumer
        packages = c.packages()
        for stream, filters in c.subjects_by_stream().items():
            config = ConsumerConfig(
                name=c.name,
                durable_name=c.name,
                description=f"protomesh consumer {c.name}",
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=c.ack_wait,
                # Unlimited on the server: the runner dead-letters after max_deliver itself, so
                # a replica dying during the last attempt cannot make the server drop the event.
                max_deliver=-1,
                max_ack_pending=max(1000, c.concurrency * 4),
                filter_subjects=filters,
            )
            package = packages[stream]

            async def ensure(package: str = package) -> None:
                await self._streams.ensure_package(package)
                await self._streams.ensure_dead_letters()

            await ensure()
            loop = PullLoop(self._js, stream, config, self._process, concurrency=c.concurrency,
                            ensure_stream=ensure, on_error=self._streams.forget)
            loop.start()
            self._loops.append(loop)

    async def stop(self, grace: float) -> None:
        """Stop fetching and let in-flight handlers finish within grace."""
        await asyncio.gather(*(loop.stop(grace) for loop in self._loops))

    async def _process(self, msg: Msg) -> None:
        c = self.consumer
        delivery = delivery_of(msg, c.name)
        try:
            event, envelope = open_envelope(msg.data, nats_subject=msg.subject)
        except InvalidEvent as exc:
            await self._settle_failure(msg, delivery.delivery_count, envelope_pb2.DEAD_LETTER_REASON_INVALID_EVENT,
                                       str(exc), None, final=True)
            return
        delivery_token = current_delivery.set(delivery)
        incoming = dict(delivery.trace_headers) or dict(_trace_from(envelope))
        span = consumer_span(f"process {envelope.type}", incoming)
        trace = span.__enter__()
        call_token = current_call.set(CallContext(deadline=None, headers=(*trace.items(), *claims_metadata())))
        try:
            async with heartbeat(msg, c.ack_wait / 3):
                handled = await self._handle_once(event, envelope)
        except INFRASTRUCTURE_ERRORS as exc:
            logger.warning("consumer cannot reach PostgreSQL; will retry",
                           extra={"consumer": c.name, "event_id": envelope.id, "error": str(exc)})
            await msg.nak(delay=c.backoff.delay(min(delivery.delivery_count, 6)))
            return
        except Exception as exc:
            final = delivery.delivery_count >= c.max_deliver
            logger.warning("handler failed", extra={"consumer": c.name, "event_id": envelope.id, "type": envelope.type,
                                                    "delivery": delivery.delivery_count, "final": final,
                                                    "error": repr(exc)})
            await self._settle_failure(msg, delivery.delivery_count, envelope_pb2.DEAD_LETTER_REASON_HANDLER_FAILED,
                                       f"{type(exc).__name__}: {exc}", envelope, final=final)
            return
        finally:
            current_call.reset(call_token)
            current_delivery.reset(delivery_token)
            span.__exit__(None, None, None)
        if handled:
            self.handled += 1
        await msg.ack()

    async def _handle_once(self, event: message.Message, envelope: envelope_pb2.Envelope) -> bool:
        """Run the handler unless this consumer already handled the event; False for a duplicate."""
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO processed_events (consumer, event_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (self.consumer.name, envelope.id),
            )
            if cur.rowcount == 0:
                return False
            await self.consumer.handler(event, envelope, conn)
            return True

    async def _settle_failure(
        self, msg: Msg, deliveries: int, reason: int, error: str, envelope: envelope_pb2.Envelope | None, *,
        final: bool,
    ) -> None:
        if not final:
            await msg.nak(delay=self.consumer.backoff.delay(deliveries))
            return
        try:
            await dead_letter(self._js, msg, consumer=self.consumer.name, reason=reason, error=error,
                              envelope=envelope)
        except Exception as exc:  # the dead letter is not stored: keep the message and try again later
            logger.warning("dead-lettering failed; will retry", extra={"consumer": self.consumer.name,
                                                                        "error": repr(exc)})
            await msg.nak(delay=self.consumer.backoff.delay(deliveries))


def _trace_from(envelope: envelope_pb2.Envelope) -> tuple[tuple[str, str], ...]:
    headers = []
    if envelope.trace_parent:
        headers.append(("traceparent", envelope.trace_parent))
    if envelope.trace_state:
        headers.append(("tracestate", envelope.trace_state))
    return tuple(headers)
