"""API keys: create, read, list, revoke and rotate, with their events. Only keyed hashes are stored."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from chassis.db import fetch_one
from chassis.errors import FailedPrecondition, NotFound
from chassis.resources import Page, PageRequest
from chassis.resources.keyset import fetch_page
from services.identity import events
from services.identity.apikeys import NewKey
from services.identity.rows import ApiKeyRow
from services.identity.store._common import publish

_ACCEPTED = "k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())"
# Every query on one key has the tenancy filter `(%(org)s::uuid IS NULL OR organization_id = %(org)s::uuid)`:
# `org` is None only for a platform admin (services.identity.tenancy.organization_filter). Written out in each
# query so every statement is a literal.
_STATUS_WHERE = {
    "active": f"{_ACCEPTED} AND k.rotated_at IS NULL",
    "rotated": f"{_ACCEPTED} AND k.rotated_at IS NOT NULL",
    "revoked": "k.revoked_at IS NOT NULL",
    "expired": "k.revoked_at IS NULL AND k.expires_at <= now()",
}


class ApiKeyStore:
    """Queries over the api_keys table."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def create(self, *, organization_id: uuid.UUID, name: str, key: NewKey, scopes: list[str],
                     created_by: str, expires_at: datetime | None, rate_limit_per_second: float,
                     rate_limit_burst: int) -> ApiKeyRow:
        """Insert a key (its hash) and ApiKeyCreated; an unknown organization is NOT_FOUND."""
        try:
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                row = await self._insert(cur, organization_id=organization_id, name=name, key=key, scopes=scopes,
                                         created_by=created_by, expires_at=expires_at, rotated_from=None,
                                         rate=rate_limit_per_second, burst=rate_limit_burst)
                await publish(conn, events.api_key_created(row), events.api_key_subject(row.id))
        except psycopg.errors.ForeignKeyViolation:
            raise NotFound("organization", str(organization_id)) from None
        return row

    async def get(self, api_key_id: uuid.UUID, organization_id: uuid.UUID | None) -> ApiKeyRow | None:
        """One key of the organization (any, for None), or None."""
        row = await fetch_one(self._pool, "SELECT * FROM api_keys WHERE id = %(id)s"
                              " AND (%(org)s::uuid IS NULL OR organization_id = %(org)s::uuid)",
                              {"id": api_key_id, "org": organization_id})
        return ApiKeyRow(**row) if row else None

    async def list_keys(self, organization_id: uuid.UUID, status: str, page: PageRequest) -> Page[ApiKeyRow]:
        """One page of an organization's keys, newest first."""
        where = "k.organization_id = %s" + (f" AND {_STATUS_WHERE[status]}" if status else "")
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = await fetch_page(cur, page, select="k.*", from_="api_keys k", where=where,
                                    params=[organization_id], alias="k")
        return rows.map(lambda r: ApiKeyRow(**r))

    async def revoke(self, api_key_id: uuid.UUID, organization_id: uuid.UUID | None, by: str) -> ApiKeyRow | None:
        """Revoke a key of the organization (any, for None) with ApiKeyRevoked; a revoked key is answered as it
        is; None when there is none."""
        found = {"id": api_key_id, "org": organization_id}
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %(id)s AND revoked_at IS NULL"
                              " AND (%(org)s::uuid IS NULL OR organization_id = %(org)s::uuid) RETURNING *", found)
            changed = await cur.fetchone()
            if changed is None:
                await cur.execute("SELECT * FROM api_keys WHERE id = %(id)s"
                              " AND (%(org)s::uuid IS NULL OR organization_id = %(org)s::uuid)", found)
                same = await cur.fetchone()
                return ApiKeyRow(**same) if same else None
            row = ApiKeyRow(**changed)
            await publish(conn, events.api_key_revoked(row, by), events.api_key_subject(row.id))
            return row

    async def rotate(self, api_key_id: uuid.UUID, organization_id: uuid.UUID | None, key: NewKey, overlap: timedelta,
                     by: str) -> tuple[ApiKeyRow, ApiKeyRow] | None:
        """Replace an accepted, not yet rotated key by a new one with the same name, scopes, limits and expiry;
        the old one stays accepted until now + overlap (or its own earlier expiry). (new, old), or None (no such
        key in the organization; any, for None)."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT * FROM api_keys WHERE id = %(id)s"
                              " AND (%(org)s::uuid IS NULL OR organization_id = %(org)s::uuid) FOR UPDATE",
                              {"id": api_key_id, "org": organization_id})
            found = await cur.fetchone()
            if found is None:
                return None
            old = ApiKeyRow(**found)
            await cur.execute("SELECT now() AS now")
            now = (await cur.fetchone() or {})["now"]
            if old.revoked_at is not None:
                raise FailedPrecondition(f"API key {old.prefix} is revoked; create a new key instead")
            if not old.accepted_at(now):
                raise FailedPrecondition(f"API key {old.prefix} has expired; create a new key instead")
            if old.rotated_at is not None:
                raise FailedPrecondition(f"API key {old.prefix} was already rotated; rotate its successor")
            new = await self._insert(cur, organization_id=old.organization_id, name=old.name, key=key,
                                     scopes=old.scopes, created_by=by, expires_at=old.expires_at,
                                     rotated_from=old.id, rate=old.rate_limit_per_second,
                                     burst=old.rate_limit_burst)
            await cur.execute(
                "UPDATE api_keys SET rotated_at = now(),"
                " expires_at = LEAST(COALESCE(expires_at, 'infinity'::timestamptz), now() + %s)"
                " WHERE id = %s RETURNING *",
                (overlap, old.id),
            )
            old = ApiKeyRow(**(await cur.fetchone() or {}))
            await publish(conn, events.api_key_created(new), events.api_key_subject(new.id))
            return new, old

    @staticmethod
    async def _insert(cur: psycopg.AsyncCursor[Any], *, organization_id: uuid.UUID, name: str, key: NewKey,
                      scopes: list[str], created_by: str, expires_at: datetime | None,
                      rotated_from: uuid.UUID | None, rate: float, burst: int) -> ApiKeyRow:
        await cur.execute(
            "INSERT INTO api_keys (id, organization_id, name, prefix, secret_hash, scopes, created_by, expires_at,"
            " rotated_from, rate_limit_per_second, rate_limit_burst)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (uuid.uuid4(), organization_id, name, key.prefix, key.secret_hash, scopes, created_by, expires_at,
             rotated_from, rate, burst),
        )
        return ApiKeyRow(**(await cur.fetchone() or {}))
