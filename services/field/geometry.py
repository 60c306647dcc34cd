"""Boundaries as real geometry: GeoJSON Polygon/MultiPolygon checked, oriented (RFC 7946) and measured.

Every problem is named by its JSON path in the request (`boundary.coordinates[0][5]`), so a caller can
find the bad ring or position. The geometry is checked in the longitude/latitude plane (shapely/GEOS):
that is how GeoJSON is drawn and how RFC 7946 defines ring orientation. Measures are geodesic, on the
WGS84 ellipsoid (pyproj's Geod, Karney's algorithm): area and perimeter in m² / ha and metres.

Antimeridian: a ring whose consecutive longitudes jump by more than 180° crosses it; such a boundary is
refused with the position named, and the caller is asked to cut it at ±180° into a MultiPolygon
(RFC 7946 section 3.1.9 asks writers to cut, so readers need not guess which way a ring goes round).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry import LinearRing, MultiPolygon, Polygon, mapping
from shapely.geometry.polygon import orient
from shapely.ops import nearest_points
from shapely.validation import explain_validity

from chassis.errors import Violations
from services.field.measures import (  # noqa: F401 re-exported: geometry's callers use them from here
    SQUARE_METERS_PER_HECTARE,
    TOLERANCE_M2,
    Measures,
    hectares,
    refuse,
)

GEOD = Geod(ellps="WGS84")
"""The WGS84 ellipsoid every area, perimeter and distance is computed on."""

MAX_POSITIONS = 50_000
"""Most positions one boundary may have (a surveyed field rarely has more than a few thousand)."""

Shape: TypeAlias = Polygon | MultiPolygon


@dataclass(frozen=True)
class Boundary:
    """A checked boundary: its GeoJSON (rings closed and oriented), its shape and its measures."""

    geojson: dict[str, Any]
    shape: Shape
    measures: Measures

    @property
    def wkb(self) -> bytes:
        """The shape as WKB, which the spatial queries load much faster than GeoJSON."""
        return bytes(shapely.to_wkb(self.shape))


def parse(value: Any, path: str = "boundary", *, max_positions: int = MAX_POSITIONS) -> Boundary:
    """Check a GeoJSON Polygon or MultiPolygon and measure it; InvalidArgument names every problem found."""
    v = Violations()
    shape = _shape(v, value, path, max_positions)
    v.raise_if_any()
    assert shape is not None  # noqa: S101 narrows a type for mypy: _shape returns None only with violations
    return Boundary(geojson=as_geojson(shape), shape=shape, measures=measure(shape))


def measure(shape: Shape) -> Measures:
    """Geodesic measures of a valid, oriented shape."""
    workable = GEOD.geometry_area_perimeter(shape)[0]
    gross = sum(abs(GEOD.polygon_area_perimeter(*_lon_lat(p.exterior))[0]) for p in _parts(shape))
    # Every ring's length: a hole's edge is an edge of the field too (pyproj's own perimeter leaves holes out).
    perimeter = sum(GEOD.line_length(*_lon_lat(ring)) for p in _parts(shape) for ring in (p.exterior, *p.interiors))
    centre = shape.centroid
    if not shape.covers(centre):  # in a hole or outside a crescent: a point that is surely inside
        centre = shape.representative_point()
    positions = sum(len(p.exterior.coords) + sum(len(h.coords) for h in p.interiors) for p in _parts(shape))
    return Measures(area_m2=gross, workable_m2=abs(workable), perimeter_m=perimeter,
                    bbox=tuple(shape.bounds), centroid=(centre.x, centre.y), vertex_count=positions)  # type: ignore[arg-type]


def geodesic_area(shape: Any) -> float:
    """Area in m² of any polygonal shape (an intersection or a difference); 0 for lines and points."""
    if shape.is_empty or shape.area == 0:
        return 0.0
    return abs(GEOD.geometry_area_perimeter(shape)[0])


def distance_m(shape: Shape, lon: float, lat: float) -> float:
    """Geodesic distance from a point to a shape, 0 inside: to the nearest point of its edges."""
    point = shapely.Point(lon, lat)
    if shape.covers(point):
        return 0.0
    nearest = nearest_points(shape.boundary, point)[0]
    return float(GEOD.inv(lon, lat, nearest.x, nearest.y)[2])


def from_wkb(data: bytes) -> Shape:
    """A stored shape back from its WKB."""
    shape = shapely.from_wkb(data)
    assert isinstance(shape, Polygon | MultiPolygon)  # noqa: S101 narrows a type: only boundaries are stored
    return shape


# --- checking -----------------------------------------------------------------------------------


def _shape(v: Violations, value: Any, path: str, max_positions: int) -> Shape | None:
    if not isinstance(value, dict):
        v.add(path, "must be a GeoJSON geometry object: {\"type\": \"Polygon\", \"coordinates\": [...]}")
        return None
    kind, coordinates = value.get("type"), value.get("coordinates")
    if kind not in ("Polygon", "MultiPolygon"):
        v.add(f"{path}.type", f"must be \"Polygon\" or \"MultiPolygon\", not {kind!r}")
        return None
    if not isinstance(coordinates, list) or not coordinates:
        v.add(f"{path}.coordinates", f"a {kind} needs a non-empty array of "
                                     f"{'rings' if kind == 'Polygon' else 'polygons (arrays of rings)'}")
        return None
    polygons: list[tuple[str, list[Any]]] = (
        [(f"{path}.coordinates", coordinates)] if kind == "Polygon"
        else [(f"{path}.coordinates[{i}]", p) for i, p in enumerate(coordinates)])
    total = _count_positions(coordinates, kind)
    if total > max_positions:
        v.add(f"{path}.coordinates", f"has {total} positions; a boundary may have at most {max_positions}: "
                                     "simplify it")
        return None
    parts = [_polygon(v, rings, where) for where, rings in polygons]
    if v.items or not all(parts):
        return None
    checked = [p for p in parts if p is not None]
    if len(checked) > 1:
        _check_parts_apart(v, checked, [where for where, _ in polygons])
    if v.items:
        return None
    shape: Shape = checked[0] if kind == "Polygon" else MultiPolygon(checked)
    return _oriented(shape)


def _count_positions(coordinates: list[Any], kind: str) -> int:
    polygons = [coordinates] if kind == "Polygon" else coordinates
    return sum(len(ring) for rings in polygons if isinstance(rings, list)
               for ring in rings if isinstance(ring, list))


def _polygon(v: Violations, rings: Any, path: str) -> Polygon | None:
    """One polygon: its rings each valid, its holes inside its shell and apart from each other."""
    if not isinstance(rings, list) or not rings:
        v.add(path, "a polygon is a non-empty array of rings: the outer ring first, then its holes")
        return None
    arrays = [_ring(v, ring, f"{path}[{i}]") for i, ring in enumerate(rings)]
    if any(a is None for a in arrays):
        return None
    shell, holes = arrays[0], arrays[1:]
    assert shell is not None  # noqa: S101 narrows a type: checked on the line above
    outer = Polygon(shell)
    for i, hole in enumerate(holes, start=1):
        assert hole is not None  # noqa: S101 narrows a type: checked above
        inner = Polygon(hole)
        if not outer.contains(inner):
            v.add(f"{path}[{i}]", "this hole is not inside its polygon's outer ring (ring 0): a hole must lie "
                                  "within it, touching it at single points at most")
    for (i, a), (j, b) in _pairs(holes):
        if geodesic_area(Polygon(a).intersection(Polygon(b))) > 0:
            v.add(f"{path}[{j}]", f"this hole overlaps hole {i} of the same polygon: merge them into one")
    if v.items:
        return None
    polygon = Polygon(shell, holes)
    if not polygon.is_valid:  # what the ring-by-ring checks cannot see (a hole touching its shell along a line)
        v.add(path, f"invalid polygon: {_explained(polygon)}")
        return None
    return polygon


def _pairs(items: Sequence[Any]) -> list[tuple[tuple[int, Any], tuple[int, Any]]]:
    numbered = list(enumerate(items, start=1))
    return [(a, b) for n, a in enumerate(numbered) for b in numbered[n + 1:]]


def _ring(v: Violations, ring: Any, path: str) -> np.ndarray | None:
    """One ring as an (n, 2) array, or None with the problem named: positions, closure, antimeridian,
    self-intersection, area."""
    if not isinstance(ring, list):
        v.add(path, "a ring is an array of [longitude, latitude] positions")
        return None
    if len(ring) < 4:
        v.add(path, f"a ring needs at least 4 positions (a triangle, closed by repeating the first); it has "
                    f"{len(ring)}")
        return None
    array = _positions(v, ring, path)
    if array is None:
        return None
    if not np.array_equal(array[0], array[-1]):
        v.add(f"{path}[{len(ring) - 1}]", f"the ring is not closed: its last position {_pos(array[-1])} must "
                                          f"repeat its first {_pos(array[0])}")
        return None
    jumps = np.nonzero(np.abs(np.diff(array[:, 0])) > 180)[0]
    if jumps.size:
        j = int(jumps[0])
        v.add(f"{path}[{j + 1}]", f"the ring crosses the antimeridian between positions {j} and {j + 1} "
                                  f"(longitude {array[j, 0]:g} to {array[j + 1, 0]:g}); cut the boundary at "
                                  "±180° into a MultiPolygon with one polygon on each side (RFC 7946, 3.1.9)")
        return None
    if _collinear(array):
        v.add(path, "the ring encloses no area: its positions are all on one line (or fewer than 3 distinct)")
        return None
    if not LinearRing(array).is_simple:
        v.add(_crossing(array, path), "the ring crosses itself (a bowtie or a loop): an edge from this position "
                                      "meets another edge of the same ring; redraw it so no edges cross")
        return None
    return array


def _collinear(array: np.ndarray) -> bool:
    """Whether every position lies on one line through the first (so the ring has no area), in O(n): the
    position farthest from the first fixes the line, and every cross product with it must vanish."""
    offsets = array - array[0]
    far = offsets[int(np.argmax(np.abs(offsets).sum(axis=1)))]
    cross = offsets[:, 0] * far[1] - offsets[:, 1] * far[0]
    return bool(np.all(np.abs(cross) <= 1e-18)) or not far.any()


_NUMBER = (int, float)


def _positions(v: Violations, ring: list[Any], path: str) -> np.ndarray | None:
    """The ring's [lon, lat] pairs (an altitude is allowed and dropped), each checked for range."""
    try:
        array = np.asarray(ring, dtype=float)
        regular = array.ndim == 2 and array.shape[1] in (2, 3) and all(
            isinstance(x, _NUMBER) and not isinstance(x, bool) for position in ring for x in position)
    except (TypeError, ValueError):
        regular = False
    if not regular:  # the slow path only to name the first bad position
        for j, position in enumerate(ring):
            if not (isinstance(position, list) and len(position) in (2, 3)
                    and all(isinstance(x, _NUMBER) and not isinstance(x, bool) for x in position)):
                v.add(f"{path}[{j}]", "a position is [longitude, latitude] (numbers, an optional altitude third)")
                return None
        return None
    array = array[:, :2]
    if not np.isfinite(array).all():
        j = int(np.nonzero(~np.isfinite(array).all(axis=1))[0][0])
        v.add(f"{path}[{j}]", "longitude and latitude must be finite numbers")
        return None
    bad_lon = np.nonzero(np.abs(array[:, 0]) > 180)[0]
    bad_lat = np.nonzero(np.abs(array[:, 1]) > 90)[0]
    if bad_lon.size:
        j = int(bad_lon[0])
        v.add(f"{path}[{j}][0]", f"longitude {array[j, 0]:g} is out of range: -180 to 180 (GeoJSON puts "
                                 "longitude first)")
    if bad_lat.size:
        j = int(bad_lat[0])
        v.add(f"{path}[{j}][1]", f"latitude {array[j, 1]:g} is out of range: -90 to 90 (GeoJSON puts latitude "
                                 "second)")
    return None if bad_lon.size or bad_lat.size else array


