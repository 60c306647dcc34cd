import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FieldStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIELD_STATUS_UNSPECIFIED: _ClassVar[FieldStatus]
    FIELD_STATUS_ACTIVE: _ClassVar[FieldStatus]
    FIELD_STATUS_ARCHIVED: _ClassVar[FieldStatus]

class ActivityType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTIVITY_TYPE_UNSPECIFIED: _ClassVar[ActivityType]
    ACTIVITY_TYPE_TILLAGE: _ClassVar[ActivityType]
    ACTIVITY_TYPE_SEEDING: _ClassVar[ActivityType]
    ACTIVITY_TYPE_FERTILISING: _ClassVar[ActivityType]
    ACTIVITY_TYPE_SPRAYING: _ClassVar[ActivityType]
    ACTIVITY_TYPE_IRRIGATION: _ClassVar[ActivityType]
    ACTIVITY_TYPE_HARVEST: _ClassVar[ActivityType]
FIELD_STATUS_UNSPECIFIED: FieldStatus
FIELD_STATUS_ACTIVE: FieldStatus
FIELD_STATUS_ARCHIVED: FieldStatus
ACTIVITY_TYPE_UNSPECIFIED: ActivityType
ACTIVITY_TYPE_TILLAGE: ActivityType
ACTIVITY_TYPE_SEEDING: ActivityType
ACTIVITY_TYPE_FERTILISING: ActivityType
ACTIVITY_TYPE_SPRAYING: ActivityType
ACTIVITY_TYPE_IRRIGATION: ActivityType
ACTIVITY_TYPE_HARVEST: ActivityType

class Location(_message.Message):
    __slots__ = ("longitude", "latitude")
    LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    LATITUDE_FIELD_NUMBER: _ClassVar[int]
    longitude: float
    latitude: float
    def __init__(self, longitude: _Optional[float] = ..., latitude: _Optional[float] = ...) -> None: ...

class Area(_message.Message):
    __slots__ = ("square_meters", "hectares")
    SQUARE_METERS_FIELD_NUMBER: _ClassVar[int]
    HECTARES_FIELD_NUMBER: _ClassVar[int]
    square_meters: float
    hectares: float
    def __init__(self, square_meters: _Optional[float] = ..., hectares: _Optional[float] = ...) -> None: ...

class BoundingBox(_message.Message):
    __slots__ = ("min_longitude", "min_latitude", "max_longitude", "max_latitude")
    MIN_LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    MIN_LATITUDE_FIELD_NUMBER: _ClassVar[int]
    MAX_LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    MAX_LATITUDE_FIELD_NUMBER: _ClassVar[int]
    min_longitude: float
    min_latitude: float
    max_longitude: float
    max_latitude: float
    def __init__(self, min_longitude: _Optional[float] = ..., min_latitude: _Optional[float] = ..., max_longitude: _Optional[float] = ..., max_latitude: _Optional[float] = ...) -> None: ...

class Farm(_message.Message):
    __slots__ = ("farm_id", "name", "location", "timezone", "organization_id", "create_time", "active_field_count")
    FARM_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_COUNT_FIELD_NUMBER: _ClassVar[int]
    farm_id: str
    name: str
    location: Location
    timezone: str
    organization_id: str
    create_time: _timestamp_pb2.Timestamp
    active_field_count: int
    def __init__(self, farm_id: _Optional[str] = ..., name: _Optional[str] = ..., location: _Optional[_Union[Location, _Mapping]] = ..., timezone: _Optional[str] = ..., organization_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., active_field_count: _Optional[int] = ...) -> None: ...

class Measures(_message.Message):
    __slots__ = ("area", "workable_area", "perimeter_meters", "bbox", "centroid", "vertex_count")
    AREA_FIELD_NUMBER: _ClassVar[int]
    WORKABLE_AREA_FIELD_NUMBER: _ClassVar[int]
    PERIMETER_METERS_FIELD_NUMBER: _ClassVar[int]
    BBOX_FIELD_NUMBER: _ClassVar[int]
    CENTROID_FIELD_NUMBER: _ClassVar[int]
    VERTEX_COUNT_FIELD_NUMBER: _ClassVar[int]
    area: Area
    workable_area: Area
    perimeter_meters: float
    bbox: BoundingBox
    centroid: Location
    vertex_count: int
    def __init__(self, area: _Optional[_Union[Area, _Mapping]] = ..., workable_area: _Optional[_Union[Area, _Mapping]] = ..., perimeter_meters: _Optional[float] = ..., bbox: _Optional[_Union[BoundingBox, _Mapping]] = ..., centroid: _Optional[_Union[Location, _Mapping]] = ..., vertex_count: _Optional[int] = ...) -> None: ...

