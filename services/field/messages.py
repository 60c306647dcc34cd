"""Conversions between stored rows and the contracts' messages."""

from __future__ import annotations

from datetime import date
from typing import Any

from google.protobuf import struct_pb2

from chassis.protos import timestamp
from protomesh.field.v1 import field_pb2 as pb
from services.field.measures import Measures, hectares
from services.field.rows import ActivityRow, FarmRow, FieldRow, SeasonRow, VersionRow

STATUSES = {"ACTIVE": pb.FIELD_STATUS_ACTIVE, "ARCHIVED": pb.FIELD_STATUS_ARCHIVED}
STATUS_NAMES = {number: name for name, number in STATUSES.items()}
ACTIVITY_TYPES = {
    "TILLAGE": pb.ACTIVITY_TYPE_TILLAGE, "SEEDING": pb.ACTIVITY_TYPE_SEEDING,
    "FERTILISING": pb.ACTIVITY_TYPE_FERTILISING, "SPRAYING": pb.ACTIVITY_TYPE_SPRAYING,
    "IRRIGATION": pb.ACTIVITY_TYPE_IRRIGATION, "HARVEST": pb.ACTIVITY_TYPE_HARVEST,
}
ACTIVITY_TYPE_NAMES = {number: name for name, number in ACTIVITY_TYPES.items()}


def struct(data: dict[str, Any]) -> struct_pb2.Struct:
    """A Struct holding JSON-like data (a GeoJSON geometry or collection)."""
    message = struct_pb2.Struct()
    message.update(data)
    return message


def area(square_meters: float) -> pb.Area:
    """An Area in m² and ha."""
    return pb.Area(square_meters=square_meters, hectares=hectares(square_meters))


def day_text(value: date | None) -> str:
    """YYYY-MM-DD, or "" for none."""
    return value.isoformat() if value else ""


def measures_message(m: Measures) -> pb.Measures:
    """The contracts' Measures."""
    west, south, east, north = m.bbox
    return pb.Measures(
        area=area(m.area_m2), workable_area=area(m.workable_m2), perimeter_meters=m.perimeter_m,
        bbox=pb.BoundingBox(min_longitude=west, min_latitude=south, max_longitude=east, max_latitude=north),
        centroid=pb.Location(longitude=m.centroid[0], latitude=m.centroid[1]), vertex_count=m.vertex_count)


def farm_message(row: FarmRow) -> pb.Farm:
    """The contracts' Farm."""
    farm = pb.Farm(farm_id=str(row.id), name=row.name, timezone=row.timezone, organization_id=row.organization_id,
                   create_time=timestamp(row.created_at), active_field_count=row.active_field_count)
    if row.longitude is not None and row.latitude is not None:
        farm.location.CopyFrom(pb.Location(longitude=row.longitude, latitude=row.latitude))
    return farm


def field_message(row: FieldRow) -> pb.Field:
    """The contracts' Field (with its boundary when the row carries it)."""
    field = pb.Field(
        field_id=str(row.id), farm_id=str(row.farm_id), name=row.name, labels=row.labels,
        status=STATUSES[row.status], notes=row.notes, boundary_version=row.boundary_version,
        boundary_valid_from=timestamp(row.boundary_valid_from),
        predecessor_ids=[str(p) for p in row.predecessor_ids], successor_ids=[str(s) for s in row.successor_ids],
        organization_id=row.organization_id, create_time=timestamp(row.created_at),
        archive_time=timestamp(row.archived_at))
    if row.measures is not None:
        field.measures.CopyFrom(measures_message(row.measures))
    if row.boundary is not None:
        field.boundary.CopyFrom(struct(row.boundary))
    return field


def version_message(row: VersionRow) -> pb.BoundaryVersion:
    """The contracts' BoundaryVersion."""
    return pb.BoundaryVersion(
        field_id=str(row.field_id), version=row.version, boundary=struct(row.boundary),
        measures=measures_message(row.measures), valid_from=timestamp(row.valid_from),
        valid_to=timestamp(row.valid_to), reason=row.reason)


def season_message(row: SeasonRow) -> pb.Season:
    """The contracts' Season, its yield per hectare derived from the area at harvest."""
    per_hectare = row.yield_amount / hectares(row.harvested_m2) if row.harvested_m2 > 0 else 0.0
    return pb.Season(
        season_id=str(row.id), field_id=str(row.field_id), crop=row.crop, variety=row.variety,
        planned_planting_date=day_text(row.planned_planting_date),
        planned_harvest_date=day_text(row.planned_harvest_date),
        actual_planting_date=day_text(row.actual_planting_date),
        actual_harvest_date=day_text(row.actual_harvest_date), yield_amount=row.yield_amount,
        yield_unit=row.yield_unit, yield_per_hectare=per_hectare,
        harvested_area=area(row.harvested_m2) if row.harvested_m2 > 0 else None,
        create_time=timestamp(row.created_at))


def activity_message(row: ActivityRow) -> pb.Activity:
    """The contracts' Activity."""
    return pb.Activity(
        activity_id=str(row.id), field_id=str(row.field_id), type=ACTIVITY_TYPES[row.type], date=day_text(row.day),
        quantity=row.quantity, unit=row.unit, geometry=struct(row.geometry) if row.geometry else None,
        notes=row.notes, create_time=timestamp(row.created_at))