def _crossing(array: np.ndarray, path: str) -> str:
    """The path of the first position whose edge crosses another edge of the ring (not its neighbours)."""
    segments = np.asarray(shapely.linestrings(np.stack([array[:-1], array[1:]], axis=1)), dtype=object)
    tree = shapely.STRtree(segments)
    left, right = tree.query(segments, predicate="intersects")
    n = len(segments)
    for i, j in sorted(zip(left.tolist(), right.tolist(), strict=True)):
        if j <= i:
            continue
        adjacent = j == i + 1 or (i == 0 and j == n - 1)
        if not adjacent or shapely.intersection(segments[i], segments[j]).geom_type != "Point":
            return f"{path}[{i}]"
    return path


def _check_parts_apart(v: Violations, parts: list[Polygon], paths: list[str]) -> None:
    """MultiPolygon parts may touch at points but must not overlap (else it is not a valid MultiPolygon)."""
    tree = shapely.STRtree(parts)
    left, right = tree.query(parts, predicate="intersects")
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i < j and geodesic_area(parts[i].intersection(parts[j])) > 0:
            v.add(paths[j], f"this polygon overlaps polygon {i} of the MultiPolygon: merge them into one polygon")
    if not v.items:
        shape = MultiPolygon(parts)
        if not shape.is_valid:
            v.add(paths[0].rsplit("[", 1)[0], f"invalid MultiPolygon: {_explained(shape)}")


