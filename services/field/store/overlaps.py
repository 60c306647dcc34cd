"""Overlap between a boundary and the organization's other active fields: candidates by bounding box (GiST),
then the exact shared area on the ellipsoid."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chassis.errors import FailedPrecondition
from services.field.measures import TOLERANCE_M2, hectares
from services.field.store.base import Cursor

if TYPE_CHECKING:
    from services.field.geometry import Shape


@dataclass(frozen=True)
class Overlap:
    """An active field a boundary overlaps, and by how much."""

    field_id: uuid.UUID
    name: str
    overlap_m2: float


class OverlapRefused(FailedPrecondition):
    """The boundary overlaps other active fields of the organization (and allow_overlap was not set)."""

    def __init__(self, overlaps: list[Overlap], field: str = "boundary") -> None:
        self.overlaps = overlaps
        named = "; ".join(f"field {o.name!r} ({o.field_id}) by {o.overlap_m2:.1f} m² ({hectares(o.overlap_m2):.4f} ha)"
                          for o in overlaps[:5])
        more = f" and {len(overlaps) - 5} more" if len(overlaps) > 5 else ""
        first = overlaps[0]
        super().__init__(
            f"{field} overlaps {len(overlaps)} active field(s) of the organization: {named}{more}; redraw it, archive "
            "the other field, or set allow_overlap", metadata={
                "field": field, "overlapping_field_id": str(first.field_id), "overlapping_field_name": first.name,
                "overlap_square_meters": f"{first.overlap_m2:.3f}", "overlap_count": str(len(overlaps))})


async def find(cur: Cursor, organization: str, shape: Shape, exclude: Collection[uuid.UUID] = ()) -> list[Overlap]:
    """The organization's active fields sharing more than TOLERANCE_M2 with `shape`, largest overlap first."""
    from services.field.geometry import from_wkb, geodesic_area  # shapely, pyproj: on first use

    west, south, east, north = shape.bounds
    await cur.execute(
        "SELECT id, name, boundary_wkb FROM fields WHERE organization_id = %s AND status = 'ACTIVE'"
        " AND boundary IS NOT NULL AND bbox && box(point(%s, %s), point(%s, %s)) AND NOT (id = ANY(%s))",
        (organization, west, south, east, north, list(exclude)))
    found = []
    for row in await cur.fetchall():
        other = from_wkb(row["boundary_wkb"])
        if shape.intersects(other):
            shared = geodesic_area(shape.intersection(other))
            if shared > TOLERANCE_M2:
                found.append(Overlap(row["id"], row["name"], shared))
    return sorted(found, key=lambda o: -o.overlap_m2)


async def find_many(cur: Cursor, organization: str, shapes: list[Shape]) -> list[list[Overlap]]:
    """find() for many shapes at once (an import): one query for the candidates of all, then a spatial index."""
    import shapely

    from services.field.geometry import from_wkb, geodesic_area  # shapely, pyproj: on first use

    if not shapes:
        return []
    west, south = min(s.bounds[0] for s in shapes), min(s.bounds[1] for s in shapes)
    east, north = max(s.bounds[2] for s in shapes), max(s.bounds[3] for s in shapes)
    await cur.execute(
        "SELECT id, name, boundary_wkb FROM fields WHERE organization_id = %s AND status = 'ACTIVE'"
        " AND boundary IS NOT NULL AND bbox && box(point(%s, %s), point(%s, %s))",
        (organization, west, south, east, north))
    rows = await cur.fetchall()
    if not rows:
        return [[] for _ in shapes]
    existing = [from_wkb(r["boundary_wkb"]) for r in rows]
    tree = shapely.STRtree(existing)
    found: list[list[Overlap]] = []
    for shape in shapes:
        mine = []
        for i in tree.query(shape, predicate="intersects").tolist():
            shared = geodesic_area(shape.intersection(existing[i]))
            if shared > TOLERANCE_M2:
                mine.append(Overlap(rows[i]["id"], rows[i]["name"], shared))
        found.append(sorted(mine, key=lambda o: -o.overlap_m2))
    return found
