"""FieldService: farms, fields and their boundary history, spatial queries, GeoJSON import/export, seasons and
activities (proto/protomesh/field/v1/field_service.proto)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import grpc
from google.protobuf import json_format, struct_pb2

from chassis import Replica
from chassis.authz import creating_organization
from chassis.errors import FailedPrecondition, InvalidArgument, Violations
from chassis.idempotency import idempotent
from chassis.protos import to_datetime
from chassis.resources import Key, Keyset, UpdateMask, found, optional_id, resource_id
from chassis.standard_rpcs import HealthRpcs
from protomesh.field.v1 import field_pb2, field_service_pb2_grpc
from protomesh.field.v1 import field_service_pb2 as pb
from services.field.deps import FieldDeps
from services.field.measures import refuse
from services.field.messages import (
    ACTIVITY_TYPE_NAMES,
    STATUS_NAMES,
    activity_message,
    area,
    farm_message,
    field_message,
    season_message,
    struct,
    version_message,
)
from services.field.store import FieldFilter, NewField, Part, Store
from services.field.store.overlaps import Overlap

if TYPE_CHECKING:
    from services.field import geometry

logger = logging.getLogger(__name__)

FARMS = Keyset.newest_first("farms")
FIELDS = Keyset("fields", (Key("name", str), Key("id", uuid.UUID)))
VERSIONS = Keyset("boundary_versions", (Key("version", int),), descending=True)
SEASONS = Keyset.newest_first("seasons")
ACTIVITIES = Keyset.newest_first("activities")
_MASK = UpdateMask.of(pb.UpdateFieldRequest, resource=field_pb2.Field)
EXPORT_LIMIT = 2000
"""Most fields one export answers: a few MB for simple fields, more for surveyed ones with hundreds of
positions each (a gRPC client may need a larger receive limit than its 4 MB default); a larger organization
exports farm by farm."""


def _geojson(value: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(value)


def _overlap_messages(found_: list[Overlap]) -> list[field_pb2.OverlapConflict]:
    return [field_pb2.OverlapConflict(field_id=str(o.field_id), name=o.name, overlap_area=area(o.overlap_m2))
            for o in found_]


def _day(v: Violations, text: str, path: str) -> date | None:
    """A YYYY-MM-DD date (the contract checked its shape) that exists on the calendar."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        v.add(path, f"{text!r} is not a date on the calendar")
        return None


