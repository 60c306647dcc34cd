"""The outbox relay: publishes committed outbox rows to JetStream and marks them sent once the server acked."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import nats
import nats.js.errors
import psycopg
from psycopg_pool import AsyncConnectionPool

from chassis.events.envelope import headers_for
from chassis.events.idle import IdleWait
from chassis.events.streams import DEAD_LETTER_MAX_AGE_SECONDS, Streams
from protomesh.events.v1 import envelope_pb2

logger = logging.getLogger(__name__)

_SELECT_BATCH = """
    SELECT seq, nats_subject, envelope FROM outbox
    WHERE sent_at IS NULL ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED
"""
# Losing a "sent" mark in a crash only republishes those rows, which the stream's duplicate window
# drops; so the round's commit need not wait for the disk. set_config(..., true) is SET LOCAL,
# folded into the UPDATE to save a round trip.
_MARK_SENT = """
    WITH fast_commit AS (SELECT set_config('synchronous_commit', 'off', true))
    UPDATE outbox SET sent_at = now() FROM fast_commit WHERE seq = ANY(%s)
"""


@dataclass
class _Round:
    """One batch of locked rows whose publishes are in flight, in a transaction still open."""

    stack: contextlib.AsyncExitStack
    conn: psycopg.AsyncConnection
    seqs: list[int]
    futures: list[asyncio.Future] = field(default_factory=list)
    published: list[tuple[str, str]] = field(default_factory=list)
    """(event type, organization) of each row, for on_published."""

    async def close(self, exc: BaseException | None) -> None:
        """Commit (exc is None) or roll back the round's transaction and give its connection back."""
        if exc is None:
            await self.stack.aclose()
        else:
            await self.stack.__aexit__(type(exc), exc, exc.__traceback__)


