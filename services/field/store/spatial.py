"""Spatial queries over the caller's organization's active fields: the GiST index on the bounding box picks
candidates, shapely decides exactly (holes excluded), and the page is cut from the exact matches by name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg import sql

from chassis.authz import organization_scope as scope
from chassis.errors import FailedPrecondition
from chassis.resources import Page, PageRequest
from services.field.rows import FIELD_COLUMNS, FieldRow
from services.field.store.base import Queries

if TYPE_CHECKING:
    from services.field.geometry import Shape

MAX_CANDIDATES = 20_000
"""Most candidates one query tests exactly; a wider search is refused with advice to narrow it."""

_SELECT = sql.SQL(", ").join(map(sql.Identifier, FIELD_COLUMNS))
_BOX = sql.SQL("box(point(%s, %s), point(%s, %s))")


class SpatialStore(Queries):
    """Point, area and nearest queries."""

    async def _candidates(self, condition: sql.Composable, params: list[Any]) -> list[dict[str, Any]]:
        tenancy, scope_params = scope()
        # The whole row with the WKB: a point usually has one or two candidates, so one query answers it.
        rows = await self._all(sql.SQL(
            "SELECT {}, boundary_wkb FROM fields WHERE status = 'ACTIVE' AND boundary IS NOT NULL AND {}"
            " AND {} LIMIT %s").format(_SELECT, condition, tenancy), [*params, *scope_params, MAX_CANDIDATES + 1])
        if len(rows) > MAX_CANDIDATES:
            raise FailedPrecondition(f"the search covers more than {MAX_CANDIDATES} fields' bounding boxes; "
                                     "search a smaller area", metadata={"limit": str(MAX_CANDIDATES)})
        return rows

    @staticmethod
    def _page(matches: list[dict[str, Any]], page: PageRequest) -> Page[FieldRow]:
        """The page of exact matches after the cursor, in (name, id) order."""
        ordered = sorted(matches, key=lambda r: (r["name"], r["id"]))
        if page.after is not None:
            ordered = [r for r in ordered if (r["name"], r["id"]) > tuple(page.after)]
        return page.result([FieldRow.of(r) for r in ordered[: page.limit]], len(matches))

    async def at_point(self, lon: float, lat: float, page: PageRequest) -> Page[FieldRow]:
        """Active fields covering the point (on an edge counts; in a hole does not)."""
        import shapely  # and pyproj, numpy: loaded by the first spatial query, not at start

        from services.field.geometry import from_wkb

        candidates = await self._candidates(sql.SQL("bbox @> point(%s, %s)"), [lon, lat])
        point = shapely.Point(lon, lat)
        return self._page([r for r in candidates if from_wkb(r["boundary_wkb"]).covers(point)], page)

    async def intersecting(self, area: Shape, page: PageRequest) -> Page[FieldRow]:
        """Active fields sharing at least a point with `area`."""
        import shapely

        from services.field.geometry import from_wkb

        west, south, east, north = area.bounds
        candidates = await self._candidates(sql.SQL("bbox && {}").format(_BOX), [west, south, east, north])
        shapely.prepare(area)
        return self._page([r for r in candidates if area.intersects(from_wkb(r["boundary_wkb"]))], page)

    async def nearest(self, lon: float, lat: float, max_m: float, limit: int) -> list[tuple[FieldRow, float]]:
        """Up to `limit` active fields within max_m metres of the point (geodesic), nearest first."""
        from services.field.geometry import degrees_around, distance_m, from_wkb

        dlon, dlat = degrees_around(lat, max_m)
        candidates = await self._candidates(sql.SQL("bbox && {}").format(_BOX),
                                            [lon - dlon, lat - dlat, lon + dlon, lat + dlat])
        near = sorted(((distance_m(from_wkb(r["boundary_wkb"]), lon, lat), r) for r in candidates),
                      key=lambda pair: (pair[0], str(pair[1]["id"])))
        return [(FieldRow.of(r), d) for d, r in near if d <= max_m][:limit]
