"""Boundaries for the tests, and areas computed without pyproj to check the service's against."""

from __future__ import annotations

import itertools
import math
from typing import Any

WGS84_A = 6_378_137.0
WGS84_F = 1 / 298.257223563
WGS84_B = WGS84_A * (1 - WGS84_F)
WGS84_E = math.sqrt(WGS84_F * (2 - WGS84_F))


def rect_ring(west: float, south: float, width: float, height: float) -> list[list[float]]:
    """A closed, counterclockwise lon/lat rectangle ring."""
    east, north = west + width, south + height
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


def polygon(*rings: list[list[float]]) -> dict[str, Any]:
    """A GeoJSON Polygon."""
    return {"type": "Polygon", "coordinates": [list(r) for r in rings]}


def rect(west: float, south: float, width: float, height: float) -> dict[str, Any]:
    """A GeoJSON Polygon of one rectangle."""
    return polygon(rect_ring(west, south, width, height))


def ellipsoid_rectangle_area(west: float, south: float, east: float, north: float) -> float:
    """Area in m² of the lon/lat rectangle bounded by two meridians and two parallels on the WGS84 ellipsoid,
    by the closed form of an ellipsoidal zone (the authalic latitude integral), no geodesic library."""

    def q(lat: float) -> float:
        s = math.sin(math.radians(lat))
        return s / (1 - WGS84_E**2 * s * s) + math.log((1 + WGS84_E * s) / (1 - WGS84_E * s)) / (2 * WGS84_E)

    return WGS84_B**2 / 2 * math.radians(east - west) * (q(north) - q(south))


def spherical_area(ring: list[list[float]], radius: float = 6_371_007.181) -> float:
    """Area in m² of a ring on the sphere of the ellipsoid's authalic radius (Chamberlain and Duquette's
    line-integral formula): within a few tenths of a percent of the ellipsoidal area."""
    total = 0.0
    for (lon1, lat1), (lon2, lat2) in itertools.pairwise(ring):
        total += math.radians(lon2 - lon1) * (2 + math.sin(math.radians(lat1)) + math.sin(math.radians(lat2)))
    return abs(total) * radius * radius / 2


HAND_DRAWN = [  # an irregular field outline near Wageningen (NL), drawn by hand, counterclockwise
    [5.6601, 51.9801], [5.6655, 51.9797], [5.6702, 51.9810], [5.6711, 51.9838], [5.6690, 51.9861],
    [5.6652, 51.9872], [5.6618, 51.9866], [5.6597, 51.9849], [5.6589, 51.9826], [5.6601, 51.9801],
]


def circle_ring(lon: float, lat: float, radius_deg: float, n: int) -> list[list[float]]:
    """A closed ring of n + 1 positions on a small lon/lat circle."""
    ring = [[lon + radius_deg * math.cos(2 * math.pi * i / n), lat + radius_deg * math.sin(2 * math.pi * i / n)]
            for i in range(n)]
    return [*ring, ring[0]]
