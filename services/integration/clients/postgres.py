"""PostgreSQL: read-only queries in a READ ONLY transaction with a statement timeout, one connection per call."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import psycopg

from chassis.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    Unavailable,
    Violations,
)
from protomesh.integration.v1 import integration_pb2
from services.integration.clients import sql_screen
from services.integration.clients.base import (
    ClientSpec,
    ExternalClient,
    Operation,
    Steps,
    Target,
    external_error,
    jsonable,
    number,
    scrub,
    text,
    unknown_keys,
)

CONFIG_FIELDS = ("host*", "port", "dbname*", "user*", "sslmode", "max_rows")
ROLE_CHECK = """SELECT rolsuper, pg_has_role(current_user, 'pg_read_server_files', 'MEMBER'),
       pg_has_role(current_user, 'pg_write_server_files', 'MEMBER'),
       pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER')
  FROM pg_roles WHERE rolname = current_user"""
POWERS = ("a superuser", "a member of pg_read_server_files", "a member of pg_write_server_files",
          "a member of pg_execute_server_program")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def validate_config(v: Violations, config: dict[str, Any], credentials: Mapping[str, str]) -> None:
    """host, dbname and user; the password is a credential."""
    unknown_keys(v, config, [f.rstrip("*") for f in CONFIG_FIELDS] + ["resilience", "rate_limit", "cache"], "config")
    host = text(v, config, "host", "config.host", required=True, max_len=255)
    # libpq reads a host starting with / or @ as a Unix socket (the mesh's own server may listen there),
    # and a comma as a list of hosts: one network host only.
    v.check(not host or (host[0] not in "/@" and "," not in host and not any(c.isspace() for c in host)),
            "config.host", "must be one host name or address (Unix sockets and host lists are not accepted)")
    for key in ("dbname", "user"):
        value = text(v, config, key, f"config.{key}", required=True, max_len=63)
        # libpq may expand a dbname holding "=" or a URI into connection settings (another host...).
        v.check("=" not in value and "://" not in value, f"config.{key}", "must be a plain name (no '=' or URI)")
    number(v, config, "port", "config.port", low=1, high=65535, integer=True)
    number(v, config, "max_rows", "config.max_rows", low=1, high=100_000, integer=True)
    mode = text(v, config, "sslmode", "config.sslmode")
    v.check(not mode or mode in SSL_MODES, "config.sslmode", f"one of {', '.join(SSL_MODES)}")


def validate_params(v: Violations, operation: str, params: dict[str, Any], config: dict[str, Any]) -> None:
    """query: one read-only statement and a list of arguments."""
    unknown_keys(v, params, ("sql", "args", "max_rows"), "parameters")
    sql = text(v, params, "sql", "parameters.sql", required=True, max_len=100_000)
    if sql:
        reason = sql_screen.refusal(sql)
        v.check(reason is None, "parameters.sql", reason or "")
    args = params.get("args")
    v.check(args is None or isinstance(args, list), "parameters.args", "must be a list")
    number(v, params, "max_rows", "parameters.max_rows", low=1, high=100_000, integer=True)


def targets(config: dict[str, Any]) -> list[Target]:
    """The server."""
    return [Target("config.host", config["host"], int(config.get("port") or 5432))]


def binding(config: dict[str, Any]) -> dict[str, Any]:
    """The password is for this user on this server's database."""
    return {"config.host": str(config.get("host") or "").lower(), "config.port": int(config.get("port") or 5432),
            "config.dbname": config.get("dbname"), "config.user": config.get("user")}


