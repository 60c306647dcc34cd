"""Spatial queries, GeoJSON export and import, seasons, activities and the domain events, over a real channel
and PostgreSQL (the outbox read back from the service's own schema)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from chassis.testing import InProcess
from protomesh.events.v1 import envelope_pb2
from protomesh.field.v1 import events_pb2
from protomesh.field.v1 import field_pb2 as f
from protomesh.field.v1 import field_service_pb2 as pb
from services.field.tests.shapes import ellipsoid_rectangle_area, polygon, rect, rect_ring
from services.field.tests.support import Org, new_org, struct
from tests.support.errors import async_failure, bad_fields


async def three_fields(org: Org) -> tuple[f.Field, f.Field, f.Field]:
    """A holed field, its neighbour to the east and one 5 km north."""
    holed = await org.field("Holed", polygon(rect_ring(4.0, 51.0, 0.01, 0.01), rect_ring(4.004, 51.004, 0.002, 0.002)))
    east = await org.field("East", rect(4.01, 51.0, 0.01, 0.01))
    far = await org.field("Far", rect(4.0, 51.045, 0.01, 0.01))
    return holed, east, far


async def test_point_bbox_polygon_and_nearest_queries(field: InProcess[Any]) -> None:
    org = await new_org(field)
    holed, _, _ = await three_fields(org)
    at = await org.stub.FindFieldsAtPoint(pb.FindFieldsAtPointRequest(longitude=4.001, latitude=51.001))
    assert [x.field_id for x in at.fields] == [holed.field_id]
    in_hole = await org.stub.FindFieldsAtPoint(pb.FindFieldsAtPointRequest(longitude=4.005, latitude=51.005))
    assert not in_hole.fields
    on_edge = await org.stub.FindFieldsAtPoint(pb.FindFieldsAtPointRequest(longitude=4.01, latitude=51.005))
    assert {x.name for x in on_edge.fields} == {"Holed", "East"}
    box = f.BoundingBox(min_longitude=3.9, min_latitude=50.9, max_longitude=4.015, max_latitude=51.02)
    boxed = await org.stub.FindFieldsIntersecting(pb.FindFieldsIntersectingRequest(bbox=box, page_size=1))
    assert [x.name for x in boxed.fields] == ["East"] and boxed.page_info.total_size == 2
    rest = await org.stub.FindFieldsIntersecting(pb.FindFieldsIntersectingRequest(
        bbox=box, page_size=1, page_token=boxed.page_info.next_page_token))
    assert [x.name for x in rest.fields] == ["Holed"]
    triangle = polygon([[4.0045, 51.0045], [4.0055, 51.0045], [4.005, 51.0055], [4.0045, 51.0045]])
    in_the_hole = await org.stub.FindFieldsIntersecting(pb.FindFieldsIntersectingRequest(geometry=struct(triangle)))
    assert not in_the_hole.fields  # inside the hole's bounding box and the field's, but on no land of it
    near = await org.stub.FindNearestFields(pb.FindNearestFieldsRequest(longitude=4.015, latitude=51.015,
                                                                         max_distance_meters=10_000))
    assert [n.field.name for n in near.fields] == ["East", "Holed", "Far"]
    assert near.fields[0].distance_meters == pytest.approx(555.9, abs=5)  # 0.005° of latitude north of East
    bounded = await org.stub.FindNearestFields(pb.FindNearestFieldsRequest(longitude=4.015, latitude=51.015,
                                                                           max_distance_meters=1_000, limit=1))
    assert [n.field.name for n in bounded.fields] == ["East"]
    wrong = pb.FindFieldsIntersectingRequest(bbox=f.BoundingBox(min_longitude=170, max_longitude=-170))
    assert bad_fields(await async_failure(org.stub.FindFieldsIntersecting, wrong)) == {"bbox"}


async def test_export_then_import_into_another_farm(field: InProcess[Any]) -> None:
    org = await new_org(field)
    holed, _, _ = await three_fields(org)
    exported = (await org.stub.ExportFields(pb.ExportFieldsRequest(farm_id=org.farm.farm_id))).feature_collection
    features = {x["properties"]["name"]: x for x in exported["features"]}
    assert set(features) == {"Holed", "East", "Far"}
    props = features["Holed"]["properties"]
    assert props["id"] == holed.field_id and props["area"] == pytest.approx(holed.measures.area.hectares)
    assert props["perimeter"] == pytest.approx(holed.measures.perimeter_meters)
    assert props["determination_datetime"].startswith(str(holed.boundary_valid_from.ToDatetime().year))
    other = await new_org(field)
    imported = await other.stub.ImportFields(pb.ImportFieldsRequest(
        farm_id=other.farm.farm_id, feature_collection=struct(dict(exported))))
    assert sorted(x.name for x in imported.fields) == ["East", "Far", "Holed"]
    got = {x.name: x for x in imported.fields}
    assert got["Holed"].measures.workable_area == holed.measures.workable_area


async def test_an_import_with_bad_features_names_each_and_writes_none(field: InProcess[Any]) -> None:
    org = await new_org(field)
    await org.field("Existing", rect(3.0, 50.0, 0.002, 0.002))
    good = {"type": "Feature", "properties": {"name": "Good"}, "geometry": rect(3.01, 50.0, 0.002, 0.002)}
    unclosed = {"type": "Feature", "properties": {"name": "Open"},
                "geometry": polygon([[3.02, 50], [3.03, 50], [3.03, 50.01], [3.02, 50.01]])}
    nameless = {"type": "Feature", "properties": {}, "geometry": rect(3.04, 50.0, 0.002, 0.002)}
    on_existing = {"type": "Feature", "properties": {"name": "Clash"}, "geometry": rect(3.001, 50.0, 0.002, 0.002)}
    point = {"type": "Feature", "properties": {"name": "Point"}, "geometry": {"type": "Point", "coordinates": [3, 50]}}
    collection = {"type": "FeatureCollection", "features": [good, unclosed, nameless, point, on_existing]}
    error = await async_failure(org.stub.ImportFields, pb.ImportFieldsRequest(
        farm_id=org.farm.farm_id, feature_collection=struct(collection)))
    assert bad_fields(error) == {"feature_collection.features[1].geometry.coordinates[0][3]",
                                 "feature_collection.features[2].properties.name",
                                 "feature_collection.features[3].geometry.type"}
    collection["features"] = [good, on_existing]
    error = await async_failure(org.stub.ImportFields, pb.ImportFieldsRequest(
        farm_id=org.farm.farm_id, feature_collection=struct(collection)))
    assert bad_fields(error) == {"feature_collection.features[1].geometry"}
    assert "'Existing'" in str(error.details())
    names = [x.name for x in (await org.stub.ListFields(pb.ListFieldsRequest())).fields]
    assert names == ["Existing"]  # all or nothing: "Good" was not written either


async def test_seasons_and_activities_with_yield_per_hectare(field: InProcess[Any]) -> None:
    org = await new_org(field)
    made = await org.field("Wheat", rect(2.0, 50.0, 0.01, 0.01))
    season = (await org.stub.CreateSeason(pb.CreateSeasonRequest(
        field_id=made.field_id, crop="winter wheat", variety="Julius", planned_planting_date="2026-10-10",
        planned_harvest_date="2027-07-30"))).season
    started = (await org.stub.RecordSeason(pb.RecordSeasonRequest(season_id=season.season_id,
                                                                  actual_planting_date="2026-10-12"))).season
    assert started.actual_planting_date == "2026-10-12" and started.yield_per_hectare == 0
    # The boundary valid on the harvest day is today's: the field was created now.
    from datetime import UTC, datetime
    today = datetime.now(UTC).date().isoformat()
    harvested = (await org.stub.RecordSeason(pb.RecordSeasonRequest(
        season_id=season.season_id, actual_harvest_date=today, yield_amount=900, yield_unit="t"))).season
    hectares = ellipsoid_rectangle_area(2.0, 50.0, 2.01, 50.01) / 10_000
    assert harvested.harvested_area.hectares == pytest.approx(hectares, rel=1e-4)
    assert harvested.yield_per_hectare == pytest.approx(900 / hectares, rel=1e-4)
    no_unit = pb.RecordSeasonRequest(season_id=season.season_id, actual_harvest_date=today, yield_amount=1)
    assert bad_fields(await async_failure(org.stub.RecordSeason, no_unit)) == {"yield_unit"}
    backwards = pb.CreateSeasonRequest(field_id=made.field_id, crop="rye", planned_planting_date="2026-10-10",
                                       planned_harvest_date="2026-01-01")
    assert bad_fields(await async_failure(org.stub.CreateSeason, backwards)) == {"planned_harvest_date"}
    sprayed = (await org.stub.CreateActivity(pb.CreateActivityRequest(
        field_id=made.field_id, type=f.ACTIVITY_TYPE_SPRAYING, date="2027-04-02", quantity=2.5, unit="l/ha",
        geometry=struct(rect(2.001, 50.001, 0.002, 0.002))))).activity
    assert sprayed.type == f.ACTIVITY_TYPE_SPRAYING and sprayed.geometry["type"] == "Polygon"
    outside = pb.CreateActivityRequest(field_id=made.field_id, type=f.ACTIVITY_TYPE_TILLAGE, date="2027-04-02",
                                       geometry=struct(rect(2.009, 50.0, 0.01, 0.01)))
    assert bad_fields(await async_failure(org.stub.CreateActivity, outside)) == {"geometry"}
    listed = await org.stub.ListActivities(pb.ListActivitiesRequest(field_id=made.field_id))
    assert [a.activity_id for a in listed.activities] == [sprayed.activity_id]
    seasons = await org.stub.ListSeasons(pb.ListSeasonsRequest(field_id=made.field_id))
    assert [s.season_id for s in seasons.seasons] == [season.season_id]
    unknown = pb.ListSeasonsRequest(field_id="00000000-0000-4000-8000-00000000dead")
    assert (await async_failure(org.stub.ListSeasons, unknown)).code() == grpc.StatusCode.NOT_FOUND


async def test_domain_events_go_through_the_outbox_with_the_organization(field: InProcess[Any]) -> None:
    org = await new_org(field)
    made = await org.field("Evented", rect(1.0, 50.0, 0.002, 0.002))
    await org.stub.ChangeBoundary(pb.ChangeBoundaryRequest(field_id=made.field_id,
                                                           boundary=struct(rect(1.0, 50.0, 0.004, 0.002))))
    await org.stub.ArchiveField(pb.ArchiveFieldRequest(field_id=made.field_id))
    async with field.replica.db.connection() as conn:
        cursor = await conn.execute("SELECT envelope FROM outbox ORDER BY seq")
        envelopes = [envelope_pb2.Envelope.FromString(bytes(r[0])) for r in await cursor.fetchall()]
    mine = [e for e in envelopes if e.subject == f"fields/{made.field_id}"]
    assert [e.type.rsplit(".", 1)[-1] for e in mine] == ["FieldCreated", "BoundaryChanged", "FieldArchived"]
    assert {e.organization_id for e in mine} == {org.organization}
    changed = events_pb2.BoundaryChanged()
    mine[1].data.Unpack(changed)
    assert changed.new_area.square_meters == pytest.approx(2 * changed.old_area.square_meters, rel=1e-3)
