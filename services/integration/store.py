"""The integration service's PostgreSQL access: every query it makes, in one place.

Credentials only pass through here sealed (ciphertext, nonce, key id); this module never sees
them in clear.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from chassis import idempotency
from chassis.crypto import Sealed
from chassis.db import contains_pattern
from chassis.errors import AlreadyExists, NotFound
from chassis.resources import Page, PageRequest, check_version, found
from chassis.resources.keyset import fetch_page
from services.integration.rows import IntegrationRow

_COLUMNS = """
    id, name, kind, description, config, credentials_ciphertext, credentials_nonce, credentials_key_id,
    credential_keys, enabled, labels, probe_kind, probe_ok, probe_detail, probe_latency_ms, probed_at,
    version, created_at, updated_at
"""


@dataclass(frozen=True)
class IntegrationFilter:
    """Filters of ListIntegrations."""

    kind: str = ""
    name_contains: str = ""
    enabled: bool | None = None
    label_key: str = ""
    label_value: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        """SQL conditions (joined by AND) and their parameters."""
        clauses: list[str] = ["TRUE"]
        params: list[Any] = []
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
        return " AND ".join(clauses), params


def _sealed_columns(sealed: Sealed | None) -> list[Any]:
    return [None, None, None] if sealed is None else [sealed.ciphertext, sealed.nonce, sealed.key_id]


def _duplicate(name: str) -> AlreadyExists:
    return AlreadyExists(f"an integration named {name!r} already exists (names are unique, ignoring case)",
                         metadata={"field": "name"})


class IntegrationStore:
    """Queries over the integration schema."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def create(self, integration_id: uuid.UUID, *, name: str, kind: str, description: str,
                     config: dict[str, Any], sealed: Sealed | None, credential_keys: list[str], enabled: bool,
                     labels: dict[str, str]) -> IntegrationRow:
        """Insert an integration; ALREADY_EXISTS for a taken name."""
        try:
            # A transaction, so a keyed request's key commits with the integration (chassis.idempotency).
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                await idempotency.claim(conn)
                await cur.execute(
                    "INSERT INTO integrations (id, name, kind, description, config, credentials_ciphertext,"
                    " credentials_nonce, credentials_key_id, credential_keys, enabled, labels)"
                    f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
                    [integration_id, name, kind, description, Jsonb(config), *_sealed_columns(sealed),
                     credential_keys, enabled, Jsonb(labels)],
                )
                row = await cur.fetchone()
        except psycopg.errors.UniqueViolation:
            raise _duplicate(name) from None
        assert row is not None
        return IntegrationRow(**row)

    async def get(self, integration_id: uuid.UUID) -> IntegrationRow:
        """One integration; NOT_FOUND otherwise."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(f"SELECT {_COLUMNS} FROM integrations WHERE id = %s", (integration_id,))
            row = found(await cur.fetchone(), "integration", integration_id)
        return IntegrationRow(**row)

    async def list_page(self, flt: IntegrationFilter, page: PageRequest) -> Page[IntegrationRow]:
        """One page of integrations in the page's keyset order, with the count of all that match."""
        where, params = flt.where()
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = await fetch_page(cur, page, select=_COLUMNS, from_="integrations", where=where, params=params)
        return rows.map(lambda r: IntegrationRow(**r))

    async def enabled(self, kind: str = "") -> list[IntegrationRow]:
        """Every enabled integration (of a kind), oldest first."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(f"SELECT {_COLUMNS} FROM integrations WHERE enabled AND (%s = '' OR kind = %s)"
                              " ORDER BY created_at, id", (kind, kind))
            return [IntegrationRow(**r) for r in await cur.fetchall()]

    async def update(self, integration_id: uuid.UUID, expected_version: int, changes: dict[str, Any],
                     sealed: Sealed | None = None, replace_credentials: bool = False) -> IntegrationRow:
        """Apply changes under the row's lock; ABORTED when expected_version is stale."""
        sets, values = [], []
        for column, value in changes.items():
            sets.append(f"{column} = %s")
            values.append(Jsonb(value) if column in ("config", "labels") else value)
        if replace_credentials:
            sets += ["credentials_ciphertext = %s", "credentials_nonce = %s", "credentials_key_id = %s"]
            values += _sealed_columns(sealed)
        try:
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                await cur.execute("SELECT version, name FROM integrations WHERE id = %s FOR UPDATE", (integration_id,))
                current = found(await cur.fetchone(), "integration", integration_id)
                check_version("integration", integration_id, current["version"], expected_version)
                await cur.execute(
                    f"UPDATE integrations SET {', '.join([*sets, 'version = version + 1', 'updated_at = now()'])}"
                    f" WHERE id = %s RETURNING {_COLUMNS}", [*values, integration_id])
                row = await cur.fetchone()
        except psycopg.errors.UniqueViolation:
            raise _duplicate(changes.get("name", "")) from None
        assert row is not None
        return IntegrationRow(**row)

    async def delete(self, integration_id: uuid.UUID) -> None:
        """Remove an integration (its sealed credentials go with the row); NOT_FOUND otherwise."""
        async with self._pool.connection() as conn:
            cur = await conn.execute("DELETE FROM integrations WHERE id = %s", (integration_id,))
            if cur.rowcount == 0:
                raise NotFound("integration", str(integration_id))

    async def record_probe(self, integration_id: uuid.UUID, probe: str, ok: bool, detail: str,
                           latency_ms: float) -> IntegrationRow:
        """Store the outcome of a health check or test (not a change: the version stays)."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "UPDATE integrations SET probe_kind = %s, probe_ok = %s, probe_detail = %s, probe_latency_ms = %s,"
                f" probed_at = now() WHERE id = %s RETURNING {_COLUMNS}",
                (probe, ok, detail, latency_ms, integration_id))
            row = found(await cur.fetchone(), "integration", integration_id)
        return IntegrationRow(**row)

    async def count(self) -> int:
        """Number of integrations."""
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM integrations")
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def counts_by_kind(self) -> dict[str, int]:
        """Number of integrations of each kind that has any."""
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT kind, count(*) FROM integrations GROUP BY kind")
            return {kind: int(n) for kind, n in await cur.fetchall()}