class FieldServicer(HealthRpcs, field_service_pb2_grpc.FieldServiceServicer):
    """Implements protomesh.field.v1.FieldService over PostgreSQL; geometry by shapely and pyproj."""

    def __init__(self, replica: Replica, deps: FieldDeps) -> None:
        self._replica = replica
        self._store: Store = deps.store
        self._max_positions = deps.settings.max_boundary_positions

    def _boundary(self, value: struct_pb2.Struct, path: str) -> geometry.Boundary:
        # shapely, pyproj and numpy (~25 MB RSS) are loaded by the first call that checks a geometry, not at
        # start: reads of fields, farms, seasons and stored measures never need them.
        from services.field import geometry

        return geometry.parse(_geojson(value), path, max_positions=self._max_positions)

    # --- farms -------------------------------------------------------------------------------------

    @idempotent(pb.CreateFarmResponse)
    async def CreateFarm(self, request: pb.CreateFarmRequest,
                         context: grpc.aio.ServicerContext) -> pb.CreateFarmResponse:
        timezone = request.timezone or "UTC"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # a name like '..' or a folder of the zone database
            raise refuse("timezone", f"{timezone!r} is not an IANA time zone (e.g. Europe/Paris)") from None
        location = (request.location.longitude, request.location.latitude) if request.HasField("location") else None
        row = await self._store.farms.create(creating_organization("a farm"), request.name, location, timezone)
        return pb.CreateFarmResponse(farm=farm_message(row))

    async def GetFarm(self, request: pb.GetFarmRequest, context: grpc.aio.ServicerContext) -> pb.GetFarmResponse:
        row = await self._store.farms.get(resource_id("farm", request.farm_id, field="farm_id"))
        return pb.GetFarmResponse(farm=farm_message(found(row, "farm", request.farm_id)))

    async def ListFarms(self, request: pb.ListFarmsRequest, context: grpc.aio.ServicerContext) -> pb.ListFarmsResponse:
        result = await self._store.farms.list_page(FARMS.page(request, None))
        return pb.ListFarmsResponse(farms=[farm_message(r) for r in result.items], page_info=result.page_info())

    # --- fields ------------------------------------------------------------------------------------

    @idempotent(pb.CreateFieldResponse)
    async def CreateField(self, request: pb.CreateFieldRequest,
                          context: grpc.aio.ServicerContext) -> pb.CreateFieldResponse:
        farm_id = resource_id("farm", request.farm_id, field="farm_id")
        boundary = self._boundary(request.boundary, "boundary") if request.HasField("boundary") else None
        row, overlaps = await self._store.fields.create(
            creating_organization("a field"), farm_id,
            NewField(name=request.name, boundary=boundary, labels=dict(request.labels), notes=request.notes),
            request.allow_overlap)
        logger.info("field created", extra={"field_id": str(row.id), "organization": row.organization_id})
        return pb.CreateFieldResponse(field=field_message(row), overlaps=_overlap_messages(overlaps))

    async def GetField(self, request: pb.GetFieldRequest, context: grpc.aio.ServicerContext) -> pb.GetFieldResponse:
        row = await self._store.fields.get(resource_id("field", request.field_id, field="field_id"))
        return pb.GetFieldResponse(field=field_message(found(row, "field", request.field_id)))

    async def ListFields(self, request: pb.ListFieldsRequest,
                         context: grpc.aio.ServicerContext) -> pb.ListFieldsResponse:
        v = Violations()
        farm_id = optional_id(v, request.farm_id, "farm_id", "farm")
        key, has_value, value = request.label.partition("=")
        v.raise_if_any()
        flt = FieldFilter(farm_id=farm_id, status=STATUS_NAMES.get(request.status, ""), label_key=key,
                          label_value=value if has_value else None, name_contains=request.name_contains)
        result = await self._store.fields.list_page(flt, FIELDS.page(request, flt))
        return pb.ListFieldsResponse(fields=[field_message(r) for r in result.items], page_info=result.page_info())

    async def UpdateField(self, request: pb.UpdateFieldRequest,
                          context: grpc.aio.ServicerContext) -> pb.UpdateFieldResponse:
        field_id = resource_id("field", request.field_id, field="field_id")
        v = Violations()
        paths = _MASK.paths(request, v)
        v.raise_if_any()
        changes = _MASK.copied(request, paths, "name", "notes")
        if "labels" in paths:
            changes["labels"] = dict(request.labels)
        row = await self._store.fields.update(field_id, changes)
        return pb.UpdateFieldResponse(field=field_message(row))

    async def ArchiveField(self, request: pb.ArchiveFieldRequest,
                           context: grpc.aio.ServicerContext) -> pb.ArchiveFieldResponse:
        row = await self._store.fields.archive(resource_id("field", request.field_id, field="field_id"))
        return pb.ArchiveFieldResponse(field=field_message(row))

    # --- boundaries --------------------------------------------------------------------------------

    @idempotent(pb.ChangeBoundaryResponse)
    async def ChangeBoundary(self, request: pb.ChangeBoundaryRequest,
                             context: grpc.aio.ServicerContext) -> pb.ChangeBoundaryResponse:
        field_id = resource_id("field", request.field_id, field="field_id")
        boundary = self._boundary(request.boundary, "boundary")
        valid_from = to_datetime(request.valid_from) if request.HasField("valid_from") else None
        if valid_from is not None and valid_from > datetime.now(UTC):
            raise refuse("valid_from", "must not be in the future: a boundary is recorded once it is drawn")
        row, overlaps = await self._store.fields.change_boundary(field_id, boundary, valid_from, request.allow_overlap)
        logger.info("boundary changed", extra={"field_id": str(row.id), "version": row.boundary_version})
        return pb.ChangeBoundaryResponse(field=field_message(row), overlaps=_overlap_messages(overlaps))

    async def GetBoundary(self, request: pb.GetBoundaryRequest,
                          context: grpc.aio.ServicerContext) -> pb.GetBoundaryResponse:
        field_id = resource_id("field", request.field_id, field="field_id")
        at = to_datetime(request.at_time) if request.HasField("at_time") else datetime.now(UTC)
        version = await self._store.fields.version_at(field_id, at)
        if version is None:
            found(await self._store.fields.get(field_id, with_boundary=False), "field", request.field_id)
            raise FailedPrecondition(f"field {request.field_id} had no boundary at {at.isoformat()}",
                                     metadata={"field": "at_time"})
        return pb.GetBoundaryResponse(boundary=version_message(version))

    async def ListBoundaryVersions(self, request: pb.ListBoundaryVersionsRequest,
                                   context: grpc.aio.ServicerContext) -> pb.ListBoundaryVersionsResponse:
        field_id = resource_id("field", request.field_id, field="field_id")
        found(await self._store.fields.get(field_id, with_boundary=False), "field", request.field_id)
        result = await self._store.fields.versions_page(field_id, VERSIONS.page(request, str(field_id)))
        return pb.ListBoundaryVersionsResponse(versions=[version_message(r) for r in result.items],
                                               page_info=result.page_info())

    @idempotent(pb.SplitFieldResponse)
    async def SplitField(self, request: pb.SplitFieldRequest,
                         context: grpc.aio.ServicerContext) -> pb.SplitFieldResponse:
        field_id = resource_id("field", request.field_id, field="field_id")
        v = Violations()
        parts = []
        for i, part in enumerate(request.parts):
            path = f"parts[{i}].boundary"
            try:
                parts.append(Part(part.name, self._boundary(part.boundary, path), path))
            except InvalidArgument as exc:
                v.items.extend(exc.violations)
        v.raise_if_any()
        archived, created = await self._store.reshape.split(field_id, parts)
        return pb.SplitFieldResponse(field=field_message(archived), parts=[field_message(r) for r in created])

    @idempotent(pb.MergeFieldsResponse)
    async def MergeFields(self, request: pb.MergeFieldsRequest,
                          context: grpc.aio.ServicerContext) -> pb.MergeFieldsResponse:
        ids = [resource_id("field", fid, field=f"field_ids[{i}]") for i, fid in enumerate(request.field_ids)]
        merged, archived = await self._store.reshape.merge(ids, request.name)
        return pb.MergeFieldsResponse(field=field_message(merged), merged=[field_message(r) for r in archived])

    # --- spatial queries ---------------------------------------------------------------------------

    async def FindFieldsAtPoint(self, request: pb.FindFieldsAtPointRequest,
                                context: grpc.aio.ServicerContext) -> pb.FindFieldsAtPointResponse:
        page = FIELDS.page(request, ("point", request.longitude, request.latitude))
        result = await self._store.spatial.at_point(request.longitude, request.latitude, page)
        return pb.FindFieldsAtPointResponse(fields=[field_message(r) for r in result.items],
                                            page_info=result.page_info())

    async def FindFieldsIntersecting(self, request: pb.FindFieldsIntersectingRequest,
                                     context: grpc.aio.ServicerContext) -> pb.FindFieldsIntersectingResponse:
        if request.WhichOneof("area") == "bbox":
            box = request.bbox
            v = Violations()
            v.check(-180 <= box.min_longitude <= box.max_longitude <= 180, "bbox",
                    "needs -180 <= min_longitude <= max_longitude <= 180 (a box crossing the antimeridian is two "
                    "queries, one on each side)")
            v.check(-90 <= box.min_latitude <= box.max_latitude <= 90, "bbox",
                    "needs -90 <= min_latitude <= max_latitude <= 90")
            v.raise_if_any()
            from services.field.geometry import bbox_polygon

            area: geometry.Shape = bbox_polygon(box.min_longitude, box.min_latitude, box.max_longitude,
                                                box.max_latitude)
            filters: Any = ("bbox", list(area.bounds))
        else:
            area = self._boundary(request.geometry, "geometry").shape
            filters = ("geometry", area.wkt)
        result = await self._store.spatial.intersecting(area, FIELDS.page(request, filters))
        return pb.FindFieldsIntersectingResponse(fields=[field_message(r) for r in result.items],
                                                 page_info=result.page_info())

    async def FindNearestFields(self, request: pb.FindNearestFieldsRequest,
                                context: grpc.aio.ServicerContext) -> pb.FindNearestFieldsResponse:
        near = await self._store.spatial.nearest(request.longitude, request.latitude,
                                                 request.max_distance_meters or 10_000.0, request.limit or 10)
        return pb.FindNearestFieldsResponse(
            fields=[pb.NearField(field=field_message(row), distance_meters=d) for row, d in near])

    # --- GeoJSON -----------------------------------------------------------------------------------

    async def ExportFields(self, request: pb.ExportFieldsRequest,
                           context: grpc.aio.ServicerContext) -> pb.ExportFieldsResponse:
        v = Violations()
        farm_id = optional_id(v, request.farm_id, "farm_id", "farm")
        v.raise_if_any()
        rows = await self._store.fields.for_export(farm_id, EXPORT_LIMIT)
        if len(rows) > EXPORT_LIMIT:
            raise FailedPrecondition(f"more than {EXPORT_LIMIT} fields to export; export one farm at a time (farm_id)",
                                     metadata={"field": "farm_id", "limit": str(EXPORT_LIMIT)})
        from services.field import featurecollection

        return pb.ExportFieldsResponse(feature_collection=struct(featurecollection.collection(rows)))

    @idempotent(pb.ImportFieldsResponse)
    async def ImportFields(self, request: pb.ImportFieldsRequest,
                           context: grpc.aio.ServicerContext) -> pb.ImportFieldsResponse:
        farm_id = resource_id("farm", request.farm_id, field="farm_id")
        from services.field import featurecollection

        features = featurecollection.parse(_geojson(request.feature_collection))
        rows = await self._store.reshape.import_fields(farm_id, features, request.allow_overlap)
        logger.info("fields imported", extra={"farm_id": str(farm_id), "count": len(rows)})
        return pb.ImportFieldsResponse(fields=[field_message(r) for r in rows])

    # --- seasons and activities --------------------------------------------------------------------

    @idempotent(pb.CreateSeasonResponse)
    async def CreateSeason(self, request: pb.CreateSeasonRequest,
                           context: grpc.aio.ServicerContext) -> pb.CreateSeasonResponse:
        field_id = resource_id("field", request.field_id, field="field_id")
        v = Violations()
        planting = _day(v, request.planned_planting_date, "planned_planting_date")
        harvest = _day(v, request.planned_harvest_date, "planned_harvest_date")
        if planting and harvest:
            v.check(harvest >= planting, "planned_harvest_date", "must not be before planned_planting_date")
        v.raise_if_any()
        row = await self._store.seasons.create_season(field_id, {
            "crop": request.crop, "variety": request.variety, "planned_planting_date": planting,
            "planned_harvest_date": harvest})
        return pb.CreateSeasonResponse(season=season_message(row))

    async def RecordSeason(self, request: pb.RecordSeasonRequest,
                           context: grpc.aio.ServicerContext) -> pb.RecordSeasonResponse:
        season_id = resource_id("season", request.season_id, field="season_id")
        v = Violations()
        planting = _day(v, request.actual_planting_date, "actual_planting_date")
        harvest = _day(v, request.actual_harvest_date, "actual_harvest_date")
        v.check(bool(planting or harvest), "actual_planting_date", "give the planting date, the harvest date or both")
        if harvest:
            v.check(bool(request.yield_unit), "yield_unit", "required with a harvest: t, kg or bu")
        elif request.yield_amount or request.yield_unit:
            v.add("actual_harvest_date", "required with a yield")
        v.raise_if_any()
        row = await self._store.seasons.record(season_id, planting, harvest, request.yield_amount, request.yield_unit)
        return pb.RecordSeasonResponse(season=season_message(row))

    async def ListSeasons(self, request: pb.ListSeasonsRequest,
                          context: grpc.aio.ServicerContext) -> pb.ListSeasonsResponse:
        field_id = resource_id("field", request.field_id, field="field_id")
        result = await self._store.seasons.seasons_page(field_id, SEASONS.page(request, str(field_id)))
        return pb.ListSeasonsResponse(seasons=[season_message(r) for r in result.items], page_info=result.page_info())

    @idempotent(pb.CreateActivityResponse)
    async def CreateActivity(self, request: pb.CreateActivityRequest,
                             context: grpc.aio.ServicerContext) -> pb.CreateActivityResponse:
        field_id = resource_id("field", request.field_id, field="field_id")
        v = Violations()
        day = _day(v, request.date, "date")
        if request.quantity:
            v.check(bool(request.unit), "unit", "required with a quantity")
        v.raise_if_any()
        where = self._boundary(request.geometry, "geometry") if request.HasField("geometry") else None
        _, row = await self._store.seasons.create_activity(field_id, {
            "type": ACTIVITY_TYPE_NAMES[request.type], "day": day, "quantity": request.quantity, "unit": request.unit,
            "geometry": where.geojson if where else None, "notes": request.notes}, within=where)
        return pb.CreateActivityResponse(activity=activity_message(row))

    async def ListActivities(self, request: pb.ListActivitiesRequest,
                             context: grpc.aio.ServicerContext) -> pb.ListActivitiesResponse:
        field_id = resource_id("field", request.field_id, field="field_id")
        result = await self._store.seasons.activities_page(field_id, ACTIVITIES.page(request, str(field_id)))
        return pb.ListActivitiesResponse(activities=[activity_message(r) for r in result.items],
                                         page_info=result.page_info())

    # --- replica -----------------------------------------------------------------------------------

    async def GetInfo(self, request: pb.GetInfoRequest, context: grpc.aio.ServicerContext) -> pb.GetInfoResponse:
        return pb.GetInfoResponse(info=self._replica.service_info(),
                                  active_field_count=await self._store.fields.count_active(),
                                  max_boundary_positions=self._max_positions)

