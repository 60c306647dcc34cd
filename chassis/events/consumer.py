"""Durable event consumers: validated events, handled once per consumer, retried with backoff, then dead-lettered."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
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
from chassis.events.delivery import Backoff, Delivery, PullLoop, current_delivery, delivery_of, heartbeat
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

FETCH_TIMEOUT_SECONDS = 0.5
"""Longest wait of a fetch for its first message; it returns as soon as one is there."""

_SAVEPOINT = "chassis_event"
"""The savepoint each handler of a batch runs after (handlers' own nested transactions use other names)."""

_cursors: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("chassis_event_cursors", default=None)


class _CountedCursor(psycopg.AsyncCursor[Any]):
    """A cursor that counts itself: every statement a handler runs opens one (conn.execute included), so a
    handler that opened none left nothing for the savepoint to guard, and it need not be renewed."""

    def __init__(self, connection: psycopg.AsyncConnection[Any], *, row_factory: Any = None) -> None:
        super().__init__(connection, row_factory=row_factory)
        if (count := _cursors.get()) is not None:
            count[0] += 1


class _CountedServerCursor(psycopg.AsyncServerCursor[Any]):
    """The named-cursor counterpart of _CountedCursor."""

    def __init__(self, connection: psycopg.AsyncConnection[Any], name: str, **kwargs: Any) -> None:
        super().__init__(connection, name, **kwargs)
        if (count := _cursors.get()) is not None:
            count[0] += 1


@contextlib.contextmanager
def _counting_statements(conn: psycopg.AsyncConnection) -> Iterator[list[int] | None]:
    """Count the cursors opened on conn meanwhile (None: conn has cursor factories of its own, not counted)."""
    if conn.cursor_factory is not psycopg.AsyncCursor or conn.server_cursor_factory is not psycopg.AsyncServerCursor:
        yield None
        return
    count = [0]
    token = _cursors.set(count)
    conn.cursor_factory, conn.server_cursor_factory = _CountedCursor, _CountedServerCursor
    try:
        yield count
    finally:
        conn.cursor_factory, conn.server_cursor_factory = psycopg.AsyncCursor, psycopg.AsyncServerCursor
        _cursors.reset(token)


@dataclass
class _Item:
    """A valid message of a fetched batch, and what became of it."""

    msg: Msg
    delivery: Delivery
    event: message.Message
    envelope: envelope_pb2.Envelope
    first: bool = False
    """This consumer had not handled the event before (its dedup row is new)."""
    failure: Exception | None = None
    """Why the handler failed (its work and dedup row rolled back), or None."""


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
    """Batches handled at once by this replica (each in a transaction of its own, on a pooled connection)."""
    batch: int = 64
    """Most messages fetched and handled together in one transaction (one dedup INSERT, one commit);
    a fetch takes what is there, so a quiet stream gives small batches and no waiting."""
    handler_timeout: float = 60.0
    """Seconds a batch may take: past it the handling is cancelled (its transaction rolled back) and the
    batch's messages count a failed delivery, so a handler hung on a dead connection cannot hold its events
    forever (its heartbeats would otherwise keep them from redelivery to a healthy replica)."""

    def __post_init__(self) -> None:
        subjects.check_name(self.name, "consumer")
        if not self.events:
            raise ValueError(f"consumer {self.name} declares no event types")
        if self.max_deliver < 1:
            raise ValueError("max_deliver must be at least 1")
        if self.batch < 1 or self.concurrency < 1:
            raise ValueError("batch and concurrency must be at least 1")

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
        self.on_handled: Callable[[list[envelope_pb2.Envelope]], None] | None = None
        """Called after each commit with the envelopes it recorded as handled (benchmarks time them)."""

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
                max_ack_pending=max(1000, c.concurrency * c.batch * 2),
                filter_subjects=filters,
            )
            package = packages[stream]

            async def ensure(package: str = package) -> None:
                await self._streams.ensure_package(package)
                await self._streams.ensure_dead_letters()

            await ensure()
            loop = PullLoop(self._js, stream, config, self._process_batch, concurrency=c.concurrency,
                            ensure_stream=ensure, on_error=self._streams.forget, batch=c.batch,
                            fetch_timeout=FETCH_TIMEOUT_SECONDS)
            loop.start()
            self._loops.append(loop)

    async def stop(self, grace: float) -> None:
        """Stop fetching and let in-flight handlers finish within grace."""
        await asyncio.gather(*(loop.stop(grace) for loop in self._loops))

    async def _process_batch(self, msgs: list[Msg]) -> None:
        """Handle a fetched batch in one transaction, then ack what was handled and retry what failed."""
        c = self.consumer
        items: list[_Item] = []
        for msg in msgs:
            delivery = delivery_of(msg, c.name)
            try:
                event, envelope = open_envelope(msg.data, nats_subject=msg.subject)
            except InvalidEvent as exc:
                await self._settle_failure(msg, delivery.delivery_count,
                                           envelope_pb2.DEAD_LETTER_REASON_INVALID_EVENT, str(exc), None, final=True)
                continue
            items.append(_Item(msg, delivery, event, envelope))
        if not items:
            return
        async with heartbeat([item.msg for item in items], c.ack_wait / 3):
            try:
                await asyncio.wait_for(self._handle_all(items), c.handler_timeout)
            except TimeoutError:
                logger.warning("consumer handler timed out; its batch is retried",
                               extra={"consumer": c.name, "events": len(items), "timeout": c.handler_timeout})
                for item in items:
                    item.first = False
                    item.failure = TimeoutError(f"the handler did not finish within {c.handler_timeout:g}s "
                                                f"(a batch of {len(items)})")
            except INFRASTRUCTURE_ERRORS as exc:
                logger.warning("consumer cannot reach PostgreSQL; will retry",
                               extra={"consumer": c.name, "events": len(items), "error": str(exc)})
                for item in items:
                    await item.msg.nak(delay=c.backoff.delay(min(item.delivery.delivery_count, 6)))
                return
        handled = [item.envelope for item in items if item.first and item.failure is None]
        self.handled += len(handled)
        if handled and self.on_handled is not None:
            self.on_handled(handled)
        await self._settle(items)

    async def _settle(self, items: list[_Item]) -> None:
        """Ack the handled (and already handled) messages; retry or dead-letter the failed ones."""
        c = self.consumer
        for item in items:
            exc = item.failure
            if exc is None:
                await item.msg.ack()
                continue
            if isinstance(exc, INFRASTRUCTURE_ERRORS):  # the database's trouble, not the event's: never dead-lettered
                logger.warning("handler hit a database error; will retry",
                               extra={"consumer": c.name, "event_id": item.envelope.id, "error": str(exc)})
                await item.msg.nak(delay=c.backoff.delay(min(item.delivery.delivery_count, 6)))
                continue
            final = item.delivery.delivery_count >= c.max_deliver
            logger.warning("handler failed", extra={"consumer": c.name, "event_id": item.envelope.id,
                                                    "type": item.envelope.type,
                                                    "delivery": item.delivery.delivery_count, "final": final,
                                                    "error": repr(exc)})
            await self._settle_failure(item.msg, item.delivery.delivery_count,
                                       envelope_pb2.DEAD_LETTER_REASON_HANDLER_FAILED,
                                       f"{type(exc).__name__}: {exc}", item.envelope, final=final)

    async def _handle_all(self, items: list[_Item]) -> None:
        """Handle the batch in one transaction; if its commit fails, one by one, so only the message at
        fault fails. Raises only when PostgreSQL cannot be used at all."""
        try:
            await self._handle_batch(items)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:  # a deferred constraint or the like, found at commit
            if len(items) == 1:
                items[0].failure = exc
                return
            for item in items:
                item.first, item.failure = False, None
                try:
                    await self._handle_batch([item])
                except INFRASTRUCTURE_ERRORS:
                    raise
                except Exception as alone:
                    item.failure = alone

    async def _handle_batch(self, items: list[_Item]) -> None:
        """Run the handler for each event this consumer has not handled yet, all in one transaction.

        The dedup rows of the batch go in with one INSERT (sorted, so two batches sharing events
        lock them in the same order and cannot deadlock); each handler runs after a SAVEPOINT, and
        one that fails is rolled back to it with its dedup row, leaving the others to commit. Sets
        `first` and `failure` on the items; raises only for the transaction as a whole.
        """
        name = self.consumer.name
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO processed_events (consumer, event_id) SELECT %s, unnest(%s::text[])"
                " ON CONFLICT DO NOTHING RETURNING event_id",
                (name, sorted({item.envelope.id for item in items})),
            )
            fresh = {row[0] for row in await cur.fetchall()}
            await conn.execute(f"SAVEPOINT {_SAVEPOINT}")
            with _counting_statements(conn) as statements:
                for item in items:
                    item.first = item.envelope.id in fresh
                    if not item.first:
                        continue  # handled before (or earlier in this batch): acked without running the handler
                    fresh.discard(item.envelope.id)
                    before = statements[0] if statements else 0
                    try:
                        await self._run_handler(item, conn)
                    except Exception as exc:
                        if isinstance(exc, INFRASTRUCTURE_ERRORS) and conn.broken:
                            raise  # the connection is gone: the whole batch is retried
                        item.failure = exc
                        await conn.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                        await conn.execute("DELETE FROM processed_events WHERE consumer = %s AND event_id = %s",
                                           (name, item.envelope.id))
                    else:
                        if statements is not None and statements[0] == before:
                            continue  # the handler ran no statement: the savepoint still marks where it began
                    # Past this message: a later rollback must not undo it (nor the DELETE above).
                    await conn.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}; SAVEPOINT {_SAVEPOINT}")

    async def _run_handler(self, item: _Item, conn: psycopg.AsyncConnection) -> None:
        """The handler inside the event's CONSUMER span, with its delivery and call context set."""
        incoming = dict(item.delivery.trace_headers) or dict(_trace_from(item.envelope))
        delivery_token = current_delivery.set(item.delivery)
        try:
            with consumer_span(f"process {item.envelope.type}", incoming) as trace:
                call_token = current_call.set(CallContext(deadline=None,
                                                          headers=(*trace.items(), *claims_metadata())))
                try:
                    await self.consumer.handler(item.event, item.envelope, conn)
                finally:
                    current_call.reset(call_token)
        finally:
            current_delivery.reset(delivery_token)

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
