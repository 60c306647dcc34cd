import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protomesh.common.v1 import pagination_pb2 as _pagination_pb2
from protomesh.common.v1 import rules_pb2 as _rules_pb2
from protomesh.common.v1 import service_info_pb2 as _service_info_pb2
from protomesh.field.v1 import field_pb2 as _field_pb2
from protomesh.options.v1 import access_pb2 as _access_pb2
from protomesh.options.v1 import resilience_pb2 as _resilience_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LocationInput(_message.Message):
    __slots__ = ("longitude", "latitude")
    LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    LATITUDE_FIELD_NUMBER: _ClassVar[int]
    longitude: float
    latitude: float
    def __init__(self, longitude: _Optional[float] = ..., latitude: _Optional[float] = ...) -> None: ...

class CreateFarmRequest(_message.Message):
    __slots__ = ("name", "location", "timezone", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    location: LocationInput
    timezone: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., location: _Optional[_Union[LocationInput, _Mapping]] = ..., timezone: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateFarmResponse(_message.Message):
    __slots__ = ("farm",)
    FARM_FIELD_NUMBER: _ClassVar[int]
    farm: _field_pb2.Farm
    def __init__(self, farm: _Optional[_Union[_field_pb2.Farm, _Mapping]] = ...) -> None: ...

class GetFarmRequest(_message.Message):
    __slots__ = ("farm_id",)
    FARM_ID_FIELD_NUMBER: _ClassVar[int]
    farm_id: str
    def __init__(self, farm_id: _Optional[str] = ...) -> None: ...

class GetFarmResponse(_message.Message):
    __slots__ = ("farm",)
    FARM_FIELD_NUMBER: _ClassVar[int]
    farm: _field_pb2.Farm
    def __init__(self, farm: _Optional[_Union[_field_pb2.Farm, _Mapping]] = ...) -> None: ...

class ListFarmsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFarmsResponse(_message.Message):
    __slots__ = ("farms", "page_info")
    FARMS_FIELD_NUMBER: _ClassVar[int]
    PAGE_INFO_FIELD_NUMBER: _ClassVar[int]
    farms: _containers.RepeatedCompositeFieldContainer[_field_pb2.Farm]
    page_info: _pagination_pb2.PageInfo
    def __init__(self, farms: _Optional[_Iterable[_Union[_field_pb2.Farm, _Mapping]]] = ..., page_info: _Optional[_Union[_pagination_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class CreateFieldRequest(_message.Message):
    __slots__ = ("farm_id", "name", "labels", "notes", "boundary", "allow_overlap", "request_id")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FARM_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    BOUNDARY_FIELD_NUMBER: _ClassVar[int]
    ALLOW_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    farm_id: str
    name: str
    labels: _containers.ScalarMap[str, str]
    notes: str
    boundary: _struct_pb2.Struct
    allow_overlap: bool
    request_id: str
    def __init__(self, farm_id: _Optional[str] = ..., name: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., notes: _Optional[str] = ..., boundary: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., allow_overlap: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateFieldResponse(_message.Message):
    __slots__ = ("field", "overlaps")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    OVERLAPS_FIELD_NUMBER: _ClassVar[int]
    field: _field_pb2.Field
    overlaps: _containers.RepeatedCompositeFieldContainer[_field_pb2.OverlapConflict]
    def __init__(self, field: _Optional[_Union[_field_pb2.Field, _Mapping]] = ..., overlaps: _Optional[_Iterable[_Union[_field_pb2.OverlapConflict, _Mapping]]] = ...) -> None: ...

class GetFieldRequest(_message.Message):
    __slots__ = ("field_id",)
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    field_id: str
    def __init__(self, field_id: _Optional[str] = ...) -> None: ...

class GetFieldResponse(_message.Message):
    __slots__ = ("field",)
    FIELD_FIELD_NUMBER: _ClassVar[int]
    field: _field_pb2.Field
    def __init__(self, field: _Optional[_Union[_field_pb2.Field, _Mapping]] = ...) -> None: ...

class ListFieldsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "farm_id", "status", "label", "name_contains")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FARM_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    NAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    farm_id: str
    status: _field_pb2.FieldStatus
    label: str
    name_contains: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., farm_id: _Optional[str] = ..., status: _Optional[_Union[_field_pb2.FieldStatus, str]] = ..., label: _Optional[str] = ..., name_contains: _Optional[str] = ...) -> None: ...

class ListFieldsResponse(_message.Message):
    __slots__ = ("fields", "page_info")
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    PAGE_INFO_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.RepeatedCompositeFieldContainer[_field_pb2.Field]
    page_info: _pagination_pb2.PageInfo
    def __init__(self, fields: _Optional[_Iterable[_Union[_field_pb2.Field, _Mapping]]] = ..., page_info: _Optional[_Union[_pagination_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class UpdateFieldRequest(_message.Message):
    __slots__ = ("field_id", "name", "labels", "notes", "update_mask")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    field_id: str
    name: str
    labels: _containers.ScalarMap[str, str]
    notes: str
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, field_id: _Optional[str] = ..., name: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., notes: _Optional[str] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateFieldResponse(_message.Message):
    __slots__ = ("field",)
    FIELD_FIELD_NUMBER: _ClassVar[int]
    field: _field_pb2.Field
    def __init__(self, field: _Optional[_Union[_field_pb2.Field, _Mapping]] = ...) -> None: ...

class ArchiveFieldRequest(_message.Message):
    __slots__ = ("field_id",)
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    field_id: str
    def __init__(self, field_id: _Optional[str] = ...) -> None: ...

class ArchiveFieldResponse(_message.Message):
    __slots__ = ("field",)
    FIELD_FIELD_NUMBER: _ClassVar[int]
    field: _field_pb2.Field
    def __init__(self, field: _Optional[_Union[_field_pb2.Field, _Mapping]] = ...) -> None: ...

class ChangeBoundaryRequest(_message.Message):
    __slots__ = ("field_id", "boundary", "valid_from", "allow_overlap", "request_id")
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    BOUNDARY_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    ALLOW_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    field_id: str
    boundary: _struct_pb2.Struct
    valid_from: _timestamp_pb2.Timestamp
    allow_overlap: bool
    request_id: str
    def __init__(self, field_id: _Optional[str] = ..., boundary: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., allow_overlap: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class ChangeBoundaryResponse(_message.Message):
    __slots__ = ("field", "overlaps")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    OVERLAPS_FIELD_NUMBER: _ClassVar[int]
    field: _field_pb2.Field
    overlaps: _containers.RepeatedCompositeFieldContainer[_field_pb2.OverlapConflict]
    def __init__(self, field: _Optional[_Union[_field_pb2.Field, _Mapping]] = ..., overlaps: _Optional[_Iterable[_Union[_field_pb2.OverlapConflict, _Mapping]]] = ...) -> None: ...

class GetBoundaryRequest(_message.Message):
    __slots__ = ("field_id", "at_time")
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    AT_TIME_FIELD_NUMBER: _ClassVar[int]
    field_id: str
    at_time: _timestamp_pb2.Timestamp
    def __init__(self, field_id: _Optional[str] = ..., at_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetBoundaryResponse(_message.Message):
    __slots__ = ("boundary",)
    BOUNDARY_FIELD_NUMBER: _ClassVar[int]
    boundary: _field_pb2.BoundaryVersion
    def __init__(self, boundary: _Optional[_Union[_field_pb2.BoundaryVersion, _Mapping]] = ...) -> None: ...

class ListBoundaryVersionsRequest(_message.Message):
    __slots__ = ("field_id", "page_size", "page_token")
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    field_id: str
    page_size: int
    page_token: str
    def __init__(self, field_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBoundaryVersionsResponse(_message.Message):
    __slots__ = ("versions", "page_info")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    PAGE_INFO_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[_field_pb2.BoundaryVersion]
    page_info: _pagination_pb2.PageInfo
    def __init__(self, versions: _Optional[_Iterable[_Union[_field_pb2.BoundaryVersion, _Mapping]]] = ..., page_info: _Optional[_Union[_pagination_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class NewFieldPart(_message.Message):
    __slots__ = ("name", "boundary")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BOUNDARY_FIELD_NUMBER: _ClassVar[int]
    name: str
    boundary: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., boundary: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class SplitFieldRequest(_message.Message):
    __slots__ = ("field_id", "parts", "request_id")
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    field_id: str
    parts: _containers.RepeatedCompositeFieldContainer[NewFieldPart]
    request_id: str
    def __init__(self, field_id: _Optional[str] = ..., parts: _Optional[_Iterable[_Union[NewFieldPart, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class SplitFieldResponse(_message.Message):
    __slots__ = ("field", "parts")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    field: _field_pb2.Field
    parts: _containers.RepeatedCompositeFieldContainer[_field_pb2.Field]
    def __init__(self, field: _Optional[_Union[_field_pb2.Field, _Mapping]] = ..., parts: _Optional[_Iterable[_Union[_field_pb2.Field, _Mapping]]] = ...) -> None: ...

class MergeFieldsRequest(_message.Message):
    __slots__ = ("field_ids", "name", "request_id")
    FIELD_IDS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    field_ids: _containers.RepeatedScalarFieldContainer[str]
    name: str
    request_id: str
    def __init__(self, field_ids: _Optional[_Iterable[str]] = ..., name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class MergeFieldsResponse(_message.Message):
    __slots__ = ("field", "merged")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MERGED_FIELD_NUMBER: _ClassVar[int]
    field: _field_pb2.Field
    merged: _containers.RepeatedCompositeFieldContainer[_field_pb2.Field]
    def __init__(self, field: _Optional[_Union[_field_pb2.Field, _Mapping]] = ..., merged: _Optional[_Iterable[_Union[_field_pb2.Field, _Mapping]]] = ...) -> None: ...

class FindFieldsAtPointRequest(_message.Message):
    __slots__ = ("longitude", "latitude", "page_size", "page_token")
    LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    LATITUDE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    longitude: float
    latitude: float
    page_size: int
    page_token: str
    def __init__(self, longitude: _Optional[float] = ..., latitude: _Optional[float] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class FindFieldsAtPointResponse(_message.Message):
    __slots__ = ("fields", "page_info")
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    PAGE_INFO_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.RepeatedCompositeFieldContainer[_field_pb2.Field]
    page_info: _pagination_pb2.PageInfo
    def __init__(self, fields: _Optional[_Iterable[_Union[_field_pb2.Field, _Mapping]]] = ..., page_info: _Optional[_Union[_pagination_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class FindFieldsIntersectingRequest(_message.Message):
    __slots__ = ("bbox", "geometry", "page_size", "page_token")
    BBOX_FIELD_NUMBER: _ClassVar[int]
    GEOMETRY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    bbox: _field_pb2.BoundingBox
    geometry: _struct_pb2.Struct
    page_size: int
    page_token: str
    def __init__(self, bbox: _Optional[_Union[_field_pb2.BoundingBox, _Mapping]] = ..., geometry: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class FindFieldsIntersectingResponse(_message.Message):
    __slots__ = ("fields", "page_info")
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    PAGE_INFO_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.RepeatedCompositeFieldContainer[_field_pb2.Field]
    page_info: _pagination_pb2.PageInfo
    def __init__(self, fields: _Optional[_Iterable[_Union[_field_pb2.Field, _Mapping]]] = ..., page_info: _Optional[_Union[_pagination_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class FindNearestFieldsRequest(_message.Message):
    __slots__ = ("longitude", "latitude", "max_distance_meters", "limit")
    LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    LATITUDE_FIELD_NUMBER: _ClassVar[int]
    MAX_DISTANCE_METERS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    longitude: float
    latitude: float
    max_distance_meters: float
    limit: int
    def __init__(self, longitude: _Optional[float] = ..., latitude: _Optional[float] = ..., max_distance_meters: _Optional[float] = ..., limit: _Optional[int] = ...) -> None: ...

class NearField(_message.Message):
    __slots__ = ("field", "distance_meters")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_METERS_FIELD_NUMBER: _ClassVar[int]
    field: _field_pb2.Field
    distance_meters: float
    def __init__(self, field: _Optional[_Union[_field_pb2.Field, _Mapping]] = ..., distance_meters: _Optional[float] = ...) -> None: ...

class FindNearestFieldsResponse(_message.Message):
    __slots__ = ("fields",)
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.RepeatedCompositeFieldContainer[NearField]
    def __init__(self, fields: _Optional[_Iterable[_Union[NearField, _Mapping]]] = ...) -> None: ...

class ExportFieldsRequest(_message.Message):
    __slots__ = ("farm_id",)
    FARM_ID_FIELD_NUMBER: _ClassVar[int]
    farm_id: str
    def __init__(self, farm_id: _Optional[str] = ...) -> None: ...

class ExportFieldsResponse(_message.Message):
    __slots__ = ("feature_collection",)
    FEATURE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    feature_collection: _struct_pb2.Struct
    def __init__(self, feature_collection: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ImportFieldsRequest(_message.Message):
    __slots__ = ("farm_id", "feature_collection", "allow_overlap", "request_id")
    FARM_ID_FIELD_NUMBER: _ClassVar[int]
    FEATURE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ALLOW_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    farm_id: str
    feature_collection: _struct_pb2.Struct
    allow_overlap: bool
    request_id: str
    def __init__(self, farm_id: _Optional[str] = ..., feature_collection: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., allow_overlap: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class ImportFieldsResponse(_message.Message):
    __slots__ = ("fields",)
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.RepeatedCompositeFieldContainer[_field_pb2.Field]
    def __init__(self, fields: _Optional[_Iterable[_Union[_field_pb2.Field, _Mapping]]] = ...) -> None: ...

class CreateSeasonRequest(_message.Message):
    __slots__ = ("field_id", "crop", "variety", "planned_planting_date", "planned_harvest_date", "request_id")
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    CROP_FIELD_NUMBER: _ClassVar[int]
    VARIETY_FIELD_NUMBER: _ClassVar[int]
    PLANNED_PLANTING_DATE_FIELD_NUMBER: _ClassVar[int]
    PLANNED_HARVEST_DATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    field_id: str
    crop: str
    variety: str
    planned_planting_date: str
    planned_harvest_date: str
    request_id: str
    def __init__(self, field_id: _Optional[str] = ..., crop: _Optional[str] = ..., variety: _Optional[str] = ..., planned_planting_date: _Optional[str] = ..., planned_harvest_date: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateSeasonResponse(_message.Message):
    __slots__ = ("season",)
    SEASON_FIELD_NUMBER: _ClassVar[int]
    season: _field_pb2.Season
    def __init__(self, season: _Optional[_Union[_field_pb2.Season, _Mapping]] = ...) -> None: ...

class RecordSeasonRequest(_message.Message):
    __slots__ = ("season_id", "actual_planting_date", "actual_harvest_date", "yield_amount", "yield_unit")
    SEASON_ID_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_PLANTING_DATE_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_HARVEST_DATE_FIELD_NUMBER: _ClassVar[int]
    YIELD_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    YIELD_UNIT_FIELD_NUMBER: _ClassVar[int]
    season_id: str
    actual_planting_date: str
    actual_harvest_date: str
    yield_amount: float
    yield_unit: str
    def __init__(self, season_id: _Optional[str] = ..., actual_planting_date: _Optional[str] = ..., actual_harvest_date: _Optional[str] = ..., yield_amount: _Optional[float] = ..., yield_unit: _Optional[str] = ...) -> None: ...

class RecordSeasonResponse(_message.Message):
    __slots__ = ("season",)
    SEASON_FIELD_NUMBER: _ClassVar[int]
    season: _field_pb2.Season
    def __init__(self, season: _Optional[_Union[_field_pb2.Season, _Mapping]] = ...) -> None: ...

class ListSeasonsRequest(_message.Message):
    __slots__ = ("field_id", "page_size", "page_token")
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    field_id: str
    page_size: int
    page_token: str
    def __init__(self, field_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSeasonsResponse(_message.Message):
    __slots__ = ("seasons", "page_info")
    SEASONS_FIELD_NUMBER: _ClassVar[int]
    PAGE_INFO_FIELD_NUMBER: _ClassVar[int]
    seasons: _containers.RepeatedCompositeFieldContainer[_field_pb2.Season]
    page_info: _pagination_pb2.PageInfo
    def __init__(self, seasons: _Optional[_Iterable[_Union[_field_pb2.Season, _Mapping]]] = ..., page_info: _Optional[_Union[_pagination_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class CreateActivityRequest(_message.Message):
    __slots__ = ("field_id", "type", "date", "quantity", "unit", "geometry", "notes", "request_id")
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    GEOMETRY_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    field_id: str
    type: _field_pb2.ActivityType
    date: str
    quantity: float
    unit: str
    geometry: _struct_pb2.Struct
    notes: str
    request_id: str
    def __init__(self, field_id: _Optional[str] = ..., type: _Optional[_Union[_field_pb2.ActivityType, str]] = ..., date: _Optional[str] = ..., quantity: _Optional[float] = ..., unit: _Optional[str] = ..., geometry: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., notes: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateActivityResponse(_message.Message):
    __slots__ = ("activity",)
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    activity: _field_pb2.Activity
    def __init__(self, activity: _Optional[_Union[_field_pb2.Activity, _Mapping]] = ...) -> None: ...

class ListActivitiesRequest(_message.Message):
    __slots__ = ("field_id", "page_size", "page_token")
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    field_id: str
    page_size: int
    page_token: str
    def __init__(self, field_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListActivitiesResponse(_message.Message):
    __slots__ = ("activities", "page_info")
    ACTIVITIES_FIELD_NUMBER: _ClassVar[int]
    PAGE_INFO_FIELD_NUMBER: _ClassVar[int]
    activities: _containers.RepeatedCompositeFieldContainer[_field_pb2.Activity]
    page_info: _pagination_pb2.PageInfo
    def __init__(self, activities: _Optional[_Iterable[_Union[_field_pb2.Activity, _Mapping]]] = ..., page_info: _Optional[_Union[_pagination_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("info", "active_field_count", "max_boundary_positions")
    INFO_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_BOUNDARY_POSITIONS_FIELD_NUMBER: _ClassVar[int]
    info: _service_info_pb2.ServiceInfo
    active_field_count: int
    max_boundary_positions: int
    def __init__(self, info: _Optional[_Union[_service_info_pb2.ServiceInfo, _Mapping]] = ..., active_field_count: _Optional[int] = ..., max_boundary_positions: _Optional[int] = ...) -> None: ...

class GetHealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetHealthResponse(_message.Message):
    __slots__ = ("health",)
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    health: _service_info_pb2.HealthReport
    def __init__(self, health: _Optional[_Union[_service_info_pb2.HealthReport, _Mapping]] = ...) -> None: ...

class GetReadinessRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetReadinessResponse(_message.Message):
    __slots__ = ("health",)
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    health: _service_info_pb2.HealthReport
    def __init__(self, health: _Optional[_Union[_service_info_pb2.HealthReport, _Mapping]] = ...) -> None: ...

class GetLivenessRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetLivenessResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: _service_info_pb2.HealthState
    def __init__(self, state: _Optional[_Union[_service_info_pb2.HealthState, str]] = ...) -> None: ...
