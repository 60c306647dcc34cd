"""Migrations against a real PostgreSQL: 003 moves webhook secrets to sealed columns (a plain-text one stops it);
004 moves existing subscriptions and notifications to the bootstrap organization, also under a service's own
role, which may not look into the identity schema."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from chassis import db
from chassis.tooling.bootstrap import provision
from chassis.tooling.infra.postgres import PostgresProcess
from services.identity.bootstrap import ORGANIZATION_ID as BOOTSTRAP_ORGANIZATION_ID

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


def migrations_until(tmp_path: Path, last: int) -> Path:
    """A folder holding the migrations up to version `last`: the schema as that version left it."""
    folder = tmp_path / f"until-{last:03d}"
    folder.mkdir()
    for path in MIGRATIONS.glob("*.sql"):
        if int(path.name[:3]) <= last:
            shutil.copy(path, folder / path.name)
    return folder


async def before_003(url: str, schema: str, tmp_path: Path) -> None:
    """The schema as it was before migration 003."""
    assert await db.migrate(url, schema, migrations_until(tmp_path, 2)) == [1, 2]


def insert(url: str, schema: str, channel: str, secret: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("INSERT INTO {}.subscriptions (id, name, event_types, channel, email_to, webhook_url,"
                             " webhook_secret) VALUES (%s, %s, '{{x}}', %s, %s, %s, %s)"
                             ).format(sql.Identifier(schema)),
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
    assert await db.migrate(postgres.url, "n_email", migrations_until(tmp_path, 3)) == [3]
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
    until_003 = migrations_until(tmp_path, 3)
    with pytest.raises(psycopg.errors.RaiseException, match="hold a webhook secret in plain text"):
        await db.migrate(postgres.url, "n_plain", until_003)
    assert "webhook_secret" in columns(postgres.url, "n_plain"), "rolled back: nothing dropped"
    with psycopg.connect(postgres.url) as conn:
        conn.execute("DELETE FROM n_plain.subscriptions WHERE webhook_secret <> ''")  # what the hint says
    assert await db.migrate(postgres.url, "n_plain", until_003) == [3]


def organizations_after_004(url: str, schema: str) -> set[str]:
    """The organizations of the subscriptions and notifications an upgrade to 004 moved."""
    with psycopg.connect(url) as conn:
        query = sql.SQL("SELECT organization_id FROM {0}.subscriptions UNION"
                        " SELECT organization_id FROM {0}.notifications").format(sql.Identifier(schema))
        return {r[0] for r in conn.execute(query).fetchall()}


def insert_before_004(url: str, schema: str) -> None:
    """An email subscription and a notification of it, as the schema before 004 holds them."""
    sid = uuid.uuid4()
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("INSERT INTO {}.subscriptions (id, name, event_types, channel, email_to)"
                             " VALUES (%s, 'ops', '{{x}}', 'EMAIL', '{{a@example.com}}')"
                             ).format(sql.Identifier(schema)),
                     (sid,))
        conn.execute(sql.SQL("INSERT INTO {}.notifications (id, subscription_id, subscription_name, event_id,"
                             " event_type, event_time, max_attempts) VALUES (%s, %s, 'ops', 'e1', 'x', now(), 5)"
                             ).format(sql.Identifier(schema)), (uuid.uuid4(), sid))


async def test_existing_rows_move_to_the_bootstrap_organization(postgres: PostgresProcess, tmp_path: Path) -> None:
    until_003 = migrations_until(tmp_path, 3)
    # No identity schema in this database: the bootstrap organization's fixed id.
    assert await db.migrate(postgres.url, "n_org_alone", until_003) == [1, 2, 3]
    insert_before_004(postgres.url, "n_org_alone")
    assert await db.migrate(postgres.url, "n_org_alone", MIGRATIONS) == [4]
    assert organizations_after_004(postgres.url, "n_org_alone") == {str(BOOTSTRAP_ORGANIZATION_ID)}

    # The identity schema in the same database and readable: the bootstrap organization's id.
    local = uuid.uuid4()
    with psycopg.connect(postgres.url) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS identity")
        conn.execute("CREATE TABLE IF NOT EXISTS identity.organizations (id uuid PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO identity.organizations VALUES (%s, 'local'), (%s, 'other')", (local, uuid.uuid4()))
    assert await db.migrate(postgres.url, "n_org_shared", until_003) == [1, 2, 3]
    insert_before_004(postgres.url, "n_org_shared")
    assert await db.migrate(postgres.url, "n_org_shared", MIGRATIONS) == [4]
    assert organizations_after_004(postgres.url, "n_org_shared") == {str(local)}

    # As in the mesh: the service's own role, which may not use the identity schema (a bare to_regclass()
    # would fail the migration with "permission denied"), falls back to the fixed id.
    [url] = provision(postgres.url, {"n_org_role": "n-org-role-password"}).values()
    assert await db.migrate(url, "n_org_role", until_003) == [1, 2, 3]
    insert_before_004(url, "n_org_role")
    assert await db.migrate(url, "n_org_role", MIGRATIONS) == [4]
    assert organizations_after_004(url, "n_org_role") == {str(BOOTSTRAP_ORGANIZATION_ID)}
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.NotNullViolation):
        conn.execute("INSERT INTO n_org_role.subscriptions (id, name, event_types, channel, email_to)"
                     " VALUES (%s, 'no-organization', '{x}', 'EMAIL', '{a@example.com}')", (uuid.uuid4(),))
