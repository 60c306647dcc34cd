"""GeoJSON FeatureCollections in and out, with fiboa-style properties.

Export: one Feature per field; `id` is the field's id; properties follow fiboa's core names (`id`, `area` in
hectares, `perimeter` in metres, `determination_datetime` = when the boundary became valid) plus ours
(`name`, `farm_id`, `workable_area`, `boundary_version`, `labels`).
Import: every feature is checked before anything is written, and every bad one is named by its path
(`feature_collection.features[3].geometry.coordinates[0][5]`), so a file is fixed in one round.
"""

from __future__ import annotations

import re
from typing import Any

import shapely

from chassis.errors import InvalidArgument, Violations
from services.field import geometry
from services.field.geometry import geodesic_area, hectares
from services.field.rows import FieldRow
from services.field.store import NewField

MAX_FEATURES = 1000
"""Most features one import may hold (and, times a few, the request's 8 MiB body)."""

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9 ._-]{0,126}[A-Za-z0-9._-])?$")
"""common.v1.resource_name, the rule a field's name follows in CreateFieldRequest."""


def feature(row: FieldRow) -> dict[str, Any]:
    """A field as a GeoJSON Feature with fiboa-style properties."""
    m = row.measures
    assert m is not None and row.boundary is not None  # noqa: S101 narrows a type: only fields with a boundary are exported
    return {
        "type": "Feature", "id": str(row.id), "geometry": row.boundary, "bbox": list(m.bbox),
        "properties": {
            "id": str(row.id), "name": row.name, "farm_id": str(row.farm_id), "area": hectares(m.area_m2),
            "workable_area": hectares(m.workable_m2), "perimeter": m.perimeter_m,
            "determination_datetime": row.boundary_valid_from.isoformat() if row.boundary_valid_from else None,
            "boundary_version": row.boundary_version, "labels": row.labels,
        },
    }


def collection(rows: list[FieldRow]) -> dict[str, Any]:
    """The FeatureCollection of the fields."""
    return {"type": "FeatureCollection", "features": [feature(r) for r in rows]}


def parse(value: dict[str, Any], path: str = "feature_collection") -> list[tuple[str, NewField]]:
    """The fields a FeatureCollection describes, each with its feature's path; INVALID_ARGUMENT naming every
    bad feature (type, geometry, name, duplicates and overlaps between features)."""
    v = Violations()
    if value.get("type") != "FeatureCollection":
        v.add(f"{path}.type", f"must be \"FeatureCollection\", not {value.get('type')!r}")
    features = value.get("features")
    if not isinstance(features, list) or not 1 <= len(features) <= MAX_FEATURES:
        v.add(f"{path}.features", f"must be an array of 1-{MAX_FEATURES} features")
        v.raise_if_any()
    assert isinstance(features, list)  # noqa: S101 narrows a type: refused above otherwise
    parsed: list[tuple[str, NewField]] = []
    names: dict[str, str] = {}
    for i, item in enumerate(features):
        where = f"{path}.features[{i}]"
        new = _feature(v, item, where)
        if new is None:
            continue
        if new.name.lower() in names:
            v.add(f"{where}.properties.name", f"{new.name!r} is also the name of {names[new.name.lower()]}")
        names.setdefault(new.name.lower(), where)
        parsed.append((where, new))
    _check_apart(v, parsed)
    v.raise_if_any()
    return parsed


def _feature(v: Violations, item: Any, where: str) -> NewField | None:
    if not isinstance(item, dict) or item.get("type") != "Feature":
        v.add(where, "must be a GeoJSON Feature: {\"type\": \"Feature\", \"geometry\": ..., \"properties\": ...}")
        return None
    properties = item.get("properties") or {}
    if not isinstance(properties, dict):
        v.add(f"{where}.properties", "must be an object")
        return None
    name = properties.get("name", properties.get("id"))
    good_name = isinstance(name, str) and bool(_NAME.match(name))
    if not good_name:
        v.add(f"{where}.properties.name", "each feature needs a name (or fiboa's id): 1-128 letters, digits, "
                                          "spaces, '.', '_' or '-', starting with a letter or digit")
    labels = properties.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(x, str) for k, x in labels.items()):
        v.add(f"{where}.properties.labels", "must be an object of string values")
        labels = {}
    try:
        boundary = geometry.parse(item.get("geometry"), f"{where}.geometry")
    except InvalidArgument as exc:
        v.items.extend(exc.violations)
        return None
    if not good_name:
        return None
    assert isinstance(name, str)  # noqa: S101 narrows a type: checked above
    return NewField(name=name, boundary=boundary, labels=labels, reason="imported")


def _check_apart(v: Violations, parsed: list[tuple[str, NewField]]) -> None:
    """Features of one file must not overlap each other (allow_overlap is about existing fields only)."""
    shapes = [new.boundary.shape for _, new in parsed if new.boundary is not None]
    if len(shapes) < 2:
        return
    tree = shapely.STRtree(shapes)
    left, right = tree.query(shapes, predicate="intersects")
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i < j:
            shared = geodesic_area(shapes[i].intersection(shapes[j]))
            if shared > geometry.TOLERANCE_M2:
                v.add(f"{parsed[j][0]}.geometry", f"overlaps {parsed[i][0]} by {shared:.1f} m²")
