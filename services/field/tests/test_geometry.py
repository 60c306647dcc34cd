"""Boundary checks and measures (services.field.geometry) against areas computed independently."""

from __future__ import annotations

import time
from typing import Any

import pytest
from shapely.geometry import Polygon

from chassis.errors import InvalidArgument
from services.field import geometry
from services.field.tests.shapes import (
    HAND_DRAWN,
    circle_ring,
    ellipsoid_rectangle_area,
    polygon,
    rect,
    rect_ring,
    spherical_area,
)


def refused(value: object) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        geometry.parse(value)
    return {v.field: v.description for v in caught.value.violations}


def test_a_rectangle_at_the_equator_has_the_area_of_the_ellipsoidal_zone() -> None:
    m = geometry.parse(rect(0, 0, 0.01, 0.01)).measures
    expected = ellipsoid_rectangle_area(0, 0, 0.01, 0.01)
    assert m.area_m2 == pytest.approx(expected, rel=1e-6)
    assert m.workable_m2 == m.area_m2
    assert geometry.hectares(m.area_m2) == pytest.approx(expected / 10_000, rel=1e-6)
    assert m.bbox == (0, 0, 0.01, 0.01)
    assert m.centroid == pytest.approx((0.005, 0.005))


def test_a_rectangle_in_europe_matches_the_closed_form_within_the_geodesic_edges_bulge() -> None:
    m = geometry.parse(rect(2.35, 48.85, 0.004, 0.003)).measures
    assert m.area_m2 == pytest.approx(ellipsoid_rectangle_area(2.35, 48.85, 2.354, 48.853), rel=1e-4)


def test_a_hand_drawn_field_matches_the_spherical_formula() -> None:
    m = geometry.parse(polygon(HAND_DRAWN)).measures
    assert m.area_m2 == pytest.approx(spherical_area(HAND_DRAWN), rel=5e-3)
    assert 40 < geometry.hectares(m.area_m2) < 60


def test_a_hole_is_unworkable_area() -> None:
    outer, hole = rect_ring(0, 0, 0.01, 0.01), rect_ring(0.002, 0.002, 0.002, 0.002)
    m = geometry.parse(polygon(outer, hole[::-1])).measures
    assert m.area_m2 == pytest.approx(ellipsoid_rectangle_area(0, 0, 0.01, 0.01), rel=1e-6)
    assert m.workable_m2 == pytest.approx(m.area_m2 - ellipsoid_rectangle_area(0.002, 0.002, 0.004, 0.004), rel=1e-6)
    assert m.perimeter_m > geometry.parse(rect(0, 0, 0.01, 0.01)).measures.perimeter_m  # the hole's edge counts


def test_a_multipolygon_measures_the_sum_of_its_parts() -> None:
    parts = [[rect_ring(0, 0, 0.01, 0.01)], [rect_ring(0.02, 0, 0.01, 0.01)]]
    m = geometry.parse({"type": "MultiPolygon", "coordinates": parts}).measures
    assert m.area_m2 == pytest.approx(2 * ellipsoid_rectangle_area(0, 0, 0.01, 0.01), rel=1e-6)
    assert m.bbox == (0, 0, 0.03, 0.01)


def test_rings_are_oriented_as_rfc_7946_says() -> None:
    clockwise_shell = rect_ring(0, 0, 0.01, 0.01)[::-1]
    counterclockwise_hole = rect_ring(0.002, 0.002, 0.002, 0.002)
    stored = geometry.parse(polygon(clockwise_shell, counterclockwise_hole)).geojson
    shell, hole = stored["coordinates"]
    assert Polygon(shell).exterior.is_ccw
    assert not Polygon(hole).exterior.is_ccw


def test_a_bowtie_names_the_crossing_position() -> None:
    assert list(refused(polygon([[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]))) == ["boundary.coordinates[0][0]"]


def test_an_unclosed_ring_names_its_last_position() -> None:
    problems = refused(polygon([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0.5], [0.1, 0.2]]))
    assert list(problems) == ["boundary.coordinates[0][5]"]
    assert "not closed" in problems["boundary.coordinates[0][5]"]


def test_a_ring_crossing_the_antimeridian_is_refused_with_advice() -> None:
    problems = refused(polygon([[179.9, 0], [-179.9, 0], [-179.9, 1], [179.9, 1], [179.9, 0]]))
    assert list(problems) == ["boundary.coordinates[0][1]"]
    assert "antimeridian" in problems["boundary.coordinates[0][1]"]
    # Cut at 180° into two polygons, it is accepted.
    cut = {"type": "MultiPolygon", "coordinates": [[rect_ring(179.9, 0, 0.1, 1)], [rect_ring(-180, 0, 0.1, 1)]]}
    assert geometry.parse(cut).measures.area_m2 == pytest.approx(2 * ellipsoid_rectangle_area(0, 0, 0.1, 1), rel=1e-4)


def test_bad_positions_are_named_one_by_one() -> None:
    assert list(refused(polygon([[0, 0], [1, 0], [1, 91], [0, 1], [0, 0]]))) == ["boundary.coordinates[0][2][1]"]
    assert list(refused(polygon([[0, 0], [181, 0], [1, 1], [0, 1], [0, 0]]))) == ["boundary.coordinates[0][1][0]"]
    with_text: list[Any] = [[0, 0], [1, 0], "x", [0, 1], [0, 0]]
    assert list(refused(polygon(with_text))) == ["boundary.coordinates[0][2]"]
    assert list(refused(polygon([[0, 0], [1, 0], [0, 0]]))) == ["boundary.coordinates[0]"]
    assert list(refused({"type": "Point", "coordinates": [0, 0]})) == ["boundary.type"]
    assert list(refused(polygon([[0, 0], [1, 0], [2, 0], [0, 0]]))) == ["boundary.coordinates[0]"]


def test_holes_must_be_inside_their_shell_and_parts_apart() -> None:
    outside = polygon(rect_ring(0, 0, 1, 1), rect_ring(2, 2, 1, 1))
    assert list(refused(outside)) == ["boundary.coordinates[1]"]
    overlapping = {"type": "MultiPolygon", "coordinates": [[rect_ring(0, 0, 1, 1)], [rect_ring(0.5, 0.5, 1, 1)]]}
    assert list(refused(overlapping)) == ["boundary.coordinates[1]"]


def test_a_10000_vertex_boundary_is_measured_in_bounds_of_time() -> None:
    ring = circle_ring(5.66, 51.98, 0.01, 10_000)
    started = time.perf_counter()
    boundary = geometry.parse(polygon(ring))
    assert time.perf_counter() - started < 2.0
    assert boundary.measures.vertex_count == 10_001
    assert boundary.measures.area_m2 == pytest.approx(spherical_area(ring), rel=5e-3)


def test_a_boundary_over_the_size_limit_is_refused_before_any_work() -> None:
    with pytest.raises(InvalidArgument) as caught:
        geometry.parse(polygon(circle_ring(0, 0, 0.01, 200)), max_positions=100)
    assert [v.field for v in caught.value.violations] == ["boundary.coordinates"]
