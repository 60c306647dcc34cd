"""PostgreSQL: read-only queries in a READ ONLY transaction with a statement timeout, one connection per call."""

from __future__ import annotations

import re
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
from services.integration.clients.base import (
    ClientSpec,
    ExternalClient,
    Operation,
    Steps,
    external_error,
    jsonable,
    number,
    scrub,
    text,
    unknown_keys,
)

CONFIG_FIELDS = ("host*", "port", "dbname*", "user*", "sslmode", "max_rows")
READ_ONLY_START = re.compile(r"^\s*(SELECT|WITH|VALUES|TABLE|SHOW|EXPLAIN)\b", re.IGNORECASE)
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def validate_config(v: Violations, config: dict[str, Any], credentials: Mapping[str, str]) -> None:
    """host, dbname and user; the password is a credential."""
    unknown_keys(v, config, [f.rstrip("*") for f in CONFIG_FIELDS] + ["resilience", "rate_limit", "cache"], "config")
    text(v, config, "host", "config.host", required=True, max_len=255)
    text(v, config, "dbname", "config.dbname", required=True, max_len=63)
    text(v, config, "user", "config.user", required=True, max_len=63)
    number(v, config, "port", "config.port", low=1, high=65535, integer=True)
    number(v, config, "max_rows", "config.max_rows", low=1, high=100_000, integer=True)
    mode = text(v, config, "sslmode", "config.sslmode")
    v.check(not mode or mode in SSL_MODES, "config.sslmode", f"one of {', '.join(SSL_MODES)}")


def validate_params(v: Violations, operation: str, params: dict[str, Any], config: dict[str, Any]) -> None:
    """query: one read-only statement and a list of arguments."""
    unknown_keys(v, params, ("sql", "args", "max_rows"), "parameters")
    sql = text(v, params, "sql", "parameters.sql", required=True, max_len=100_000)
    if sql:
        v.check(bool(READ_ONLY_START.match(sql)), "parameters.sql",
                "must be one read-only statement (SELECT, WITH, VALUES, TABLE, SHOW or EXPLAIN)")
    args = params.get("args")
    v.check(args is None or isinstance(args, list), "parameters.args", "must be a list")
    number(v, params, "max_rows", "parameters.max_rows", low=1, high=100_000, integer=True)


class PostgresClient(ExternalClient):
    """Runs read-only queries; writes are refused by PostgreSQL itself (READ ONLY transaction)."""

    def _connect_args(self, timeout: float) -> dict[str, Any]:
        args: dict[str, Any] = {
            "host": self.config["host"], "port": int(self.config.get("port") or 5432),
            "dbname": self.config["dbname"], "user": self.config["user"],
            "connect_timeout": max(1, int(timeout)), "application_name": "protomesh-integration",
        }
        if self.credential("password"):
            args["password"] = self.credential("password")
        if self.config.get("sslmode"):
            args["sslmode"] = self.config["sslmode"]
        return args

    async def _run(self, sql: str, args: list[Any], max_rows: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        try:
            conn = await psycopg.AsyncConnection.connect(**self._connect_args(timeout))
        except Exception as exc:
            raise external_error(exc, self.name, self.secrets) from None
        try:
            async with conn:
                await conn.set_read_only(True)
                async with conn.transaction(force_rollback=True):
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
)
