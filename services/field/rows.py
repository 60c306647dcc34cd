"""What the field store returns: rows as dataclasses, shared by the store, the servicer and the messages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from services.field.measures import Measures

if TYPE_CHECKING:
    from services.field.geometry import Boundary

MEASURE_COLUMNS = ("area_m2", "workable_m2", "perimeter_m", "min_lon", "min_lat", "max_lon", "max_lat",
                   "centroid_lon", "centroid_lat", "vertex_count")
"""The columns a boundary's measures are stored in, on fields (the current one) and boundary_versions."""

FIELD_COLUMNS = ("id", "organization_id", "farm_id", "name", "labels", "status", "notes", "predecessor_ids",
                 "successor_ids", "created_at", "archived_at", "boundary_version", "boundary_valid_from",
                 *MEASURE_COLUMNS)
"""A field's columns without its boundary (lists and spatial answers leave it out)."""


def measure_values(boundary: Boundary) -> dict[str, Any]:
    """The measure columns' values of a boundary."""
    m = boundary.measures
    west, south, east, north = m.bbox
    return {"area_m2": m.area_m2, "workable_m2": m.workable_m2, "perimeter_m": m.perimeter_m,
            "min_lon": west, "min_lat": south, "max_lon": east, "max_lat": north,
            "centroid_lon": m.centroid[0], "centroid_lat": m.centroid[1], "vertex_count": m.vertex_count}


def measures_of(row: dict[str, Any]) -> Measures | None:
    """The measures stored in a row's measure columns; None when it has no boundary."""
    if row.get("area_m2") is None:
        return None
    return Measures(area_m2=row["area_m2"], workable_m2=row["workable_m2"], perimeter_m=row["perimeter_m"],
                    bbox=(row["min_lon"], row["min_lat"], row["max_lon"], row["max_lat"]),
                    centroid=(row["centroid_lon"], row["centroid_lat"]), vertex_count=row["vertex_count"])


@dataclass(frozen=True)
class FarmRow:
    """A farm as stored, with its count of active fields."""

    id: uuid.UUID
    organization_id: str
    name: str
    longitude: float | None
    latitude: float | None
    timezone: str
    created_at: datetime
    active_field_count: int = 0


@dataclass(frozen=True)
class FieldRow:
    """A field as stored; boundary is None when the query left it out or the field has none."""

    id: uuid.UUID
    organization_id: str
    farm_id: uuid.UUID
    name: str
    labels: dict[str, str]
    status: str
    notes: str
    predecessor_ids: list[uuid.UUID]
    successor_ids: list[uuid.UUID]
    created_at: datetime
    archived_at: datetime | None
    boundary_version: int
    boundary_valid_from: datetime | None
    measures: Measures | None
    boundary: dict[str, Any] | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> FieldRow:
        """From a dict row holding FIELD_COLUMNS (and boundary, when selected)."""
        return cls(id=row["id"], organization_id=row["organization_id"], farm_id=row["farm_id"], name=row["name"],
                   labels=row["labels"], status=row["status"], notes=row["notes"],
                   predecessor_ids=list(row["predecessor_ids"]), successor_ids=list(row["successor_ids"]),
                   created_at=row["created_at"], archived_at=row["archived_at"],
                   boundary_version=row["boundary_version"], boundary_valid_from=row["boundary_valid_from"],
                   measures=measures_of(row), boundary=row.get("boundary"))


@dataclass(frozen=True)
class VersionRow:
    """One boundary version of a field."""

    field_id: uuid.UUID
    version: int
    boundary: dict[str, Any]
    measures: Measures
    valid_from: datetime
    valid_to: datetime | None
    reason: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> VersionRow:
        """From a dict row of boundary_versions."""
        measures = measures_of(row)
        assert measures is not None  # noqa: S101 narrows a type: a version's measures are NOT NULL
        return cls(field_id=row["field_id"], version=row["version"], boundary=row["boundary"], measures=measures,
                   valid_from=row["valid_from"], valid_to=row["valid_to"], reason=row["reason"])


@dataclass(frozen=True)
class SeasonRow:
    """A crop season as stored."""

    id: uuid.UUID
    organization_id: str
    field_id: uuid.UUID
    crop: str
    variety: str
    planned_planting_date: date | None
    planned_harvest_date: date | None
    actual_planting_date: date | None
    actual_harvest_date: date | None
    yield_amount: float
    yield_unit: str
    harvested_m2: float
    created_at: datetime


@dataclass(frozen=True)
class ActivityRow:
    """A field activity as stored."""

    id: uuid.UUID
    organization_id: str
    field_id: uuid.UUID
    type: str
    day: date
    quantity: float
    unit: str
    geometry: dict[str, Any] | None
    notes: str
    created_at: datetime
