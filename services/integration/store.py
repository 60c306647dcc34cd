"""The integration service's PostgreSQL access: every query it makes, in one place.

Credentials only pass through here sealed (ciphertext, nonce, key id); this module never sees
them in clear.

Every query is the caller's organization's (chassis.authz.organization_scope): reads, lists, counts,
updates, deletes and probes put `organization_id = <the caller's>` in their WHERE clause, so another
organization's integration is NOT_FOUND by id and in no list; a create stamps the caller's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from chassis import idempotency
from chassis.authz import organization_scope as scope
from chassis.crypto import Sealed
from chassis.db import contains_pattern
from chassis.errors import AlreadyExists, NotFound
from chassis.resources import Page, PageRequest, check_version, found
from chassis.resources.keyset import fetch_page
from services.integration.rows import IntegrationRow

_COLUMNS = sql.SQL("""
    id, organization_id, name, kind, description, config, credentials_ciphertext, credentials_nonce, credentials_key_id,
    credential_keys, enabled, labels, probe_kind, probe_ok, probe_detail, probe_latency_ms, probed_at,
    version, created_at, updated_at
""")


@dataclass(frozen=True)
class IntegrationFilter:
    """Filters of ListIntegrations."""

    kind: str = ""
    name_contains: str = ""
    enabled: bool | None = None
    label_key: str = ""
    label_value: str | None = None

    def where(self) -> tuple[sql.Composable, list[Any]]:
        """SQL conditions (joined by AND) and their parameters."""
        # The caller's organization first: a filter never reaches past it.
        tenancy, params = scope()
        clauses: list[str] = []
        if self.kind:
            clauses.append("kind = %s")
            params.append(self.kind)
        if self.name_contains:
            clauses.append("name ILIKE %s")
            params.append(contains_pattern(self.name_contains))
        if self.enabled is not None:
            clauses.append("enabled = %s")
            params.append(self.enabled)
        if self.label_key and self.label_value is None:
            clauses.append("labels ? %s")
            params.append(self.label_key)
        elif self.label_key:
            clauses.append("labels @> %s")
            params.append(Jsonb({self.label_key: self.label_value}))
        return sql.SQL(" AND ").join([tenancy, *map(sql.SQL, clauses)]), params


def _sealed_columns(sealed: Sealed | None) -> list[Any]:
    return [None, None, None] if sealed is None else [sealed.ciphertext, sealed.nonce, sealed.key_id]


def _duplicate(name: str) -> AlreadyExists:
    return AlreadyExists(f"an integration named {name!r} already exists (names are unique, ignoring case)",
                         metadata={"field": "name"})


class IntegrationStore:
    """Queries over the integration schema."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def create(self, integration_id: uuid.UUID, *, organization: str, name: str, kind: str,
                     description: str, config: dict[str, Any], sealed: Sealed | None, credential_keys: list[str],
                     enabled: bool, labels: dict[str, str]) -> IntegrationRow:
        """Insert an integration of `organization` (chassis.authz.creating_organization); ALREADY_EXISTS for a name
        taken in that organization."""
        try:
            # A transaction, so a keyed request's key commits with the integration (chassis.idempotency).
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                await idempotency.claim(conn)
                await cur.execute(
                    sql.SQL("INSERT INTO integrations (id, organization_id, name, kind, description, config,"
                            " credentials_ciphertext, credentials_nonce, credentials_key_id, credential_keys, enabled,"
                            " labels) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {}"
                            ).format(_COLUMNS),
                    [integration_id, organization, name, kind, description, Jsonb(config), *_sealed_columns(sealed),
                     credential_keys, enabled, Jsonb(labels)],
                )
                row = await cur.fetchone()
        except psycopg.errors.UniqueViolation:
            raise _duplicate(name) from None
        return IntegrationRow(**found(row, "integration", integration_id))

    async def get(self, integration_id: uuid.UUID) -> IntegrationRow:
        """One integration of the caller's organization; NOT_FOUND otherwise (another organization's too)."""
        tenancy, params = scope()
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql.SQL("SELECT {} FROM integrations WHERE id = %s AND {}").format(_COLUMNS, tenancy),
                              [integration_id, *params])
            row = found(await cur.fetchone(), "integration", integration_id)
        return IntegrationRow(**row)

    async def list_page(self, flt: IntegrationFilter, page: PageRequest) -> Page[IntegrationRow]:
        """One page of integrations in the page's keyset order, with the count of all that match."""
        where, params = flt.where()
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = await fetch_page(cur, page, select=_COLUMNS, from_="integrations", where=where, params=params)
        return rows.map(lambda r: IntegrationRow(**r))

    async def enabled(self, kind: str = "") -> list[IntegrationRow]:
        """Every enabled integration (of a kind) of the caller's organization, oldest first."""
        tenancy, params = scope()
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql.SQL("SELECT {} FROM integrations WHERE enabled AND (%s = '' OR kind = %s) AND {}"
                                      " ORDER BY created_at, id").format(_COLUMNS, tenancy), [kind, kind, *params])
            return [IntegrationRow(**r) for r in await cur.fetchall()]

    async def update(self, integration_id: uuid.UUID, expected_version: int, changes: dict[str, Any],
                     sealed: Sealed | None = None, replace_credentials: bool = False) -> IntegrationRow:
        """Apply changes under the row's lock; ABORTED when expected_version is stale; NOT_FOUND for an id not
        of the caller's organization."""
        tenancy, params = scope()
        values = {column: Jsonb(value) if column in ("config", "labels") else value
                  for column, value in changes.items()}
        if replace_credentials:
            values.update(zip(("credentials_ciphertext", "credentials_nonce", "credentials_key_id"),
                              _sealed_columns(sealed), strict=True))
        sets: list[sql.Composable] = [sql.SQL("{} = %s").format(sql.Identifier(column)) for column in values]
        sets += [sql.SQL("version = version + 1"), sql.SQL("updated_at = now()")]
        try:
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(sql.SQL("SELECT version, name FROM integrations WHERE id = %s AND {} FOR UPDATE"
                                          ).format(tenancy), [integration_id, *params])
                current = found(await cur.fetchone(), "integration", integration_id)
                check_version("integration", integration_id, current["version"], expected_version)
                await cur.execute(
                    sql.SQL("UPDATE integrations SET {} WHERE id = %s AND {} RETURNING {}").format(
                        sql.SQL(", ").join(sets), tenancy, _COLUMNS),
                    [*values.values(), integration_id, *params])
                row = await cur.fetchone()
        except psycopg.errors.UniqueViolation:
            raise _duplicate(changes.get("name", "")) from None
        return IntegrationRow(**found(row, "integration", integration_id))

    async def delete(self, integration_id: uuid.UUID) -> None:
        """Remove an integration of the caller's organization (its sealed credentials go with the row); NOT_FOUND
        otherwise."""
        tenancy, params = scope()
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql.SQL("DELETE FROM integrations WHERE id = %s AND {}").format(tenancy),
                                     [integration_id, *params])
            if cur.rowcount == 0:
                raise NotFound("integration", str(integration_id))

    async def record_probe(self, integration_id: uuid.UUID, probe: str, ok: bool, detail: str,
                           latency_ms: float) -> IntegrationRow:
        """Store the outcome of a health check or test (not a change: the version stays)."""
        tenancy, params = scope()
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                sql.SQL("UPDATE integrations SET probe_kind = %s, probe_ok = %s, probe_detail = %s,"
                        " probe_latency_ms = %s, probed_at = now() WHERE id = %s AND {} RETURNING {}"
                        ).format(tenancy, _COLUMNS),
                [probe, ok, detail, latency_ms, integration_id, *params])
            row = found(await cur.fetchone(), "integration", integration_id)
        return IntegrationRow(**row)

    async def count(self) -> int:
        """Number of integrations of the caller's organization."""
        tenancy, params = scope()
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql.SQL("SELECT count(*) FROM integrations WHERE {}").format(tenancy), params)
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def counts_by_kind(self) -> dict[str, int]:
        """Number of the caller's organization's integrations of each kind that has any."""
        tenancy, params = scope()
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql.SQL("SELECT kind, count(*) FROM integrations WHERE {} GROUP BY kind"
                                             ).format(tenancy), params)
            return {kind: int(n) for kind, n in await cur.fetchall()}
