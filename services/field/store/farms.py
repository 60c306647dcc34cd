"""Farms: created in the caller's organization, read and listed within it."""

from __future__ import annotations

import uuid

import psycopg
from psycopg import sql

from chassis.authz import organization_scope as scope
from chassis.errors import AlreadyExists
from chassis.resources import Page, PageRequest, found
from chassis.resources.keyset import fetch_page
from services.field.rows import FarmRow
from services.field.store.base import Queries

_COLUMNS = sql.SQL("id, organization_id, name, longitude, latitude, timezone, created_at,"
                   " (SELECT count(*) FROM fields WHERE fields.farm_id = farms.id AND fields.status = 'ACTIVE')"
                   "::int AS active_field_count")


class FarmStore(Queries):
    """The farms table."""

    async def create(self, organization: str, name: str, location: tuple[float, float] | None,
                     timezone: str) -> FarmRow:
        """Insert a farm of `organization`; a name taken there raises AlreadyExists naming `name`."""
        lon, lat = location if location else (None, None)
        try:
            async with self._write(keyed=True) as cur:
                await cur.execute(
                    sql.SQL("INSERT INTO farms (id, organization_id, name, longitude, latitude, timezone)"
                            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING {}").format(_COLUMNS),
                    (uuid.uuid4(), organization, name, lon, lat, timezone))
                row = await cur.fetchone()
        except psycopg.errors.UniqueViolation:
            raise AlreadyExists(f"a farm named {name!r} already exists", metadata={"field": "name"}) from None
        return FarmRow(**found(row, "farm", name))

    async def get(self, farm_id: uuid.UUID) -> FarmRow | None:
        """One farm of the caller's organization, or None (another organization's too)."""
        tenancy, params = scope()
        row = await self._one(sql.SQL("SELECT {} FROM farms WHERE id = %s AND {}").format(_COLUMNS, tenancy),
                              [farm_id, *params])
        return FarmRow(**row) if row else None

    async def list_page(self, page: PageRequest) -> Page[FarmRow]:
        """A page of the caller's organization's farms and how many it has."""
        tenancy, params = scope()
        async with self._read() as cur:
            raw = await fetch_page(cur, page, select=_COLUMNS, from_="farms", where=tenancy, params=params)
        return raw.map(lambda r: FarmRow(**r))
