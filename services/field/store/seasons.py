"""Crop seasons and field activities of the caller's organization's fields."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from psycopg import sql
from psycopg.types.json import Jsonb

from chassis.authz import organization_scope as scope
from chassis.errors import FailedPrecondition, NotFound
from chassis.resources import Page, PageRequest
from chassis.resources.keyset import fetch_page
from services.field import events
from services.field.measures import TOLERANCE_M2, refuse
from services.field.rows import ActivityRow, FieldRow, SeasonRow
from services.field.store.base import Queries, publish
from services.field.store.fields import locked, must_be_active

if TYPE_CHECKING:
    from services.field.geometry import Boundary


class SeasonStore(Queries):
    """The seasons and activities tables."""

    async def create_season(self, field_id: uuid.UUID, values: dict[str, Any]) -> SeasonRow:
        """Plan a season on an active field."""
        async with self._write(keyed=True) as cur:
            row = await locked(cur, field_id)
            must_be_active(row, "given a season")
            columns = {"id": uuid.uuid4(), "organization_id": row.organization_id, "field_id": row.id, **values}
            await cur.execute(sql.SQL("INSERT INTO seasons ({}) VALUES ({}) RETURNING *").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(", ").join(sql.Placeholder() * len(columns))),
                list(columns.values()))
            return SeasonRow(**(await cur.fetchone() or {}))

    async def record(self, season_id: uuid.UUID, planting: date | None, harvest: date | None, amount: float,
                     unit: str) -> SeasonRow:
        """Record the planting (SeasonStarted) and/or the harvest with its yield (HarvestRecorded), the yield per
        hectare divided by the workable area of the boundary valid at the end of the harvest day (farm time)."""
        tenancy, params = scope()
        async with self._write() as cur:
            await cur.execute(sql.SQL("SELECT * FROM seasons WHERE id = %s AND {} FOR UPDATE").format(tenancy),
                              [season_id, *params])
            current = await cur.fetchone()
            if current is None:
                raise NotFound("season", str(season_id))
            await cur.execute("SELECT farms.timezone FROM fields JOIN farms ON farms.id = fields.farm_id"
                              " WHERE fields.id = %s", (current["field_id"],))
            zone = ZoneInfo(str((await cur.fetchone() or {"timezone": "UTC"})["timezone"]))
            changes: dict[str, Any] = {}
            if planting is not None:
                changes["actual_planting_date"] = planting
            if harvest is not None:
                end_of_day = datetime.combine(harvest + timedelta(days=1), time(), zone) - timedelta(microseconds=1)
                await cur.execute("SELECT workable_m2 FROM boundary_versions WHERE field_id = %s AND valid_from <= %s"
                                  " AND (valid_to IS NULL OR valid_to > %s)",
                                  (current["field_id"], end_of_day, end_of_day))
                version = await cur.fetchone()
                if version is None:
                    raise FailedPrecondition(
                        f"field {current['field_id']} had no boundary on {harvest.isoformat()}, so no yield per "
                        "hectare can be computed", metadata={"field": "actual_harvest_date"})
                changes |= {"actual_harvest_date": harvest, "yield_amount": amount, "yield_unit": unit,
                            "harvested_m2": version["workable_m2"]}
            await cur.execute(sql.SQL("UPDATE seasons SET {} WHERE id = %s RETURNING *").format(
                sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in changes)),
                [*changes.values(), season_id])
            row = SeasonRow(**(await cur.fetchone() or {}))
            if planting is not None:
                await publish(cur, events.season_started(row), events.season_subject(row.id))
            if harvest is not None:
                per_hectare = row.yield_amount / (row.harvested_m2 / 10_000.0) if row.harvested_m2 > 0 else 0.0
                await publish(cur, events.harvest_recorded(row, per_hectare), events.season_subject(row.id))
            return row

    async def seasons_page(self, field_id: uuid.UUID, page: PageRequest) -> Page[SeasonRow]:
        """A page of a field's seasons, newest first."""
        return (await self._child_page("seasons", field_id, page)).map(lambda r: SeasonRow(**r))

    async def create_activity(self, field_id: uuid.UUID, values: dict[str, Any],
                              within: Boundary | None) -> tuple[FieldRow, ActivityRow]:
        """Record an activity on a field (active or not: work is recorded after the fact); its geometry, when
        given, must lie inside the field's current boundary."""
        async with self._write(keyed=True) as cur:
            row = await locked(cur, field_id, with_boundary=True)
            if within is not None:
                from services.field.geometry import geodesic_area, shape_of  # shapely, pyproj: on first use

                if row.boundary is None:
                    raise refuse("geometry", "the field has no boundary to place this geometry in; leave it out")
                outside = geodesic_area(within.shape.difference(shape_of(row.boundary)))
                if outside > TOLERANCE_M2:
                    raise refuse("geometry", f"extends {outside:.1f} m² outside the field; an activity's geometry "
                                             "lies inside its field")
            columns = {"id": uuid.uuid4(), "organization_id": row.organization_id, "field_id": row.id, **values}
            if columns.get("geometry") is not None:
                columns["geometry"] = Jsonb(columns["geometry"])
            await cur.execute(sql.SQL("INSERT INTO activities ({}) VALUES ({}) RETURNING *").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(", ").join(sql.Placeholder() * len(columns))),
                list(columns.values()))
            return row, ActivityRow(**(await cur.fetchone() or {}))

    async def activities_page(self, field_id: uuid.UUID, page: PageRequest) -> Page[ActivityRow]:
        """A page of a field's activities, newest first."""
        return (await self._child_page("activities", field_id, page)).map(lambda r: ActivityRow(**r))

    async def _child_page(self, table: str, field_id: uuid.UUID, page: PageRequest) -> Page[dict[str, Any]]:
        tenancy, params = scope()
        async with self._read() as cur:
            await cur.execute(sql.SQL("SELECT 1 FROM fields WHERE id = %s AND {}").format(tenancy), [field_id, *params])
            if await cur.fetchone() is None:
                raise NotFound("field", str(field_id))
            return await fetch_page(cur, page, select="*", from_=sql.Identifier(table),
                                    where=sql.SQL("field_id = %s AND {}").format(tenancy), params=[field_id, *params])
