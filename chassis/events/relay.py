"""The outbox relay: publishes committed outbox rows to JetStream and marks them sent once the server acked."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

import nats
import nats.js.errors
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from chassis.events.envelope import headers_for
from chassis.events.outbox import notify_channel
from chassis.events.streams import DEAD_LETTER_MAX_AGE_SECONDS, Streams
from protomesh.events.v1 import envelope_pb2

logger = logging.getLogger(__name__)

_SELECT_BATCH = """
    SELECT seq, event_type, nats_subject, envelope FROM outbox
    WHERE sent_at IS NULL ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED
"""


class Relay:
    """Moves outbox rows to JetStream: at least once, de-duplicated by the server on the event id.

    Each round locks a batch of unsent rows with FOR UPDATE SKIP LOCKED (relays in other replicas
    take other rows), publishes them all without waiting in between, waits for the server's
    acks, marks the acked rows sent and commits. A crash before the commit leaves the rows
    unsent and the next relay publishes them again with the same Nats-Msg-Id, which the
    stream's duplicate window drops; the consumers' processed_events covers anything older.
    It wakes on NOTIFY from `outbox.add` and polls as a fallback; errors of PostgreSQL or NATS
    only pause it.
    """

    def __init__(
        self,
        database_url: str,
        pool: AsyncConnectionPool,
        nc: nats.NATS,
        schema: str,
        *,
        streams: Streams | None = None,
        batch_size: int = 256,
        poll_interval: float = 2.0,
        coalesce_seconds: float = 0.005,
        publish_timeout: float = 5.0,
        keep_sent_seconds: float = 24 * 3600.0,
        keep_processed_seconds: float = DEAD_LETTER_MAX_AGE_SECONDS,
    ) -> None:
        self._url = database_url
        self._pool = pool
        self._nc = nc
        self._js = nc.jetstream()
        self._schema = schema
        self._streams = streams or Streams(self._js)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.coalesce_seconds = coalesce_seconds
        self.publish_timeout = publish_timeout
        self.keep_sent_seconds = keep_sent_seconds
        self.keep_processed_seconds = keep_processed_seconds
        """processed_events rows older than this are deleted; as long as dead letters are kept, so a
        replayed dead letter is still recognised."""
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.published = 0
        self.on_published: Callable[[list[tuple[str, str]]], None] | None = None
        """Called with (event type, organization) of each published batch (chassis.caching invalidates them)."""
        """Rows this relay published and marked sent (for logs and tests)."""

    def start(self) -> None:
        """Run in the background until stop()."""
        self._tasks = [
            asyncio.create_task(self._listen(), name=f"outbox-listen-{self._schema}"),
            asyncio.create_task(self._run(), name=f"outbox-relay-{self._schema}"),
        ]

    async def stop(self) -> None:
        """Stop at once; an interrupted batch is rolled back and published again later."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def wake(self) -> None:
        """Look for unsent rows now."""
        self._wake.set()

    async def _listen(self) -> None:
        delay = 0.2
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._url, autocommit=True, connect_timeout=3) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(notify_channel(self._schema))))
                    delay = 0.2
                    self._wake.set()  # rows may have been committed while nobody listened
                    async for _ in conn.notifies():
                        self._wake.set()
            except psycopg.Error as exc:
                logger.debug("outbox listener lost its connection", extra={"error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.poll_interval)

    async def _run(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        next_cleanup = loop.time() + 60.0
        while True:
            self._wake.clear()
            try:
                complete = await self.drain()
                if loop.time() >= next_cleanup:
                    await self._delete_old_sent()
                    next_cleanup = loop.time() + 300.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # PostgreSQL or NATS away: keep the rows, try again shortly
                complete = False
                logger.warning("outbox relay round failed; retrying", extra={"schema": self._schema,
                                                                             "error": repr(exc)})
            if complete:
                failures = 0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                    # A wake-up comes with every commit: gather a few milliseconds' worth so one round
                    # carries many rows instead of each commit paying for a round of its own.
                    await asyncio.sleep(self.coalesce_seconds)
            else:
                failures += 1
                await asyncio.sleep(min(0.1 * 2 ** min(failures, 6), self.poll_interval))

    async def drain(self) -> bool:
        """Publish until no unsent row is left (that this relay may lock); False if some were not acked."""
        while True:
            locked, acked = await self.publish_batch()
            if acked < locked:
                return False
            if locked < self.batch_size:
                return True

    async def publish_batch(self) -> tuple[int, int]:
        """One round: lock, publish, await acks, mark sent, commit. Returns (rows locked, rows acked)."""
        async with self._pool.connection() as conn, conn.transaction():
            # Losing a "sent" mark in a crash only republishes those rows, which the stream's duplicate
            # window drops; so this commit need not wait for the disk.
            await conn.execute("SET LOCAL synchronous_commit = off")
            rows = await (await conn.execute(_SELECT_BATCH, (self.batch_size,))).fetchall()
            if not rows:
                return 0, 0
            for event_type in {row[1] for row in rows}:
                await self._streams.ensure_package(event_type.rpartition(".")[0])
            futures: list[asyncio.Future] = []
            published: list[tuple[str, str]] = []
            try:
                for _, _, nats_subject, payload in rows:
                    envelope = envelope_pb2.Envelope.FromString(payload)
                    published.append((envelope.type, envelope.organization_id))
                    futures.append(await self._js.publish_async(
                        nats_subject, bytes(payload), headers=headers_for(envelope), wait_stall=self.publish_timeout))
                await self._await_acks(futures)
            except BaseException:
                for future in futures:  # each pending one holds a slot of the client's publish window
                    if not future.cancel() and not future.cancelled():
                        future.exception()  # retrieved, so asyncio does not log it as forgotten
                raise
            acked: list[int] = []
            errors: dict[int, str] = {}
            for row, future in zip(rows, futures, strict=True):
                if future.done() and not future.cancelled() and future.exception() is None:
                    acked.append(row[0])
                else:
                    if not future.done():
                        future.cancel()
                    errors[row[0]] = "no ack" if future.cancelled() else repr(future.exception())
                    if not future.cancelled() and isinstance(future.exception(), nats.js.errors.NoStreamResponseError):
                        self._streams.forget()  # the stream is gone (nats-server lost its store): create it again
            await self._mark_sent(conn, acked)
            if errors:
                await conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = %s WHERE seq = ANY(%s)",
                    (next(iter(errors.values()))[:500], list(errors)),
                )
                logger.warning("outbox rows not acknowledged; will retry",
                               extra={"schema": self._schema, "unacked": len(errors), "acked": len(acked)})
        self.published += len(acked)
        if self.on_published is not None and acked:
            self.on_published(published)
        return len(rows), len(acked)

    async def _await_acks(self, futures: list[asyncio.Future]) -> None:
        """Wait for the acks, at most publish_timeout; after a reconnect only briefly, since the acks of
        messages that went down with the old connection never come (they are published again later)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.publish_timeout
        reconnects = self._nc.stats["reconnects"]
        pending: set[asyncio.Future] = set(futures)
        while pending and (left := deadline - loop.time()) > 0:
            _, pending = await asyncio.wait(pending, timeout=min(left, 0.1))
            if self._nc.stats["reconnects"] != reconnects and self._nc.is_connected:
                reconnects = self._nc.stats["reconnects"]
                deadline = min(deadline, loop.time() + 0.5)

    async def _mark_sent(self, conn: psycopg.AsyncConnection, seqs: Sequence[int]) -> None:
        if seqs:
            await conn.execute("UPDATE outbox SET sent_at = now() WHERE seq = ANY(%s)", (list(seqs),))

    async def _delete_old_sent(self) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => %s)", (self.keep_sent_seconds,)
            )
            await conn.execute(
                "DELETE FROM processed_events WHERE processed_at < now() - make_interval(secs => %s)",
                (self.keep_processed_seconds,),
            )
