"""Writes that make fields out of others or out of a file: split, merge, import. Each is one transaction, so
it happens entirely or not at all, and links the old and new fields both ways (predecessor/successor ids)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from chassis.authz import organization_scope as scope
from chassis.errors import InvalidArgument, NotFound, Violations
from services.field.measures import TOLERANCE_M2, refuse
from services.field.rows import FieldRow
from services.field.store import overlaps
from services.field.store.base import Queries, lock_boundaries

if TYPE_CHECKING:
    from services.field.geometry import Boundary, Shape
from services.field.store.fields import (
    NewField,
    archive_in,
    insert,
    insert_many,
    locked,
    must_be_active,
    name_taken,
    organization_of,
)


@dataclass(frozen=True)
class Part:
    """One field a split makes, with the request path of its boundary (for errors)."""

    name: str
    boundary: Boundary
    path: str


class ReshapeStore(Queries):
    """Split, merge and import."""

    async def split(self, field_id: uuid.UUID, parts: list[Part]) -> tuple[FieldRow, list[FieldRow]]:
        """Replace an active field by parts lying inside it and apart from each other."""
        now = datetime.now(UTC)
        try:
            async with self._write(keyed=True) as cur:
                await lock_boundaries(cur, await organization_of(cur, field_id))
                row = await locked(cur, field_id, with_boundary=True)
                must_be_active(row, "split")
                if row.boundary is None:
                    raise refuse("field_id", "the field has no boundary to split")
                from services.field.geometry import shape_of  # shapely, pyproj: on first use

                _check_parts(shape_of(row.boundary), parts)
                new_ids = []
                created = []
                # Archived first: a part may take the field's own name, unique only among active fields.
                await cur.execute("UPDATE fields SET status = 'ARCHIVED' WHERE id = %s", (row.id,))
                for part in parts:
                    made = await insert(cur, row.organization_id, row.farm_id, NewField(
                        name=part.name, boundary=part.boundary, labels=row.labels, reason=f"split from {row.id}",
                        predecessors=(row.id,)), now)
                    created.append(made)
                    new_ids.append(made.id)
                archived = await archive_in(cur, row, now, new_ids)
        except psycopg.errors.UniqueViolation:
            raise name_taken("", "parts.name") from None
        return archived, created

    async def merge(self, field_ids: list[uuid.UUID], name: str) -> tuple[FieldRow, list[FieldRow]]:
        """Replace active fields of one farm by one whose boundary is their union."""
        now = datetime.now(UTC)
        try:
            async with self._write(keyed=True) as cur:
                await lock_boundaries(cur, await organization_of(cur, field_ids[0]))
                rows = [await locked(cur, fid, with_boundary=True) for fid in sorted(field_ids)]
                by_id = {r.id: r for r in rows}
                rows = [by_id[fid] for fid in field_ids]
                v = Violations()
                for i, r in enumerate(rows):
                    if r.status != "ACTIVE":
                        v.add(f"field_ids[{i}]", f"field {r.id} is archived; only active fields can be merged")
                    elif r.boundary is None:
                        v.add(f"field_ids[{i}]", f"field {r.id} has no boundary to merge")
                    elif r.farm_id != rows[0].farm_id or r.organization_id != rows[0].organization_id:
                        v.add(f"field_ids[{i}]", f"field {r.id} is in another farm than field_ids[0]; merged fields "
                                                 "share a farm")
                v.raise_if_any()
                import shapely

                from services.field import geometry  # shapely, pyproj: on first use

                union = shapely.union_all([geometry.shape_of(r.boundary) for r in rows if r.boundary])
                if union.geom_type not in ("Polygon", "MultiPolygon"):  # never for valid boundaries; said, not crashed
                    raise refuse("field_ids", f"the union of these fields is a {union.geom_type}, not an area")
                boundary = geometry.parse(geometry.as_geojson(union), "field_ids")
                await cur.execute("UPDATE fields SET status = 'ARCHIVED' WHERE id = ANY(%s)", (field_ids,))
                merged = await insert(cur, rows[0].organization_id, rows[0].farm_id, NewField(
                    name=name, boundary=boundary, labels=rows[0].labels,
                    reason="merged from " + ", ".join(map(str, field_ids)), predecessors=tuple(field_ids)), now)
                archived = [await archive_in(cur, r, now, [merged.id]) for r in rows]
        except psycopg.errors.UniqueViolation:
            raise name_taken(name) from None
        return merged, archived

    async def import_fields(self, farm_id: uuid.UUID, features: list[tuple[str, NewField]],
                            allow_overlap: bool) -> list[FieldRow]:
        """Create every feature's field or none: names taken and overlaps with existing fields are named per
        feature (`<path>.properties.name`, `<path>.geometry`) in one INVALID_ARGUMENT."""
        now = datetime.now(UTC)
        tenancy, params = scope()
        async with self._write(keyed=True) as cur:
            await cur.execute(sql.SQL("SELECT organization_id FROM farms WHERE id = %s AND {} FOR SHARE").format(
                tenancy), [farm_id, *params])
            farm = await cur.fetchone()
            if farm is None:
                raise NotFound("farm", str(farm_id))
            organization = str(farm["organization_id"])
            await lock_boundaries(cur, organization)
            await cur.execute("SELECT lower(name) AS name FROM fields WHERE farm_id = %s AND status = 'ACTIVE'",
                              (farm_id,))
            taken = {r["name"] for r in await cur.fetchall()}
            v = Violations()
            shapes = [new.boundary.shape for _, new in features if new.boundary is not None]
            found_all = iter([] if allow_overlap else await overlaps.find_many(cur, organization, shapes))
            for path, new in features:
                if new.name.lower() in taken:
                    v.add(f"{path}.properties.name", f"an active field named {new.name!r} already exists in this farm")
                if new.boundary is not None and not allow_overlap:
                    found = next(found_all)
                    if found:
                        first = found[0]
                        v.add(f"{path}.geometry", f"overlaps field {first.name!r} ({first.field_id}) by "
                                                  f"{first.overlap_m2:.1f} m²" + (f" and {len(found) - 1} more field(s)"
                                                                                  if len(found) > 1 else ""))
            v.raise_if_any()
            return await insert_many(cur, organization, farm_id, [new for _, new in features], now)


def _check_parts(whole: Shape, parts: list[Part]) -> None:
    """Each part inside the split field (within the tolerance) and no two parts overlapping."""
    from services.field.geometry import geodesic_area

    v = Violations()
    for part in parts:
        outside = geodesic_area(part.boundary.shape.difference(whole))
        if outside > TOLERANCE_M2:
            v.add(part.path, f"extends {outside:.1f} m² outside the field being split; a part must lie inside it")
    for i, a in enumerate(parts):
        for b in parts[i + 1:]:
            shared = geodesic_area(a.boundary.shape.intersection(b.boundary.shape))
            if shared > TOLERANCE_M2:
                v.add(b.path, f"overlaps {a.path} by {shared:.1f} m²; the parts of a split must not overlap")
    if v.items:
        raise InvalidArgument(v.items)
