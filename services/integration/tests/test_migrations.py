"""Migration 002 against a real PostgreSQL: existing integrations move to the bootstrap organization, also under
a service's own role, which may not look into the identity schema; names become unique per organization."""

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


def insert(url: str, schema: str, name: str, organization: str | None = None) -> None:
    columns = ["id", "name", "kind"] + (["organization_id"] if organization else [])
    values = [uuid.uuid4(), name, "local_storage"] + ([organization] if organization else [])
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("INSERT INTO {}.integrations ({}) VALUES ({})").format(
            sql.Identifier(schema), sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(values))), values)


def organizations(url: str, schema: str) -> set[str]:
    with psycopg.connect(url) as conn:
        query = sql.SQL("SELECT organization_id FROM {}.integrations").format(sql.Identifier(schema))
        return {r[0] for r in conn.execute(query).fetchall()}


async def test_existing_integrations_move_to_the_bootstrap_organization(postgres: PostgresProcess,
                                                                        tmp_path: Path) -> None:
    until_001 = migrations_until(tmp_path, 1)
    # No identity schema in this database: the bootstrap organization's fixed id.
    assert await db.migrate(postgres.url, "i_alone", until_001) == [1]
    insert(postgres.url, "i_alone", "stripe")
    assert await db.migrate(postgres.url, "i_alone", MIGRATIONS) == [2]
    assert organizations(postgres.url, "i_alone") == {str(BOOTSTRAP_ORGANIZATION_ID)}

    # The identity schema in the same database and readable: the bootstrap organization's id.
    local = uuid.uuid4()
    with psycopg.connect(postgres.url) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS identity")
        conn.execute("CREATE TABLE IF NOT EXISTS identity.organizations (id uuid PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO identity.organizations VALUES (%s, 'local'), (%s, 'other')", (local, uuid.uuid4()))
    assert await db.migrate(postgres.url, "i_shared", until_001) == [1]
    insert(postgres.url, "i_shared", "stripe")
    assert await db.migrate(postgres.url, "i_shared", MIGRATIONS) == [2]
    assert organizations(postgres.url, "i_shared") == {str(local)}

    # As in the mesh: the service's own role, which may not use the identity schema (a bare to_regclass()
    # would fail the migration with "permission denied"), falls back to the fixed id.
    [url] = provision(postgres.url, {"i_role": "i-role-password"}).values()
    assert await db.migrate(url, "i_role", until_001) == [1]
    insert(url, "i_role", "stripe")
    assert await db.migrate(url, "i_role", MIGRATIONS) == [2]
    assert organizations(url, "i_role") == {str(BOOTSTRAP_ORGANIZATION_ID)}

    # Afterwards a name is unique within an organization only, and every row has an organization.
    insert(url, "i_role", "Stripe", organization="org-b")
    with pytest.raises(psycopg.errors.UniqueViolation):
        insert(url, "i_role", "STRIPE", organization=str(BOOTSTRAP_ORGANIZATION_ID))
    with pytest.raises(psycopg.errors.NotNullViolation):
        insert(url, "i_role", "no-organization")
