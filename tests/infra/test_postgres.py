"""PostgreSQL from the pgserver wheel as our own child: queries, restart on the same data, per-test databases."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psycopg
import pytest

from chassis.tooling.infra.postgres import PostgresProcess
from chassis.tooling.infra.process import PortInUseError


@pytest.fixture
def postgres(pg_tmp: Path):
    server = PostgresProcess(pg_tmp / "pgdata", durable=False)
    server.start()
    yield server
    server.stop()


def test_postgres_accepts_queries_and_keeps_data_across_a_restart(postgres: PostgresProcess) -> None:
    first_pid, port = postgres.pid, postgres.port
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO kept VALUES (1, 'survives a restart')")
        assert conn.execute("SHOW max_connections").fetchone() == ("200",)

    assert postgres.stop() == 0
    assert not postgres.is_running()
    postgres.start()

    assert postgres.pid != first_pid
    assert postgres.port == port
    with psycopg.connect(postgres.url) as conn:
        assert conn.execute("SELECT note FROM kept WHERE id = 1").fetchone() == ("survives a restart",)


def test_postgres_recovers_after_being_killed(postgres: PostgresProcess) -> None:
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE committed (id int)")
        conn.execute("INSERT INTO committed VALUES (7)")
    postgres.kill()
    postgres.start()
    with psycopg.connect(postgres.url) as conn:
        assert conn.execute("SELECT id FROM committed").fetchone() == (7,)


def test_create_database_gives_an_isolated_database_and_is_idempotent(postgres: PostgresProcess) -> None:
    url = postgres.create_database("module_one")
    assert postgres.create_database("module_one") == url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE only_here (id int)")
        assert conn.execute("SELECT current_database()").fetchone() == ("module_one",)
    with psycopg.connect(postgres.url) as conn:
        assert conn.execute("SELECT to_regclass('only_here')").fetchone() == (None,)


def test_durable_is_the_default_and_keeps_fsync_on(tmp_path: Path) -> None:
    server = PostgresProcess(tmp_path / "durable")
    assert server.durable
    assert "fsync=off" not in server.argv


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs the pgserver system user")
def test_as_root_postgres_runs_as_the_pgserver_system_user(postgres: PostgresProcess) -> None:
    assert postgres.pid is not None
    assert os.stat(f"/proc/{postgres.pid}").st_uid != 0
    assert (postgres.data_dir).stat().st_uid != 0


def test_taken_port_fails_before_initdb_with_advice(pg_tmp: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        server = PostgresProcess(pg_tmp / "pgdata", port=holder.getsockname()[1], durable=False)
        with pytest.raises(PortInUseError, match="is taken by another process"):
            server.start()
    assert not (pg_tmp / "pgdata").exists()