class Field(_message.Message):
    __slots__ = ("field_id", "farm_id", "name", "labels", "status", "notes", "boundary", "measures", "boundary_version", "boundary_valid_from", "predecessor_ids", "successor_ids", "organization_id", "create_time", "archive_time")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    FARM_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    BOUNDARY_FIELD_NUMBER: _ClassVar[int]
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    BOUNDARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    BOUNDARY_VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    PREDECESSOR_IDS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSOR_IDS_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    field_id: str
    farm_id: str
    name: str
    labels: _containers.ScalarMap[str, str]
    status: FieldStatus
    notes: str
    boundary: _struct_pb2.Struct
    measures: Measures
    boundary_version: int
    boundary_valid_from: _timestamp_pb2.Timestamp
    predecessor_ids: _containers.RepeatedScalarFieldContainer[str]
    successor_ids: _containers.RepeatedScalarFieldContainer[str]
    organization_id: str
    create_time: _timestamp_pb2.Timestamp
    archive_time: _timestamp_pb2.Timestamp
    def __init__(self, field_id: _Optional[str] = ..., farm_id: _Optional[str] = ..., name: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., status: _Optional[_Union[FieldStatus, str]] = ..., notes: _Optional[str] = ..., boundary: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., measures: _Optional[_Union[Measures, _Mapping]] = ..., boundary_version: _Optional[int] = ..., boundary_valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., predecessor_ids: _Optional[_Iterable[str]] = ..., successor_ids: _Optional[_Iterable[str]] = ..., organization_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., archive_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BoundaryVersion(_message.Message):
    __slots__ = ("field_id", "version", "boundary", "measures", "valid_from", "valid_to", "reason")
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BOUNDARY_FIELD_NUMBER: _ClassVar[int]
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_TO_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    field_id: str
    version: int
    boundary: _struct_pb2.Struct
    measures: Measures
    valid_from: _timestamp_pb2.Timestamp
    valid_to: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, field_id: _Optional[str] = ..., version: _Optional[int] = ..., boundary: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., measures: _Optional[_Union[Measures, _Mapping]] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class OverlapConflict(_message.Message):
    __slots__ = ("field_id", "name", "overlap_area")
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_AREA_FIELD_NUMBER: _ClassVar[int]
    field_id: str
    name: str
    overlap_area: Area
    def __init__(self, field_id: _Optional[str] = ..., name: _Optional[str] = ..., overlap_area: _Optional[_Union[Area, _Mapping]] = ...) -> None: ...

class Season(_message.Message):
    __slots__ = ("season_id", "field_id", "crop", "variety", "planned_planting_date", "planned_harvest_date", "actual_planting_date", "actual_harvest_date", "yield_amount", "yield_unit", "yield_per_hectare", "harvested_area", "create_time")
    SEASON_ID_FIELD_NUMBER: _ClassVar[int]
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    CROP_FIELD_NUMBER: _ClassVar[int]
    VARIETY_FIELD_NUMBER: _ClassVar[int]
    PLANNED_PLANTING_DATE_FIELD_NUMBER: _ClassVar[int]
    PLANNED_HARVEST_DATE_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_PLANTING_DATE_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_HARVEST_DATE_FIELD_NUMBER: _ClassVar[int]
    YIELD_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    YIELD_UNIT_FIELD_NUMBER: _ClassVar[int]
    YIELD_PER_HECTARE_FIELD_NUMBER: _ClassVar[int]
    HARVESTED_AREA_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    season_id: str
    field_id: str
    crop: str
    variety: str
    planned_planting_date: str
    planned_harvest_date: str
    actual_planting_date: str
    actual_harvest_date: str
    yield_amount: float
    yield_unit: str
    yield_per_hectare: float
    harvested_area: Area
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, season_id: _Optional[str] = ..., field_id: _Optional[str] = ..., crop: _Optional[str] = ..., variety: _Optional[str] = ..., planned_planting_date: _Optional[str] = ..., planned_harvest_date: _Optional[str] = ..., actual_planting_date: _Optional[str] = ..., actual_harvest_date: _Optional[str] = ..., yield_amount: _Optional[float] = ..., yield_unit: _Optional[str] = ..., yield_per_hectare: _Optional[float] = ..., harvested_area: _Optional[_Union[Area, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Activity(_message.Message):
    __slots__ = ("activity_id", "field_id", "type", "date", "quantity", "unit", "geometry", "notes", "create_time")
    ACTIVITY_ID_FIELD_NUMBER: _ClassVar[int]
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    GEOMETRY_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    activity_id: str
    field_id: str
    type: ActivityType
    date: str
    quantity: float
    unit: str
    geometry: _struct_pb2.Struct
    notes: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, activity_id: _Optional[str] = ..., field_id: _Optional[str] = ..., type: _Optional[_Union[ActivityType, str]] = ..., date: _Optional[str] = ..., quantity: _Optional[float] = ..., unit: _Optional[str] = ..., geometry: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., notes: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
