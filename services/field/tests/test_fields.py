"""Farms and fields over a real channel and PostgreSQL: measures, validation through the contract and the
servicer, overlaps, boundary history, split and merge, and tenancy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from chassis.testing import InProcess
from protomesh.field.v1 import field_pb2 as f
from protomesh.field.v1 import field_service_pb2 as pb
from protomesh.field.v1.field_service_pb2_grpc import FieldServiceStub
from services.field.tests.shapes import ellipsoid_rectangle_area, polygon, rect, rect_ring
from services.field.tests.support import member_of, new_org, struct
from tests.support.errors import async_failure, bad_fields, status_of


def ts(when: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when)
    return stamp


async def test_a_field_answers_its_geodesic_area_in_square_meters_and_hectares(field: InProcess[Any]) -> None:
    org = await new_org(field)
    made = await org.field("North", rect(5.0, 52.0, 0.004, 0.003), labels={"soil": "clay"})
    expected = ellipsoid_rectangle_area(5.0, 52.0, 5.004, 52.003)
    assert made.measures.area.square_meters == pytest.approx(expected, rel=1e-4)
    assert made.measures.area.hectares == pytest.approx(expected / 10_000, rel=1e-4)
    assert made.boundary_version == 1 and made.status == f.FIELD_STATUS_ACTIVE
    got = (await org.stub.GetField(pb.GetFieldRequest(field_id=made.field_id))).field
    assert got.boundary["type"] == "Polygon" and got.measures == made.measures
    farm = (await org.stub.GetFarm(pb.GetFarmRequest(farm_id=org.farm.farm_id))).farm
    assert farm.active_field_count == 1 and farm.timezone == "Europe/Amsterdam"


async def test_bad_geometry_is_named_by_ring_and_position(field: InProcess[Any]) -> None:
    org = await new_org(field)
    unclosed = polygon([[5, 52], [5.01, 52], [5.01, 52.01], [5, 52.01], [5, 52.005], [5.001, 52.001]])
    request = pb.CreateFieldRequest(farm_id=org.farm.farm_id, name="Bad", boundary=struct(unclosed))
    assert bad_fields(await async_failure(org.stub.CreateField, request)) == {"boundary.coordinates[0][5]"}
    bowtie = polygon([[5, 52], [5.01, 52.01], [5.01, 52], [5, 52.01], [5, 52]])
    request = pb.CreateFieldRequest(farm_id=org.farm.farm_id, name="", boundary=struct(bowtie))
    assert bad_fields(await async_failure(org.stub.CreateField, request)) >= {"name"}  # the contract first
    request.name = "Bowtie"
    assert bad_fields(await async_failure(org.stub.CreateField, request)) == {"boundary.coordinates[0][0]"}
    bad_zone = pb.CreateFarmRequest(name="Elsewhere", timezone="Mars/Olympus")
    assert bad_fields(await async_failure(org.stub.CreateFarm, bad_zone)) == {"timezone"}


async def test_an_overlap_is_refused_naming_the_other_field_and_the_area_unless_allowed(field: InProcess[Any]) -> None:
    org = await new_org(field)
    first = await org.field("West", rect(5.0, 52.0, 0.002, 0.002))
    request = pb.CreateFieldRequest(farm_id=org.farm.farm_id, name="East", boundary=struct(rect(5.001, 52.0, 0.002,
                                                                                                    0.002)))
    error = await async_failure(org.stub.CreateField, request)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "'West'" in str(error.details()) and first.field_id in str(error.details())
    shared = ellipsoid_rectangle_area(5.001, 52.0, 5.002, 52.002)
    info = {k: v for d in status_of(error).details for k, v in _error_info(d).items()}
    assert info["overlapping_field_id"] == first.field_id
    assert float(info["overlap_square_meters"]) == pytest.approx(shared, rel=1e-3)
    # Touching along an edge is no overlap.
    await org.field("Neighbour", rect(5.002, 52.0, 0.002, 0.002))
    request.allow_overlap = True
    allowed = await org.stub.CreateField(request)
    assert [o.field_id for o in allowed.overlaps] == [first.field_id, allowed.overlaps[1].field_id]
    assert allowed.overlaps[0].overlap_area.square_meters == pytest.approx(shared, rel=1e-3)


def _error_info(detail: Any) -> dict[str, str]:
    from google.rpc import error_details_pb2
    if not detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
        return {}
    info = error_details_pb2.ErrorInfo()
    detail.Unpack(info)
    return dict(info.metadata)


async def test_boundary_history_reads_the_boundary_at_a_past_time(field: InProcess[Any]) -> None:
    org = await new_org(field)
    made = await org.field("Home", rect(6.0, 52.0, 0.002, 0.002))
    before_change = datetime.now(UTC)
    changed = await org.stub.ChangeBoundary(pb.ChangeBoundaryRequest(
        field_id=made.field_id, boundary=struct(rect(6.0, 52.0, 0.004, 0.002))))
    assert changed.field.boundary_version == 2
    assert changed.field.measures.area.square_meters == pytest.approx(2 * made.measures.area.square_meters, rel=1e-3)
    then = await org.stub.GetBoundary(pb.GetBoundaryRequest(field_id=made.field_id, at_time=ts(before_change)))
    assert then.boundary.version == 1 and then.boundary.HasField("valid_to")
    assert then.boundary.measures.area == made.measures.area
    now = await org.stub.GetBoundary(pb.GetBoundaryRequest(field_id=made.field_id))
    assert now.boundary.version == 2 and not now.boundary.HasField("valid_to")
    versions = await org.stub.ListBoundaryVersions(pb.ListBoundaryVersionsRequest(field_id=made.field_id))
    assert [v.version for v in versions.versions] == [2, 1]
    assert versions.versions[1].valid_to == versions.versions[0].valid_from
    error = await async_failure(org.stub.GetBoundary, pb.GetBoundaryRequest(
        field_id=made.field_id, at_time=ts(before_change - timedelta(days=1))))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    late = pb.ChangeBoundaryRequest(field_id=made.field_id, boundary=struct(rect(6.0, 52.0, 0.003, 0.002)),
                                    valid_from=ts(before_change - timedelta(days=1)))
    assert bad_fields(await async_failure(org.stub.ChangeBoundary, late)) == {"valid_from"}


async def test_a_split_and_a_merge_keep_both_histories_linked(field: InProcess[Any]) -> None:
    org = await new_org(field)
    whole = await org.field("Whole", rect(7.0, 52.0, 0.004, 0.002))
    split = await org.stub.SplitField(pb.SplitFieldRequest(field_id=whole.field_id, parts=[
        pb.NewFieldPart(name="Whole A", boundary=struct(rect(7.0, 52.0, 0.002, 0.002))),
        pb.NewFieldPart(name="Whole B", boundary=struct(rect(7.002, 52.0, 0.002, 0.002)))]))
    a, b = split.parts
    assert split.field.status == f.FIELD_STATUS_ARCHIVED
    assert list(split.field.successor_ids) == [a.field_id, b.field_id]
    assert list(a.predecessor_ids) == [whole.field_id] == list(b.predecessor_ids)
    old = await org.stub.ListBoundaryVersions(pb.ListBoundaryVersionsRequest(field_id=whole.field_id))
    assert old.versions[0].HasField("valid_to")  # its history stays, closed at the split
    merged = await org.stub.MergeFields(pb.MergeFieldsRequest(field_ids=[a.field_id, b.field_id], name="Whole"))
    assert list(merged.field.predecessor_ids) == [a.field_id, b.field_id]
    assert all(list(m.successor_ids) == [merged.field.field_id] for m in merged.merged)
    assert merged.field.measures.area.square_meters == pytest.approx(whole.measures.area.square_meters, rel=1e-6)
    assert merged.field.boundary["type"] == "Polygon"  # the shared edge dissolved
    outside = pb.SplitFieldRequest(field_id=merged.field.field_id, parts=[
        pb.NewFieldPart(name="In", boundary=struct(rect(7.0, 52.0, 0.002, 0.002))),
        pb.NewFieldPart(name="Out", boundary=struct(rect(7.002, 52.0, 0.004, 0.002)))])
    assert bad_fields(await async_failure(org.stub.SplitField, outside)) == {"parts[1].boundary"}
    archived = pb.MergeFieldsRequest(field_ids=[a.field_id, merged.field.field_id], name="Again")
    assert bad_fields(await async_failure(org.stub.MergeFields, archived)) == {"field_ids[0]"}


async def test_lists_filter_and_page(field: InProcess[Any]) -> None:
    org = await new_org(field)
    for i in range(5):
        crop = "wheat" if i % 2 else "rye"
        await org.field(f"Plot {i}", rect(8.0 + 0.003 * i, 52.0, 0.002, 0.002), labels={"crop": crop})
    first = await org.stub.ListFields(pb.ListFieldsRequest(page_size=2, label="crop=rye"))
    assert [x.name for x in first.fields] == ["Plot 0", "Plot 2"] and first.page_info.total_size == 3
    rest = await org.stub.ListFields(pb.ListFieldsRequest(page_size=2, label="crop=rye",
                                                          page_token=first.page_info.next_page_token))
    assert [x.name for x in rest.fields] == ["Plot 4"] and not rest.page_info.next_page_token
    assert not first.fields[0].HasField("boundary")  # lists leave boundaries out


async def test_another_organization_sees_nothing(field: InProcess[Any]) -> None:
    org, other = await new_org(field), await new_org(field)
    made = await org.field("Private", rect(9.0, 52.0, 0.002, 0.002))
    for call, request in [(other.stub.GetField, pb.GetFieldRequest(field_id=made.field_id)),
                          (other.stub.GetFarm, pb.GetFarmRequest(farm_id=org.farm.farm_id)),
                          (other.stub.ArchiveField, pb.ArchiveFieldRequest(field_id=made.field_id)),
                          (other.stub.ListBoundaryVersions, pb.ListBoundaryVersionsRequest(field_id=made.field_id))]:
        assert (await async_failure(call, request)).code() == grpc.StatusCode.NOT_FOUND
    into_theirs = pb.CreateFieldRequest(farm_id=org.farm.farm_id, name="Sneaky")
    assert (await async_failure(other.stub.CreateField, into_theirs)).code() == grpc.StatusCode.NOT_FOUND
    assert not (await other.stub.ListFields(pb.ListFieldsRequest())).fields
    at_point = pb.FindFieldsAtPointRequest(longitude=9.001, latitude=52.001)
    assert not (await other.stub.FindFieldsAtPoint(at_point)).fields
    # The same land is free for another organization: overlaps are checked within one.
    await other.field("Theirs", rect(9.0, 52.0, 0.002, 0.002))


async def test_a_viewer_reads_but_cannot_write(field: InProcess[Any]) -> None:
    org = await new_org(field)
    viewer = field.stub(FieldServiceStub, principal=member_of(org.organization, "viewer"))
    assert (await viewer.ListFarms(pb.ListFarmsRequest())).farms[0].farm_id == org.farm.farm_id
    error = await async_failure(viewer.CreateFarm, pb.CreateFarmRequest(name="Nope"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and "fields.write" in str(error.details())


async def test_archiving_frees_the_land_and_the_name(field: InProcess[Any]) -> None:
    org = await new_org(field)
    made = await org.field("Old", rect(10.0, 52.0, 0.002, 0.002))
    archived = (await org.stub.ArchiveField(pb.ArchiveFieldRequest(field_id=made.field_id))).field
    assert archived.status == f.FIELD_STATUS_ARCHIVED and archived.HasField("archive_time")
    again = await org.field("Old", rect(10.0, 52.0, 0.002, 0.002))
    assert again.field_id != made.field_id
    change = pb.ChangeBoundaryRequest(field_id=made.field_id, boundary=struct(rect(11.0, 52.0, 0.001, 0.001)))
    assert (await async_failure(org.stub.ChangeBoundary, change)).code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_10000_vertex_boundary_round_trips(field: InProcess[Any]) -> None:
    from services.field.tests.shapes import circle_ring
    org = await new_org(field)
    made = await org.field("Round", polygon(circle_ring(12.0, 52.0, 0.01, 10_000)))
    assert made.measures.vertex_count == 10_001
    got = (await org.stub.GetField(pb.GetFieldRequest(field_id=made.field_id))).field
    assert len(got.boundary["coordinates"][0]) == 10_001
    inside = await org.stub.FindFieldsAtPoint(pb.FindFieldsAtPointRequest(longitude=12.0, latitude=52.0))
    assert [x.field_id for x in inside.fields] == [made.field_id]


async def test_holes_in_a_stored_field(field: InProcess[Any]) -> None:
    org = await new_org(field)
    made = await org.field("Pond", polygon(rect_ring(13.0, 52.0, 0.01, 0.01), rect_ring(13.004, 52.004, 0.002, 0.002)))
    hole = ellipsoid_rectangle_area(13.004, 52.004, 13.006, 52.006)
    assert made.measures.area.square_meters - made.measures.workable_area.square_meters == pytest.approx(hole, rel=1e-3)


WEIRD_BOUNDARIES: list[dict[str, Any]] = [
    {}, {"type": "Polygon"}, {"type": "Polygon", "coordinates": "x"}, {"type": "Polygon", "coordinates": []},
    {"type": "Polygon", "coordinates": [[]]}, {"type": "Polygon", "coordinates": [["a", "b", "c", "d"]]},
    {"type": "Polygon", "coordinates": [[[True, False], [1, 0], [1, 1], [True, False]]]},
    {"type": "Polygon", "coordinates": [[[0, 0, 0, 0], [1, 0], [1, 1], [0, 0]]]},
    {"type": "Polygon", "coordinates": [[{"lon": 0}, [1, 0], [1, 1], [0, 0]]]},
    {"type": "Polygon", "coordinates": [[[[0, 0]], [1, 0], [1, 1], [0, 0]]]},
    {"type": "Polygon", "coordinates": [[[1e300, 0], [1, 0], [1, 1], [1e300, 0]]]},
    {"type": "MultiPolygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
    {"type": "MultiPolygon", "coordinates": [None]}, {"type": "MultiPolygon", "coordinates": [[None]]},
    {"type": "Polygon", "coordinates": [[[0, 0], [0, 0], [0, 0], [0, 0]]]},
    {"type": "GeometryCollection", "geometries": []}, {"type": 5, "coordinates": [[[0, 0]]]},
]


async def test_any_malformed_boundary_is_a_400_naming_the_boundary(field: InProcess[Any]) -> None:
    org = await new_org(field)
    for boundary in WEIRD_BOUNDARIES:
        request = pb.CreateFieldRequest(farm_id=org.farm.farm_id, name="Weird", boundary=struct(boundary))
        named = bad_fields(await async_failure(org.stub.CreateField, request))
        assert named and all(n.startswith("boundary") for n in named), (boundary, named)
