"""What the field service computes from boundaries, without the geometry libraries: measures, units and
the refusal of a geometry rule.

services.field.geometry (shapely, pyproj, numpy: ~25 MB RSS) is imported only by the code paths that
check, measure or compare shapes; reading fields and their stored measures needs only this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from chassis.errors import InvalidArgument, Violations

TOLERANCE_M2 = 1.0
"""Shared area below which two boundaries only touch: independently drawn neighbours share an edge
whose floating-point copies differ by micrometres, which must not count as an overlap."""

SQUARE_METERS_PER_HECTARE = 10_000.0


@dataclass(frozen=True)
class Measures:
    """What is computed from a boundary: geodesic areas and perimeter, its bbox, a centre point, its size."""

    area_m2: float
    workable_m2: float
    perimeter_m: float
    bbox: tuple[float, float, float, float]
    centroid: tuple[float, float]
    vertex_count: int


def hectares(square_meters: float) -> float:
    """m² to ha."""
    return square_meters / SQUARE_METERS_PER_HECTARE


def refuse(path: str, description: str) -> InvalidArgument:
    """An INVALID_ARGUMENT naming one path (for rules that need more than one geometry)."""
    v = Violations()
    v.add(path, description)
    return InvalidArgument(v.items)
