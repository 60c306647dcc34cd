"""Least privilege underneath the local mesh: PostgreSQL and NATS tried with other services' credentials
and with none, the services' own work never refused, and the state folder private."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import psycopg
import pytest

from chassis.events import outbox
from chassis.events.streams import inbox_prefix_of
from chassis.tooling import bootstrap, cli
from chassis.tooling.credentials import CREDENTIALS_DIR
from chassis.tooling.infra.postgres import PostgresProcess
from chassis.tooling.mesh_testing import RestClient, eventually, running_mesh
from chassis.tooling.supervisor import STATE_FILE, Mesh

FINAL = {"EXECUTION_STATE_SUCCEEDED", "EXECUTION_STATE_FAILED", "EXECUTION_STATE_STOPPED"}


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    with running_mesh(replicas=1) as m:
        yield m


def without_password(url: str, user: str | None = None) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user or parts.username}@{parts.hostname}:{parts.port}"))


# --- PostgreSQL -----------------------------------------------------------------------------------


def test_postgres_refuses_connections_without_a_password(mesh: Mesh) -> None:
    for user in ("postgres", "agent"):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(without_password(mesh.database_url, user), connect_timeout=3)


def test_a_service_password_opens_only_its_own_role(mesh: Mesh) -> None:
    agent = urllib.parse.urlsplit(mesh.service_database_urls["agent"])
    context_password = urllib.parse.urlsplit(mesh.service_database_urls["context"]).password
    wrong = urllib.parse.urlunsplit(agent._replace(netloc=f"agent:{context_password}@{agent.hostname}:{agent.port}"))
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=3)


def test_a_service_role_reaches_its_own_schema_only(mesh: Mesh) -> None:
    with psycopg.connect(mesh.service_database_urls["agent"], autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM agent.outbox")
        conn.execute("CREATE TABLE agent.least_privilege_probe (id int)")
        conn.execute("DROP TABLE agent.least_privilege_probe")
        refused = ["SELECT * FROM context.outbox", "SELECT * FROM notification.processed_events",
                   "INSERT INTO context.outbox (event_id, event_type, nats_subject, envelope)"
                   " VALUES ('x', 'x', 'x', '')",
                   "CREATE TABLE public.probe (id int)", "CREATE SCHEMA probe", "CREATE SCHEMA context_two",
                   "CREATE TEMP TABLE probe (id int)", "SELECT pg_read_file('/etc/passwd')",
                   "CREATE ROLE probe", "CREATE DATABASE probe", "ALTER SCHEMA context OWNER TO agent"]
        for statement in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_service_roles_have_no_special_powers_and_own_their_tables(mesh: Mesh) -> None:
    with psycopg.connect(mesh.database_url, autocommit=True) as conn:
        for service in mesh.catalog.names:
            row = conn.execute(
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,"
                " pg_has_role(rolname, 'pg_read_server_files', 'MEMBER'),"
                " pg_has_role(rolname, 'pg_write_server_files', 'MEMBER'),"
                " pg_has_role(rolname, 'pg_execute_server_program', 'MEMBER'),"
                " pg_has_role(rolname, 'pg_read_all_data', 'MEMBER')"
                " FROM pg_roles WHERE rolname = %s", (service,)).fetchone()
            assert row == (False,) * 9, service
            owners = conn.execute(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = %s", (service,)).fetchall()
            assert owners in ([(service,)], []), (service, owners)
            if mesh.catalog.service(service).name in ("agent", "context", "notification"):
                tables = {r[0] for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = %s", (service,)).fetchall()}
                assert {"outbox", "processed_events"} <= tables, service


def test_a_cluster_from_the_trust_days_asks_for_passwords_after_its_next_start() -> None:
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"protomesh-test-trust-{os.getpid()}"
    folder.mkdir(mode=0o755)
    try:
        server = PostgresProcess(folder / "data", durable=False)
        server.start()
        server.stop()
        hba = folder / "data" / "pg_hba.conf"
        hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))  # as an earlier version wrote it
        (folder / "data.superuser-password").unlink()  # ... which kept no password
        server = PostgresProcess(folder / "data", durable=False, port=server.port)
        server.start()
        try:
            with pytest.raises(psycopg.OperationalError, match="password"):
                psycopg.connect(without_password(server.url), connect_timeout=3)
            with psycopg.connect(server.url) as conn:
                conn.execute("CREATE SCHEMA billing")  # made by the superuser before roles existed
                conn.execute("CREATE TABLE billing.invoices (id bigserial PRIMARY KEY)")
                conn.execute("CREATE TYPE billing.state AS ENUM ('open', 'paid')")
                conn.commit()
            url = bootstrap.provision(server.url, {"billing": "s3cret-billing"})["billing"]
            assert url == server.url_for("postgres", "billing", "s3cret-billing")
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("INSERT INTO billing.invoices DEFAULT VALUES")
                conn.execute("ALTER TYPE billing.state ADD VALUE 'void'")  # only an owner may
        finally:
            server.stop()
        assert "trust" not in "".join(line for line in hba.read_text().splitlines() if not line.startswith("#"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_bootstrap_db_gives_a_database_url_deployment_the_same_roles(postgres: PostgresProcess, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    admin_url = postgres.create_database("bootstrap_cli")
    secrets = tmp_path / "secrets"
    argv = ["bootstrap-db", "--admin-url", admin_url, "--services", "agent,context", "--secrets-dir", str(secrets)]
    assert cli.main(argv) == 0
    first = (secrets / "database-url-agent").read_text().strip()
    assert cli.main([*argv, "--show"]) == 0  # again: nothing changes, the passwords are kept
    assert (secrets / "database-url-agent").read_text().strip() == first
    assert f"agent\t{first}" in capsys.readouterr().out
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in secrets.iterdir()} == {0o600}
    asyncio.run(outbox.migrate(first, "agent"))  # the chassis' migrations run as the service's role
    with psycopg.connect(first, autocommit=True) as conn:
        assert conn.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'agent'").fetchone() == (
            "agent",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM context.outbox")
    assert cli.main(["bootstrap-db", "--admin-url", admin_url, "--services", "nosuch"]) == 2


# --- NATS -----------------------------------------------------------------------------------------


def nats_address(mesh: Mesh) -> str:
    parts = urllib.parse.urlsplit(mesh.nats_url)
    return f"nats://{parts.hostname}:{parts.port}"


async def refused(url: str) -> None:
    with pytest.raises((nats.errors.Error, OSError)):
        nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False)
        await nc.close()


async def connect_collecting(url: str) -> tuple[nats.NATS, list[str]]:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    # The service's own inboxes, as its replicas use (chassis.events.streams): nothing else is readable.
    return await nats.connect(url, error_cb=on_error, max_reconnect_attempts=0,
                              inbox_prefix=inbox_prefix_of(url)), errors


async def violation_of(url: str, action: str, subject: str) -> list[str]:
    """Errors the server reports for one publish or subscribe (an async -ERR, so collected then flushed)."""
    nc, errors = await connect_collecting(url)
    try:
        if action == "publish":
            await nc.publish(subject, b"{}")
        else:
            await nc.subscribe(subject)
        await nc.flush(timeout=2)
        await asyncio.sleep(0.3)
    finally:
        await nc.close()
    return errors


def test_nats_refuses_clients_without_credentials_or_with_another_services_password(mesh: Mesh) -> None:
    address = urllib.parse.urlsplit(nats_address(mesh))
    context_password = urllib.parse.urlsplit(mesh.service_nats_urls["context"]).password

    async def check() -> None:
        await refused(nats_address(mesh))
        await refused(f"nats://agent:{context_password}@{address.hostname}:{address.port}")
        await refused(f"nats://agent@{address.hostname}:{address.port}")

    asyncio.run(check())


def test_a_service_publishes_its_own_events_only_and_reads_no_other_stream(mesh: Mesh) -> None:
    agent = mesh.service_nats_urls["agent"]

    async def check() -> None:
        nc, errors = await connect_collecting(agent)
        try:
            # Its own subject is stored (the stream acknowledges); a name no consumer filters on.
            ack = await nc.jetstream().publish("events.protomesh.agent.v1.least_privilege_probe", b"probe", timeout=5)
            assert ack.stream == "EVENTS_PROTOMESH_AGENT_V1" and not errors
            # Another service's stream is out of reach through the JetStream API too.
            with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
                await nc.jetstream(timeout=1).stream_info("EVENTS_PROTOMESH_CONTEXT_V1")
        finally:
            await nc.close()
        for action, subject in [("publish", "events.protomesh.context.v1.context_created"),
                                ("publish", "tasks.notification.deliver"),
                                ("publish", "$KV.protomesh_registry.context.context-1"),
                                ("publish", "deadletter.notification-events.x"),
                                ("publish", "$JS.API.CONSUMER.MSG.NEXT.TASKS.TASK_notification_deliver"),
                                ("subscribe", "events.protomesh.context.v1.>"),
                                ("subscribe", "events.>"),
                                ("subscribe", "tasks.>"),
                                ("subscribe", "_INBOX.>"),
                                ("subscribe", "_INBOX.context.>")]:
            errors = await violation_of(agent, action, subject)
            assert any("permissions violation" in e.lower() for e in errors), (action, subject, errors)
        # notification reads every stream but publishes no one's events
        errors = await violation_of(mesh.service_nats_urls["notification"], "publish",
                                    "events.protomesh.agent.v1.agent_registered")
        assert any("permissions violation" in e.lower() for e in errors), errors

    asyncio.run(check())


def test_the_services_own_work_is_never_refused(mesh: Mesh) -> None:
    rest = RestClient.for_mesh(mesh)
    agent = rest.post("/v1/agents", {"name": "least-privilege", "type": "calculator"}).body["agent"]["agent_id"]
    run = rest.post(f"/v1/agents/{agent}/execute", {"input": {"expression": "6*7"}, "wait": True}).body
    assert run["execution"]["state"] == "EXECUTION_STATE_SUCCEEDED", run

    def settled() -> bool:
        # notification's consumer has read the agent's events by now (registered, started, succeeded)
        async def pending() -> int:
            nc = await nats.connect(mesh.nats_url)
            try:
                info = await nc.jetstream().consumer_info("EVENTS_PROTOMESH_AGENT_V1", "notification-events")
                return info.num_pending + info.num_ack_pending
            finally:
                await nc.close()
        return asyncio.run(pending()) == 0

    eventually(settled, timeout=20, what="notification consumed the agent's events")
    log = (mesh.log_dir / "nats.log").read_text()
    service_users = {f'"{name}"' for name in mesh.catalog.names}
    violations = [line for line in log.splitlines() if "Violation" in line and any(u in line for u in service_users)
                  and "least_privilege" not in line]
    # The probes of the test above are made as "agent" too; they name subjects this test never uses.
    probes = ("context_created", "tasks.notification", "protomesh_registry.context", "deadletter.notification",
              "TASK_notification_deliver", "events.protomesh.context.v1.>", "events.>", "tasks.>",
              "EVENTS_PROTOMESH_CONTEXT_V1", "agent_registered")
    assert [v for v in violations if not any(p in v for p in probes)] == []


# --- files ----------------------------------------------------------------------------------------


def private_folder(path: Path) -> bool:
    mode = stat.S_IMODE(path.stat().st_mode)
    # As root, PostgreSQL runs as its own system user, whose group alone may pass through (x) to pgdata.
    return mode == 0o700 or (os.geteuid() == 0 and mode == 0o710)


def test_state_files_are_the_owners_alone(mesh: Mesh) -> None:
    state = mesh.state_dir
    assert private_folder(state)
    for folder in (state / CREDENTIALS_DIR, mesh.log_dir, state / "traces"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    files = [state / STATE_FILE, state / "nats" / "nats-server.conf",
             *(state / CREDENTIALS_DIR).iterdir(), *mesh.log_dir.iterdir(), *(state / "traces").iterdir()]
    assert len(files) > 6
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
