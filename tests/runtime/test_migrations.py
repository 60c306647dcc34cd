"""Migrations against a real PostgreSQL: applied once, safe to run twice and from two runners at once."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from chassis import db
from chassis.tooling.infra.postgres import PostgresProcess


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresProcess]:
    folder = Path(tempfile.mkdtemp(prefix="protomesh-test-pg-"))  # not under pytest's 0700 tmp root
    server = PostgresProcess(folder / "data", durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def write_migrations(folder: Path) -> Path:
    folder.mkdir()
    (folder / "001_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY); SELECT pg_sleep(0.3);")
    (folder / "002_more.sql").write_text("ALTER TABLE things ADD COLUMN name text NOT NULL DEFAULT '';")
    return folder


async def test_applied_once_even_when_run_twice(postgres: PostgresProcess, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "m")
    assert await db.migrate(postgres.url, "once", folder) == [1, 2]
    assert await db.migrate(postgres.url, "once", folder) == []


async def test_two_replicas_migrating_at_once_apply_each_version_once(postgres: PostgresProcess,
                                                                        tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "m")
    first, second = await asyncio.gather(db.migrate(postgres.url, "racing", folder),
                                         db.migrate(postgres.url, "racing", folder))
    assert sorted(first + second) == [1, 2]
    async with await psycopg.AsyncConnection.connect(postgres.url) as conn:
        rows = await (await conn.execute("SELECT version FROM racing.schema_migrations ORDER BY 1")).fetchall()
    assert rows == [(1,), (2,)]


async def test_each_service_owns_its_schema(postgres: PostgresProcess, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "m")
    await db.migrate(postgres.url, "svc_a", folder)
    await db.migrate(postgres.url, "svc_b", folder)
    async with await psycopg.AsyncConnection.connect(postgres.url) as conn:
        cur = await conn.execute("SELECT table_schema FROM information_schema.tables WHERE table_name = 'things'")
        schemas = {row[0] for row in await cur.fetchall()}
    assert {"svc_a", "svc_b"} <= schemas


async def test_a_failing_migration_leaves_nothing_half_applied(postgres: PostgresProcess, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (folder / "002_broken.sql").write_text("CREATE TABLE half (id int); SELECT * FROM no_such_table;")
    with pytest.raises(psycopg.errors.UndefinedTable):
        await db.migrate(postgres.url, "broken", folder)
    async with await psycopg.AsyncConnection.connect(postgres.url) as conn:
        cur = await conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'broken'")
        tables = {row[0] for row in await cur.fetchall()}
    assert tables == {"ok", "schema_migrations"}


def test_badly_named_migration_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "init.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match=r"NNN_name\.sql"):
        db.load_migrations(tmp_path)
