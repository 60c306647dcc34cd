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

class ContextStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTEXT_STATUS_UNSPECIFIED: _ClassVar[ContextStatus]
    CONTEXT_STATUS_ACTIVE: _ClassVar[ContextStatus]
    CONTEXT_STATUS_ARCHIVED: _ClassVar[ContextStatus]
    CONTEXT_STATUS_EXPIRED: _ClassVar[ContextStatus]
CONTEXT_STATUS_UNSPECIFIED: ContextStatus
CONTEXT_STATUS_ACTIVE: ContextStatus
CONTEXT_STATUS_ARCHIVED: ContextStatus
CONTEXT_STATUS_EXPIRED: ContextStatus

class Context(_message.Message):
    __slots__ = ("context_id", "name", "type", "status", "owner", "shared_with", "metadata", "tags", "layer_count", "size_bytes", "size_mb", "access_count", "version", "expire_time", "create_time", "update_time", "last_access_time", "organization_id")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    SHARED_WITH_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    LAYER_COUNT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SIZE_MB_FIELD_NUMBER: _ClassVar[int]
    ACCESS_COUNT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_ACCESS_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    name: str
    type: str
    status: ContextStatus
    owner: str
    shared_with: _containers.RepeatedScalarFieldContainer[str]
    metadata: _struct_pb2.Struct
    tags: _containers.RepeatedScalarFieldContainer[str]
    layer_count: int
    size_bytes: int
    size_mb: float
    access_count: int
    version: int
    expire_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    last_access_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, context_id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., status: _Optional[_Union[ContextStatus, str]] = ..., owner: _Optional[str] = ..., shared_with: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., layer_count: _Optional[int] = ..., size_bytes: _Optional[int] = ..., size_mb: _Optional[float] = ..., access_count: _Optional[int] = ..., version: _Optional[int] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_access_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class Layer(_message.Message):
    __slots__ = ("layer_id", "context_id", "name", "layer_type", "position", "data", "size_bytes", "version", "create_time", "update_time", "organization_id")
    LAYER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LAYER_TYPE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    layer_id: str
    context_id: str
    name: str
    layer_type: str
    position: int
    data: _struct_pb2.Struct
    size_bytes: int
    version: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, layer_id: _Optional[str] = ..., context_id: _Optional[str] = ..., name: _Optional[str] = ..., layer_type: _Optional[str] = ..., position: _Optional[int] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., size_bytes: _Optional[int] = ..., version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ContextAnalytics(_message.Message):
    __slots__ = ("context_id", "status", "layer_count", "size_bytes", "size_mb", "access_count", "reads_last_24h", "writes_last_24h", "last_access_time", "layers_by_type", "create_time")
    class LayersByTypeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LAYER_COUNT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SIZE_MB_FIELD_NUMBER: _ClassVar[int]
    ACCESS_COUNT_FIELD_NUMBER: _ClassVar[int]
    READS_LAST_24H_FIELD_NUMBER: _ClassVar[int]
    WRITES_LAST_24H_FIELD_NUMBER: _ClassVar[int]
    LAST_ACCESS_TIME_FIELD_NUMBER: _ClassVar[int]
    LAYERS_BY_TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    status: ContextStatus
    layer_count: int
    size_bytes: int
    size_mb: float
    access_count: int
    reads_last_24h: int
    writes_last_24h: int
    last_access_time: _timestamp_pb2.Timestamp
    layers_by_type: _containers.ScalarMap[str, int]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, context_id: _Optional[str] = ..., status: _Optional[_Union[ContextStatus, str]] = ..., layer_count: _Optional[int] = ..., size_bytes: _Optional[int] = ..., size_mb: _Optional[float] = ..., access_count: _Optional[int] = ..., reads_last_24h: _Optional[int] = ..., writes_last_24h: _Optional[int] = ..., last_access_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., layers_by_type: _Optional[_Mapping[str, int]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StatusCount(_message.Message):
    __slots__ = ("status", "count")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    status: ContextStatus
    count: int
    def __init__(self, status: _Optional[_Union[ContextStatus, str]] = ..., count: _Optional[int] = ...) -> None: ...

class UsageBucket(_message.Message):
    __slots__ = ("start_time", "end_time", "reads", "writes", "active_contexts")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    READS_FIELD_NUMBER: _ClassVar[int]
    WRITES_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_CONTEXTS_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    reads: int
    writes: int
    active_contexts: int
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reads: _Optional[int] = ..., writes: _Optional[int] = ..., active_contexts: _Optional[int] = ...) -> None: ...
