"""Migration 003 against a real PostgreSQL: webhook secrets move to sealed columns, and a plain-text one stops it."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from chassis import db
from chassis.tooling.infra.postgres import PostgresProcess

MIGRATIONS = Path(__file__).parent.parent / "migrations"


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


async def before_003(url: str, schema: str, tmp_path: Path) -> None:
    """The schema as it was before migration 003."""
    old = tmp_path / "old"
    old.mkdir()
    for path in MIGRATIONS.glob("00[12]_*.sql"):
        shutil.copy(path, old / path.name)
    assert await db.migrate(url, schema, old) == [1, 2]


def insert(url: str, schema: str, channel: str, secret: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(f"INSERT INTO {schema}.subscriptions (id, name, event_types, channel, email_to, webhook_url,"
                     " webhook_secret) VALUES (%s, %s, '{x}', %s, %s, %s, %s)",
                     (uuid.uuid4(), f"{channel}-{uuid.uuid4()}", channel,
                      ["a@example.com"] if channel == "EMAIL" else [],
                      "https://example.com/" if channel == "WEBHOOK" else "", secret))


def columns(url: str, schema: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns"
                                           " WHERE table_schema = %s AND table_name = 'subscriptions'",
                                           (schema,)).fetchall()}


async def test_email_subscriptions_migrate_and_the_plain_text_column_goes(postgres: PostgresProcess,
                                                                          tmp_path: Path) -> None:
    await before_003(postgres.url, "n_email", tmp_path)
    insert(postgres.url, "n_email", "EMAIL", "")
    assert await db.migrate(postgres.url, "n_email", MIGRATIONS) == [3]
    found = columns(postgres.url, "n_email")
    assert "webhook_secret" not in found
    assert {"webhook_secret_ciphertext", "webhook_secret_nonce", "webhook_secret_key_id"} <= found
    with psycopg.connect(postgres.url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO n_email.subscriptions (id, name, event_types, channel, webhook_url)"
                     " VALUES (%s, 'no-secret', '{x}', 'WEBHOOK', 'https://example.com/')", (uuid.uuid4(),))


async def test_a_plain_text_secret_stops_the_migration_and_stays_untouched(postgres: PostgresProcess,
                                                                           tmp_path: Path) -> None:
    await before_003(postgres.url, "n_plain", tmp_path)
    insert(postgres.url, "n_plain", "WEBHOOK", "plain-text-secret-0123")
    with pytest.raises(psycopg.errors.RaiseException, match="hold a webhook secret in plain text"):
        await db.migrate(postgres.url, "n_plain", MIGRATIONS)
    assert "webhook_secret" in columns(postgres.url, "n_plain"), "rolled back: nothing dropped"
    with psycopg.connect(postgres.url) as conn:
        conn.execute("DELETE FROM n_plain.subscriptions WHERE webhook_secret <> ''")  # what the hint says
    assert await db.migrate(postgres.url, "n_plain", MIGRATIONS) == [3]
