"""PostgreSQL: an async psycopg 3 pool per service, and versioned SQL migrations per schema."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

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


def open_pool(url: str, schema: str, *, min_size: int, max_size: int, timeout: float) -> AsyncConnectionPool:
    """A pool whose connections use the service's own schema; call `await pool.open()`."""
    return AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        kwargs={"options": f"-c search_path={schema}", "autocommit": True, "connect_timeout": 3},
        open=False,
        name=f"{schema}-pool",
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
