import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protomesh.field.v1 import field_pb2 as _field_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FieldCreated(_message.Message):
    __slots__ = ("field_id", "farm_id", "name", "area", "predecessor_ids", "create_time", "organization_id")
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    FARM_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    AREA_FIELD_NUMBER: _ClassVar[int]
    PREDECESSOR_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    field_id: str
    farm_id: str
    name: str
    area: _field_pb2.Area
    predecessor_ids: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, field_id: _Optional[str] = ..., farm_id: _Optional[str] = ..., name: _Optional[str] = ..., area: _Optional[_Union[_field_pb2.Area, _Mapping]] = ..., predecessor_ids: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class BoundaryChanged(_message.Message):
    __slots__ = ("field_id", "version", "old_area", "new_area", "valid_from", "organization_id")
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OLD_AREA_FIELD_NUMBER: _ClassVar[int]
    NEW_AREA_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    field_id: str
    version: int
    old_area: _field_pb2.Area
    new_area: _field_pb2.Area
    valid_from: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, field_id: _Optional[str] = ..., version: _Optional[int] = ..., old_area: _Optional[_Union[_field_pb2.Area, _Mapping]] = ..., new_area: _Optional[_Union[_field_pb2.Area, _Mapping]] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class FieldArchived(_message.Message):
    __slots__ = ("field_id", "name", "successor_ids", "archive_time", "organization_id")
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUCCESSOR_IDS_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    field_id: str
    name: str
    successor_ids: _containers.RepeatedScalarFieldContainer[str]
    archive_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, field_id: _Optional[str] = ..., name: _Optional[str] = ..., successor_ids: _Optional[_Iterable[str]] = ..., archive_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class SeasonStarted(_message.Message):
    __slots__ = ("season_id", "field_id", "crop", "planting_date", "organization_id")
    SEASON_ID_FIELD_NUMBER: _ClassVar[int]
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    CROP_FIELD_NUMBER: _ClassVar[int]
    PLANTING_DATE_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    season_id: str
    field_id: str
    crop: str
    planting_date: str
    organization_id: str
    def __init__(self, season_id: _Optional[str] = ..., field_id: _Optional[str] = ..., crop: _Optional[str] = ..., planting_date: _Optional[str] = ..., organization_id: _Optional[str] = ...) -> None: ...

class HarvestRecorded(_message.Message):
    __slots__ = ("season_id", "field_id", "crop", "harvest_date", "yield_amount", "yield_unit", "yield_per_hectare", "organization_id")
    SEASON_ID_FIELD_NUMBER: _ClassVar[int]
    FIELD_ID_FIELD_NUMBER: _ClassVar[int]
    CROP_FIELD_NUMBER: _ClassVar[int]
    HARVEST_DATE_FIELD_NUMBER: _ClassVar[int]
    YIELD_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    YIELD_UNIT_FIELD_NUMBER: _ClassVar[int]
    YIELD_PER_HECTARE_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    season_id: str
    field_id: str
    crop: str
    harvest_date: str
    yield_amount: float
    yield_unit: str
    yield_per_hectare: float
    organization_id: str
    def __init__(self, season_id: _Optional[str] = ..., field_id: _Optional[str] = ..., crop: _Optional[str] = ..., harvest_date: _Optional[str] = ..., yield_amount: _Optional[float] = ..., yield_unit: _Optional[str] = ..., yield_per_hectare: _Optional[float] = ..., organization_id: _Optional[str] = ...) -> None: ...
