"""PostgreSQL roles and schemas of the mesh: one login role per service that owns only its own schema.

The local mesh runs this as the superuser on every start; `protomesh bootstrap-db` runs it against
a DATABASE_URL deployment's server with an admin URL. It is idempotent: roles and schemas that
exist are brought to the wanted state (password, attributes, ownership of what is in the schema).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path

import psycopg
from psycopg import sql

from chassis.tooling.credentials import read_or_create_secret, write_private

SERVICE_GROUP = "protomesh_services"
"""NOLOGIN group every service role belongs to; the schema guard applies to its members."""

_ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT"

# chassis.db.migrate runs `CREATE SCHEMA IF NOT EXISTS <own schema>`, and PostgreSQL checks the
# database's CREATE privilege before it looks whether the schema exists; so service roles need that
# privilege, and this guard takes back what else it would allow: creating any other schema.
_GUARD_FUNCTION = sql.SQL("""
CREATE OR REPLACE FUNCTION public.protomesh_schema_guard() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
    created record;
BEGIN
    IF NOT pg_has_role(current_user, {group}, 'MEMBER')
       OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN;
    END IF;
    FOR created IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
        IF created.object_identity IS DISTINCT FROM quote_ident(current_user) THEN
            RAISE EXCEPTION 'role % may create no schema but its own (%)', current_user, created.object_identity
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END LOOP;
END $$
""")


def service_url(admin_url: str, role: str, password: str) -> str:
    """The admin URL with the service's role and password instead of the admin's."""
    parts = urllib.parse.urlsplit(admin_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{urllib.parse.quote(role, safe='')}:{urllib.parse.quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def provision(admin_url: str, passwords: Mapping[str, str]) -> dict[str, str]:
    """Create or update one role and schema per service (name -> password); return each service's URL."""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn, conn.transaction():
        database = sql.Identifier(str(_scalar(conn, "SELECT current_database()")))
        # Nobody but the roles granted below may connect or make temporary tables, and nobody may
        # create in the public schema (PostgreSQL 15+ already says so; older servers did not).
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        if not _scalar(conn, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (SERVICE_GROUP,)):
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(SERVICE_GROUP)))
        conn.execute(_GUARD_FUNCTION.format(group=sql.Literal(SERVICE_GROUP)))
        conn.execute("REVOKE ALL ON FUNCTION public.protomesh_schema_guard() FROM PUBLIC")
        if not _scalar(conn, "SELECT count(*) FROM pg_event_trigger WHERE evtname = 'protomesh_schema_guard'"):
            conn.execute("CREATE EVENT TRIGGER protomesh_schema_guard ON ddl_command_end"
                         " WHEN TAG IN ('CREATE SCHEMA') EXECUTE FUNCTION public.protomesh_schema_guard()")
        for service, password in sorted(passwords.items()):
            _provision_service(conn, database, service, password)
    return {service: service_url(admin_url, service, password) for service, password in passwords.items()}


def _provision_service(conn: psycopg.Connection, database: sql.Identifier, service: str, password: str) -> None:
    role = sql.Identifier(service)
    exists = _scalar(conn, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (service,))
    verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
    conn.execute(sql.SQL("{} {} " + _ROLE_ATTRIBUTES + " PASSWORD {}").format(verb, role, sql.Literal(password)))
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(SERVICE_GROUP), role))
    conn.execute(sql.SQL("GRANT CONNECT, CREATE ON DATABASE {} TO {}").format(database, role))
    if _scalar(conn, "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (service,)):
        conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(role, role))
        _hand_over_contents(conn, service)
    else:
        conn.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(role, role))


def _hand_over_contents(conn: psycopg.Connection, schema: str) -> None:
    """Make the role own everything already in its schema (created by the superuser before roles existed)."""
    role = sql.Identifier(schema)
    # Tables first: they take their serial/identity sequences along, which cannot be moved alone.
    queries = [
        ("TABLE", "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relnamespace = %s::regnamespace"
                  " AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relowner <> %s::regrole"),
        ("SEQUENCE", "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relnamespace = %s::regnamespace"
                     " AND c.relkind = 'S' AND c.relowner <> %s::regrole AND NOT EXISTS (SELECT 1 FROM pg_depend d"
                     " WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))"),
        ("TYPE", "SELECT t.oid::regtype::text FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid"
                 " WHERE t.typnamespace = %s::regnamespace AND t.typowner <> %s::regrole"
                 " AND t.typelem = 0 AND t.typtype <> 'm'"
                 " AND (t.typrelid = 0 OR c.relkind = 'c')"),
        ("ROUTINE", "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = %s::regnamespace"
                    " AND p.proowner <> %s::regrole AND p.prokind <> 'a'"),
    ]
    for kind, query in queries:
        for (name,) in conn.execute(query, (schema, schema)).fetchall():
            # name is already quoted and schema-qualified by the reg* output function.
            conn.execute(sql.SQL("ALTER {} {} OWNER TO {}").format(sql.SQL(kind), sql.SQL(name), role))


def _scalar(conn: psycopg.Connection, query: str, params: tuple[object, ...] = ()) -> object:
    row = conn.execute(query, params).fetchone()
    assert row is not None  # noqa: S101 narrows a type for mypy, not a check of input: under -O only the error raised would differ
    return row[0]


def bootstrap_database(admin_url: str, services: Sequence[str], secrets_dir: Path) -> dict[str, str]:
    """`protomesh bootstrap-db`: provision every service's role with a password kept in secrets_dir
    (generated on the first run, reused after), and record each service's URL there too (0600)."""
    passwords = {name: read_or_create_secret(secrets_dir / f"postgres-{name}") for name in services}
    urls = provision(admin_url, passwords)
    for name, url in urls.items():
        write_private(secrets_dir / f"database-url-{name}", url + "\n")
    return urls