class PostgresClient(ExternalClient):
    """Runs read-only queries; writes are refused by PostgreSQL itself (READ ONLY transaction)."""

    def _connect_args(self, addresses: list[str], timeout: float) -> dict[str, Any]:
        n = len(addresses)
        args: dict[str, Any] = {
            # hostaddr: libpq connects to exactly the checked addresses; host stays for TLS verification.
            "host": ",".join([self.config["host"]] * n), "hostaddr": ",".join(addresses),
            "port": int(self.config.get("port") or 5432),
            "dbname": self.config["dbname"], "user": self.config["user"],
            "connect_timeout": max(1, int(timeout)), "application_name": "protomesh-integration",
            # Never the replica's own ~/.pgpass: only the integration's credentials are sent.
            "passfile": os.devnull,
        }
        if self.credential("password"):
            args["password"] = self.credential("password")
        if self.config.get("sslmode"):
            args["sslmode"] = self.config["sslmode"]
        return args

    async def _refuse_powerful_role(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """A role that could read the server's files or run programs there would turn read-only queries into
        access to the host: such a connection is refused before any query runs."""
        row = await (await conn.execute(ROLE_CHECK)).fetchone()
        powers = [what for what, has in zip(POWERS, row or (True,) * 4, strict=True) if has]
        if powers:  # a superuser is a member of every role: naming that is enough
            raise InvalidArgument([FieldViolation("config.user", (
                f"{self.config['user']} is {powers[0] if row and row[0] else ' and '.join(powers)}; use a role "
                "without server file or program access (CREATE ROLE ... LOGIN, GRANT SELECT on what it reads)"))])

    async def _run(self, sql: str, args: list[Any], max_rows: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        port = int(self.config.get("port") or 5432)
        try:
            addresses = await self.shared.targets.check(self.config["host"], port, "config.host")
            conn = await psycopg.AsyncConnection.connect(**self._connect_args(addresses, timeout))
        except Exception as exc:
            raise external_error(exc, self.name, self.secrets) from None
        try:
            async with conn:
                await conn.set_read_only(True)
                async with conn.transaction(force_rollback=True):
                    await self._refuse_powerful_role(conn)
                    remaining_ms = max(int((deadline - time.monotonic()) * 1000), 1)
                    await conn.execute(f"SET LOCAL statement_timeout = {remaining_ms}")
                    cur = await conn.execute(sql, args)
                    columns = [c.name for c in cur.description or ()]
                    rows = await cur.fetchmany(max_rows + 1) if cur.description else []
            truncated = len(rows) > max_rows
            return {"columns": columns, "rows": [jsonable(list(r)) for r in rows[:max_rows]],
                    "row_count": min(len(rows), max_rows), "truncated": truncated}
        except psycopg.errors.QueryCanceled:
            raise DeadlineExceeded(f"{self.name}: the query ran out of time and was cancelled") from None
        except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege) as exc:
            raise InvalidArgument([FieldViolation("parameters.sql", scrub(
                f"refused by {self.name}: {exc.diag.message_primary}", self.secrets))]) from None
        except psycopg.OperationalError as exc:
            raise Unavailable(f"{self.name}: {scrub(str(exc).strip(), self.secrets)}") from None
        except psycopg.Error as exc:  # the query's own mistake: syntax, unknown table, bad argument...
            raise InvalidArgument([FieldViolation("parameters.sql", scrub(
                f"{self.name}: {exc.diag.message_primary or str(exc).strip()}", self.secrets))]) from None

    async def invoke(self, operation: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        max_rows = int(params.get("max_rows") or self.config.get("max_rows") or 1000)
        return await self._run(params["sql"], list(params.get("args") or []), max_rows, timeout)

    async def health(self, timeout: float) -> str:
        await self._run("SELECT 1", [], 1, timeout)
        return "SELECT 1 answered"

    async def test(self, steps: Steps, timeout: float) -> None:
        deadline = time.monotonic() + timeout

        async def version() -> str:
            result = await self._run("SELECT version()", [], 1, deadline - time.monotonic())
            return str(result["rows"][0][0])[:120]

        async def read_only() -> str:
            try:
                await self._run("CREATE TEMP TABLE protomesh_probe (x int)", [], 1, deadline - time.monotonic())
            except InvalidArgument:
                return "writes are refused (READ ONLY transaction)"
            raise FailedPrecondition("the transaction was not read-only")

        await steps.run("connect and authenticate", version)
        await steps.run("read-only transaction", read_only)


SPEC = ClientSpec(
    client_type="postgres",
    kind=integration_pb2.INTEGRATION_KIND_POSTGRES,
    description="PostgreSQL databases: read-only queries with arguments, a row limit and a statement timeout",
    operations=(Operation("query", cacheable=True),),
    config_fields=CONFIG_FIELDS,
    credential_fields=("password",),
    validate_config=validate_config,
    validate_params=validate_params,
    factory=PostgresClient,
    targets=targets,
    binding=binding,
)
