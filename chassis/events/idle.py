"""How an idle outbox relay waits for new rows without producers paying a NOTIFY while it is busy.

The protocol (the producer's half is in `outbox.add`): an idle relay holds the schema's advisory
lock (outbox.IDLE_LOCK_CLASS, hashtext(channel)) exclusively on a connection that LISTENs on the
schema's channel. A producer takes the same lock shared for its transaction when it can, and sends
a NOTIFY (delivered on commit) when it cannot, that is when a relay is idle. A relay goes idle only
when it can take the lock at once, so when no producer transaction holding it shared is open, then
looks for unsent rows once more: anything a producer committed without notifying is visible to that
look, anything committed later notifies. While producer transactions keep overlapping the relay
polls every `busy_poll` seconds instead, and producers never notify.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from psycopg import sql

from chassis.events.outbox import IDLE_LOCK_CLASS, notify_channel

logger = logging.getLogger(__name__)

WAKE_CHECK_SECONDS = 0.1
"""How often a wait on NOTIFY looks at wake() as well."""

# Take the idle lock if no producer holds it shared, without waiting; and say whether another
# relay holds it (idle itself), in the same round trip.
_TRY_LOCK = """
    SELECT pg_try_advisory_lock(%s::int4, hashtext(%s)),
           EXISTS (SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                   WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.objsubid = 2
                     AND l.classid = %s::oid AND l.objid = hashtext(%s)::oid AND l.mode = 'ExclusiveLock'
                     AND l.granted AND l.pid <> pg_backend_pid())
"""


class IdleWait:
    """The relay's idle side of the wake-up protocol, on a connection of its own (LISTEN and the lock)."""

    def __init__(self, url: str, schema: str, *, busy_poll: float = 0.005) -> None:
        self._url = url
        self._schema = schema
        self._channel = notify_channel(schema)
        self._key = (IDLE_LOCK_CLASS, self._channel)
        self.busy_poll = busy_poll
        """The pause before looking again while producers' transactions are open (their rows are on the
        way): short, since it is the relay's latency under a steady trickle."""
        self._conn: psycopg.AsyncConnection | None = None
        self._woken = asyncio.Event()
        self.notified = 0
        """Wake-ups by NOTIFY (for tests)."""

    def wake(self) -> None:
        """End the current (or next) wait now."""
        self._woken.set()

    async def close(self) -> None:
        """Close the connection; an idle lock it held is released with it."""
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                await self._conn.close()
            self._conn = None

    async def wait(self, timeout: float) -> None:
        """Return when unsent rows may be waiting: at once if some are, or on NOTIFY, wake() or timeout."""
        if self._woken.is_set():
            self._woken.clear()
            return
        try:
            conn = await self._connection()
            await self._wait_on(conn, timeout)
        except psycopg.Error as exc:  # PostgreSQL away: poll, and connect again next time
            logger.debug("outbox relay's idle connection failed", extra={"schema": self._schema, "error": str(exc)})
            await self.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), timeout)
        self._woken.clear()

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True, connect_timeout=3)
            try:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn

    async def _wait_on(self, conn: psycopg.AsyncConnection, timeout: float) -> None:
        row = await (await conn.execute(_TRY_LOCK, self._key * 2)).fetchone()
        locked, other_relay_idle = row if row else (False, False)
        if not locked:
            if other_relay_idle:  # producers notify it, and this connection hears it too
                await self._notified(conn, timeout)
            else:  # producers' transactions are open: their rows come next
                await asyncio.sleep(self.busy_poll)
            return
        try:
            if not await self._unsent(conn):
                await self._notified(conn, timeout)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s::int4, hashtext(%s))", self._key)

    async def _unsent(self, conn: psycopg.AsyncConnection) -> bool:
        """Whether a row is waiting that no other relay is publishing (SKIP LOCKED)."""
        query = sql.SQL("SELECT 1 FROM {}.outbox WHERE sent_at IS NULL LIMIT 1 FOR UPDATE SKIP LOCKED").format(
            sql.Identifier(self._schema))
        return await (await conn.execute(query)).fetchone() is not None

    async def _notified(self, conn: psycopg.AsyncConnection, timeout: float) -> None:
        """Wait for a NOTIFY on the channel, wake() or timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._woken.is_set() and (left := deadline - loop.time()) > 0:
            # aclosing: the generator holds the connection's lock until it is closed.
            async with contextlib.aclosing(conn.notifies(timeout=min(left, WAKE_CHECK_SECONDS), stop_after=1)) as got:
                async for _ in got:
                    self.notified += 1
                    return