class Relay:
    """Moves outbox rows to JetStream: at least once, de-duplicated by the server on the event id.

    A round locks a batch of unsent rows with FOR UPDATE SKIP LOCKED (relays in other replicas
    take other rows) and publishes them all without waiting; while their acks are on the way the
    next round locks and publishes the next batch (`window` rounds in flight). A round then waits
    for its acks, marks the acked rows sent in one UPDATE and commits. A crash before the commit
    leaves the rows unsent and the next relay publishes them again with the same Nats-Msg-Id,
    which the stream's duplicate window drops; the consumers' processed_events covers anything
    older. While rows keep coming the relay polls; when a round finds nothing it goes idle and is
    woken by a NOTIFY that only producers committing during its idleness send (chassis.events.idle);
    errors of PostgreSQL or NATS only pause it.
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
        window: int = 2,
        poll_interval: float = 2.0,
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
        self.window = max(window, 1)
        """Rounds whose acks may be pending at once (each holds a pooled connection)."""
        self.poll_interval = poll_interval
        """Longest sleep while idle: the fallback when a NOTIFY cannot arrive (listener reconnecting)."""
        self.publish_timeout = publish_timeout
        self.keep_sent_seconds = keep_sent_seconds
        self.keep_processed_seconds = keep_processed_seconds
        """processed_events rows older than this are deleted; as long as dead letters are kept, so a
        replayed dead letter is still recognised."""
        self._idle = IdleWait(database_url, schema)
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        """Rows this relay published and marked sent (for logs and tests)."""
        self.on_published: Callable[[list[tuple[str, str]]], None] | None = None
        """Called with (event type, organization) of each published batch (chassis.caching invalidates them)."""

    def start(self) -> None:
        """Run in the background until stop()."""
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._schema}")

    async def stop(self) -> None:
        """Stop at once; interrupted rounds are rolled back and published again later."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._idle.close()

    def wake(self) -> None:
        """Look for unsent rows now."""
        self._idle.wake()

    async def _run(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        next_cleanup = loop.time() + 60.0
        while True:
            try:
                complete = await self.drain()
                if loop.time() >= next_cleanup:
                    await self._delete_old_sent()
                    next_cleanup = loop.time() + 300.0
                if complete:
                    failures = 0
                    await self._idle.wait(self.poll_interval)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # PostgreSQL or NATS away: keep the rows, try again shortly
                logger.warning("outbox relay round failed; retrying", extra={"schema": self._schema,
                                                                             "error": repr(exc)})
            failures += 1
            await asyncio.sleep(min(0.1 * 2 ** min(failures, 6), self.poll_interval))

    async def drain(self) -> bool:
        """Publish until a round finds no unsent row (that this relay may lock); False if some were not acked.

        Up to `window` rounds are open at once: the next batch is locked and published while the
        acks of the previous ones are pending.
        """
        rounds: deque[_Round] = deque()
        complete, more = True, True
        try:
            while True:
                while more and complete and len(rounds) < self.window:
                    started = await self._start_round()
                    if started is None:
                        more = False
                    else:
                        rounds.append(started)
                if not rounds:
                    return complete
                locked, acked = await self._finish_round(rounds.popleft())
                complete = complete and acked == locked
        except BaseException as exc:
            for pending in rounds:  # their rows are published but not marked: rolled back, sent again later
                _forget(pending.futures)
                await pending.close(exc)
            raise

    async def publish_batch(self) -> tuple[int, int]:
        """One round on its own: lock, publish, await acks, mark sent, commit. Returns (rows locked, rows acked)."""
        started = await self._start_round()
        return (0, 0) if started is None else await self._finish_round(started)

    async def _start_round(self) -> _Round | None:
        """Lock the next batch and publish it; the acks are awaited by _finish_round."""
        stack = contextlib.AsyncExitStack()
        round_: _Round | None = None
        try:
            conn = await stack.enter_async_context(self._pool.connection())
            await stack.enter_async_context(conn.transaction())
            rows = await (await conn.execute(_SELECT_BATCH, (self.batch_size,))).fetchall()
            if not rows:
                await stack.aclose()
                return None
            envelopes = [envelope_pb2.Envelope.FromString(row[2]) for row in rows]
            for package in {e.type.rpartition(".")[0] for e in envelopes}:
                await self._streams.ensure_package(package)
            round_ = _Round(stack, conn, [row[0] for row in rows])
            for (_, nats_subject, payload), envelope in zip(rows, envelopes, strict=True):
                round_.published.append((envelope.type, envelope.organization_id))
                # No wait_stall: with one, nats-py waits for its window through asyncio.wait_for, a task
                # and a turn of the event loop per message, which producers sharing the loop stretch
                # to milliseconds. The window (4000) is never full here: at most window * batch_size
                # acks of this relay are pending, and _await_acks bounds how long.
                round_.futures.append(await self._js.publish_async(
                    nats_subject, bytes(payload), headers=headers_for(envelope)))
            return round_
        except BaseException as exc:
            if round_ is not None:
                _forget(round_.futures)
            await stack.__aexit__(type(exc), exc, exc.__traceback__)
            raise

    async def _finish_round(self, round_: _Round) -> tuple[int, int]:
        """Await the round's acks, mark the acked rows sent and commit. Returns (rows locked, rows acked)."""
        try:
            await self._await_acks(round_.futures)
            acked: list[int] = []
            errors: dict[int, str] = {}
            for seq, future in zip(round_.seqs, round_.futures, strict=True):
                if future.done() and not future.cancelled() and future.exception() is None:
                    acked.append(seq)
                    continue
                if not future.done():
                    future.cancel()
                errors[seq] = "no ack" if future.cancelled() else repr(future.exception())
                if not future.cancelled() and isinstance(future.exception(), nats.js.errors.NoStreamResponseError):
                    self._streams.forget()  # the stream is gone (nats-server lost its store): create it again
            await self._mark_sent(round_.conn, acked)
            if errors:
                await round_.conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = %s WHERE seq = ANY(%s)",
                    (next(iter(errors.values()))[:500], list(errors)),
                )
                logger.warning("outbox rows not acknowledged; will retry",
                               extra={"schema": self._schema, "unacked": len(errors), "acked": len(acked)})
        except BaseException as exc:
            _forget(round_.futures)
            await round_.close(exc)
            raise
        await round_.close(None)
        self.published += len(acked)
        if self.on_published is not None and acked:
            self.on_published(round_.published)
        return len(round_.seqs), len(acked)

    async def _await_acks(self, futures: list[asyncio.Future]) -> None:
        """Wait for the acks, at most publish_timeout; after a reconnect only briefly, since the acks of
        messages that went down with the old connection never come (they are published again later)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.publish_timeout
        reconnects = self._nc.stats["reconnects"]
        pending: set[asyncio.Future] = {f for f in futures if not f.done()}
        while pending and (left := deadline - loop.time()) > 0:
            _, pending = await asyncio.wait(pending, timeout=min(left, 0.1))
            if self._nc.stats["reconnects"] != reconnects and self._nc.is_connected:
                reconnects = self._nc.stats["reconnects"]
                deadline = min(deadline, loop.time() + 0.5)

    async def _mark_sent(self, conn: psycopg.AsyncConnection, seqs: Sequence[int]) -> None:
        if seqs:
            await conn.execute(_MARK_SENT, (list(seqs),))

    async def _delete_old_sent(self) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => %s)", (self.keep_sent_seconds,)
            )
            await conn.execute(
                "DELETE FROM processed_events WHERE processed_at < now() - make_interval(secs => %s)",
                (self.keep_processed_seconds,),
            )


def _forget(futures: list[asyncio.Future]) -> None:
    """Drop publish acks nobody will wait for: each pending one holds a slot of the client's publish window."""
    for future in futures:
        if not future.cancel() and not future.cancelled():
            future.exception()  # retrieved, so asyncio does not log it as forgotten
