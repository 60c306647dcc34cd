"""The field service's domain events, built from the rows they describe (published through the outbox).

Each carries its field's organization_id, which the envelope repeats as the `pm-organization` header, so
the notification service notifies only that organization's subscribers.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from chassis.protos import timestamp
from protomesh.field.v1 import events_pb2
from services.field.messages import area, day_text
from services.field.rows import FieldRow, SeasonRow

SOURCE = "field"


def field_subject(field_id: uuid.UUID) -> str:
    """The resource a field event is about."""
    return f"fields/{field_id}"


def season_subject(season_id: uuid.UUID) -> str:
    """The resource a season event is about."""
    return f"seasons/{season_id}"


def created(row: FieldRow) -> events_pb2.FieldCreated:
    """FieldCreated for a new field (by hand, import, split or merge)."""
    return events_pb2.FieldCreated(
        field_id=str(row.id), farm_id=str(row.farm_id), name=row.name,
        area=area(row.measures.area_m2 if row.measures else 0.0),
        predecessor_ids=[str(p) for p in row.predecessor_ids], create_time=timestamp(row.created_at),
        organization_id=row.organization_id)


def boundary_changed(row: FieldRow, old_m2: float, new_m2: float, valid_from: datetime) -> events_pb2.BoundaryChanged:
    """BoundaryChanged with the old and the new area."""
    return events_pb2.BoundaryChanged(
        field_id=str(row.id), version=row.boundary_version, old_area=area(old_m2), new_area=area(new_m2),
        valid_from=timestamp(valid_from), organization_id=row.organization_id)


def archived(row: FieldRow) -> events_pb2.FieldArchived:
    """FieldArchived, with the fields it became (after a split or merge)."""
    return events_pb2.FieldArchived(
        field_id=str(row.id), name=row.name, successor_ids=[str(s) for s in row.successor_ids],
        archive_time=timestamp(row.archived_at), organization_id=row.organization_id)


def season_started(row: SeasonRow) -> events_pb2.SeasonStarted:
    """SeasonStarted when the actual planting is recorded."""
    return events_pb2.SeasonStarted(
        season_id=str(row.id), field_id=str(row.field_id), crop=row.crop,
        planting_date=day_text(row.actual_planting_date), organization_id=row.organization_id)


def harvest_recorded(row: SeasonRow, yield_per_hectare: float) -> events_pb2.HarvestRecorded:
    """HarvestRecorded with the yield and the yield per hectare."""
    return events_pb2.HarvestRecorded(
        season_id=str(row.id), field_id=str(row.field_id), crop=row.crop,
        harvest_date=day_text(row.actual_harvest_date), yield_amount=row.yield_amount, yield_unit=row.yield_unit,
        yield_per_hectare=yield_per_hectare, organization_id=row.organization_id)