def _explained(shape: Shape) -> str:
    return re.sub(r"\[([-\d.e]+) ([-\d.e]+)\]", r"near (\1, \2)", explain_validity(shape))


def _oriented(shape: Shape) -> Shape:
    """RFC 7946: outer rings counterclockwise, holes clockwise."""
    if isinstance(shape, Polygon):
        return orient(shape, sign=1.0)
    return MultiPolygon([orient(p, sign=1.0) for p in shape.geoms])


def as_geojson(shape: Any) -> dict[str, Any]:
    """The GeoJSON of a shapely geometry, as plain lists (what jsonb and a Struct hold)."""
    data = mapping(shape)
    return {"type": data["type"], "coordinates": _lists(data["coordinates"])}


def _lists(value: Any) -> Any:
    if isinstance(value, tuple | list):
        if value and isinstance(value[0], float | int):
            return [float(x) for x in value]
        return [_lists(x) for x in value]
    return value


def _parts(shape: Shape) -> list[Polygon]:
    return [shape] if isinstance(shape, Polygon) else list(shape.geoms)


def _lon_lat(ring: LinearRing) -> tuple[list[float], list[float]]:
    xs, ys = ring.xy
    return list(xs), list(ys)


def _pos(position: np.ndarray) -> str:
    return f"[{position[0]:g}, {position[1]:g}]"


def shape_of(geojson: dict[str, Any]) -> Shape:
    """The shape of GeoJSON this module wrote (trusted: no checks)."""
    shape = shapely.geometry.shape(geojson)
    assert isinstance(shape, Polygon | MultiPolygon)  # noqa: S101 narrows a type: only boundaries are stored
    return shape


def bbox_polygon(west: float, south: float, east: float, north: float) -> Polygon:
    """A bounding box as a polygon (for intersection tests)."""
    return shapely.box(west, south, east, north)


def degrees_around(lat: float, meters: float) -> tuple[float, float]:
    """How many degrees of longitude and latitude `meters` span at least near `lat`, to bound a search box.

    Generous on purpose (the exact geodesic distance filters afterwards): a degree of latitude is at
    least 110.5 km, a degree of longitude at least that times cos(latitude).
    """
    dlat = meters / 110_500.0
    cos_lat = math.cos(math.radians(min(89.9, abs(lat) + dlat)))
    return min(360.0, dlat / max(cos_lat, 1e-6)), dlat
