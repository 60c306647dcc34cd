"""PostgreSQL: an async psycopg 3 pool per service, and versioned SQL migrations per schema."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from chassis import telemetry
from chassis.errors import Unavailable

logger = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One versioned SQL file, e.g. 001_agents.sql."""

    version: int
    name: str
    sql: str


def load_migrations(folder: Path) -> list[Migration]:
    """Migrations in a folder, ordered by version; a badly named .sql file is an error."""
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path} must be named NNN_name.sql")
        migrations.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in migrations]
    if len(versions) != len(set(versions)):
        raise ValueError(f"duplicate migration versions in {folder}")
    return migrations


async def migrate(url: str, schema: str, folder: Path, *, table: str = "schema_migrations") -> list[int]:
    """Apply the schema's pending migrations; return the versions applied.

    Safe to run twice and from several replicas at once: a session advisory lock keyed by the
    schema serialises the runners, and each migration commits with its version row. `table`
    records the applied versions; the chassis's own migrations use another table than the
    service's, so both number their files from 001.
    """
    applied: list[int] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"protomesh.migrate.{schema}",))
        try:
            await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.{} ("
                    " version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(sql.Identifier(schema), sql.Identifier(table))
            )
            cur = await conn.execute(
                sql.SQL("SELECT version FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            )
            done = {row[0] for row in await cur.fetchall()}
            for migration in load_migrations(folder):
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
                    await conn.execute(migration.sql.encode())
                    await conn.execute(
                        sql.SQL("INSERT INTO {}.{} (version, name) VALUES (%s, %s)").format(
                            sql.Identifier(schema), sql.Identifier(table)
                        ),
                        (migration.version, migration.name),
                    )
                applied.append(migration.version)
                logger.info("applied migration", extra={"schema": schema, "migration": migration.version})
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"protomesh.migrate.{schema}",))
    return applied


async def wait_for_database(url: str, timeout: float) -> None:
    """Wait until PostgreSQL accepts connections, or raise with what to do about it."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(url, connect_timeout=2) as conn:
                await conn.execute("SELECT 1")
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() + delay > deadline:
                raise RuntimeError(
                    f"PostgreSQL at {safe_url(url)} is not reachable after {timeout:.0f}s ({exc}); "
                    "start it, or point DATABASE_URL at a running server"
                ) from exc
            logger.warning("waiting for PostgreSQL", extra={"url": safe_url(url), "error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


RECONNECT_TIMEOUT_SECONDS = 1.0
"""How long the pool itself keeps re-dialling a lost connection (psycopg_pool's default is 5 minutes).

Its retries back off 1, 2, 4, 8 s..., so after an outage of a few seconds the pool would wait
that long before connecting again. It gives up quickly instead: the health monitor watches
PostgreSQL (Pool.probe) and refills the pool the moment it is back (Pool.dependency_recovered).
"""
PROBE_CONNECT_TIMEOUT_SECONDS = 2


class PostgresUnavailable(Unavailable, PoolTimeout):
    """PostgreSQL is known to be down: UNAVAILABLE (HTTP 503) naming it, raised before waiting on the pool.

    Also a PoolTimeout, so code that already treats a pool timeout as "PostgreSQL unreachable"
    (event consumers retry such messages instead of dead-lettering them) treats this alike.
    """


class Pool(AsyncConnectionPool):
    """A connection pool that fails at once while the health monitor has seen PostgreSQL down.

    Without this every call waits up to the acquire timeout for a connection that cannot come.
    The monitor drives it (chassis.server wires it): `dependency_failed` starts failing fast,
    `dependency_recovered` drops the connections the outage broke and stops failing fast. A call
    that meets a broken connection or a pool timeout first calls `on_connection_error`, so the
    monitor probes at once rather than at its next interval.
    """

    def __init__(self, conninfo: str, **kwargs: Any) -> None:
        super().__init__(conninfo, **kwargs)
        self._url = conninfo
        self.outage: str | None = None
        self.on_connection_error: Callable[[], None] | None = None
        self._probe_conn: psycopg.AsyncConnection[Any] | None = None

    @contextlib.asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection, or PostgresUnavailable at once during a known outage."""
        if self.outage is not None:
            raise PostgresUnavailable(f"postgres is unavailable ({self.outage}); retry shortly")
        try:
            async with super().connection(timeout) as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError):
            if self.on_connection_error is not None:
                self.on_connection_error()
            raise

    async def probe(self) -> None:
        """SELECT 1 on a connection of the probe's own, so a busy pool never looks like a dead server.

        A dead server fails this at once (the socket is closed, or the connect is refused) instead
        of after the pool's acquire timeout.
        """
        try:
            if self._probe_conn is None or self._probe_conn.closed:
                self._probe_conn = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=PROBE_CONNECT_TIMEOUT_SECONDS)
            await self._probe_conn.execute("SELECT 1")
        except BaseException:
            await self._close_probe()
            raise

    async def dependency_failed(self, dependency: str, detail: str) -> None:
        """Health monitor callback: fail fast while PostgreSQL is down."""
        if dependency == "postgres":
            self.outage = detail or "no answer"

    async def dependency_recovered(self, dependency: str) -> None:
        """Health monitor callback: replace the connections the outage broke, then serve again."""
        if dependency == "postgres":
            await self.check()  # tests each idle connection, reconnects for the broken ones
            self.outage = None

    async def close(self, timeout: float = 5.0) -> None:
        """Close the pool and the probe's connection."""
        await self._close_probe()
        await super().close(timeout)

    async def _close_probe(self) -> None:
        conn, self._probe_conn = self._probe_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


CLIENT_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
                     "tcp_user_timeout": 20_000}
"""A connection over TCP whose peer vanished (a host cut off, not closed) fails in ~25 s instead of hanging on
the kernel's defaults (two hours idle; ~15 minutes of retransmissions for a query sent into the void)."""

_SERVER_KEEPALIVES = "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
"""The same on PostgreSQL's side: a backend whose client vanished mid-transaction is ended, and its locks
released, in ~25 s (a replica's transaction holding event dedup rows would otherwise block every other replica
handling those events). Both are ignored on Unix sockets."""


def open_pool(url: str, schema: str, *, min_size: int, max_size: int, timeout: float) -> Pool:
    """A pool whose connections use the service's own schema; call `await pool.open()`."""
    return Pool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        kwargs={"options": f"-c search_path={schema} {_SERVER_KEEPALIVES}", "autocommit": True, "connect_timeout": 3,
                **CLIENT_KEEPALIVES,
                "cursor_factory": telemetry.sql_cursor_class()},  # SQL spans when tracing is on
        open=False,
        name=f"{schema}-pool",
        reconnect_timeout=RECONNECT_TIMEOUT_SECONDS,
    )


async def ping(pool: AsyncConnectionPool, timeout: float = 2.0) -> None:
    """Run SELECT 1 on a pooled connection; raise if PostgreSQL does not answer."""
    async with pool.connection(timeout=timeout) as conn:
        await conn.execute("SELECT 1")


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def contains_pattern(text: str) -> str:
    """A LIKE/ILIKE pattern matching values that contain text literally (%, _ and \\ escaped)."""
    return "%" + text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"


async def fetch_one(pool: AsyncConnectionPool, query: Any, params: Any = ()) -> dict[str, Any] | None:
    """The first row of a query as a dict, or None (one pooled connection, autocommit)."""
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchone()


async def fetch_all(pool: AsyncConnectionPool, query: Any, params: Any = ()) -> list[dict[str, Any]]:
    """Every row of a query as dicts (one pooled connection, autocommit)."""
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()
