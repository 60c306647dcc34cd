import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protomesh.context.v1 import context_pb2 as _context_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ContextCreated(_message.Message):
    __slots__ = ("context_id", "name", "type", "owner", "shared_with", "tags", "expire_time", "version", "create_time", "organization_id")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    SHARED_WITH_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    name: str
    type: str
    owner: str
    shared_with: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    expire_time: _timestamp_pb2.Timestamp
    version: int
    create_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, context_id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., owner: _Optional[str] = ..., shared_with: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ContextUpdated(_message.Message):
    __slots__ = ("context_id", "name", "type", "status", "updated_fields", "version", "update_time", "organization_id")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    name: str
    type: str
    status: _context_pb2.ContextStatus
    updated_fields: _containers.RepeatedScalarFieldContainer[str]
    version: int
    update_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, context_id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., status: _Optional[_Union[_context_pb2.ContextStatus, str]] = ..., updated_fields: _Optional[_Iterable[str]] = ..., version: _Optional[int] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ContextDeleted(_message.Message):
    __slots__ = ("context_id", "name", "type", "owner", "deleted_layers", "version", "delete_time", "organization_id")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    DELETED_LAYERS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DELETE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    name: str
    type: str
    owner: str
    deleted_layers: int
    version: int
    delete_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, context_id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., owner: _Optional[str] = ..., deleted_layers: _Optional[int] = ..., version: _Optional[int] = ..., delete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ContextShared(_message.Message):
    __slots__ = ("context_id", "service", "shared_with", "version", "update_time", "organization_id")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SHARED_WITH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    service: str
    shared_with: _containers.RepeatedScalarFieldContainer[str]
    version: int
    update_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, context_id: _Optional[str] = ..., service: _Optional[str] = ..., shared_with: _Optional[_Iterable[str]] = ..., version: _Optional[int] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ContextUnshared(_message.Message):
    __slots__ = ("context_id", "service", "shared_with", "version", "update_time", "organization_id")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SHARED_WITH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    service: str
    shared_with: _containers.RepeatedScalarFieldContainer[str]
    version: int
    update_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, context_id: _Optional[str] = ..., service: _Optional[str] = ..., shared_with: _Optional[_Iterable[str]] = ..., version: _Optional[int] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class LayerAdded(_message.Message):
    __slots__ = ("context_id", "layer_id", "name", "layer_type", "position", "version", "size_bytes", "create_time", "organization_id")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    LAYER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LAYER_TYPE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    layer_id: str
    name: str
    layer_type: str
    position: int
    version: int
    size_bytes: int
    create_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, context_id: _Optional[str] = ..., layer_id: _Optional[str] = ..., name: _Optional[str] = ..., layer_type: _Optional[str] = ..., position: _Optional[int] = ..., version: _Optional[int] = ..., size_bytes: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class LayerUpdated(_message.Message):
    __slots__ = ("context_id", "layer_id", "name", "layer_type", "position", "version", "size_bytes", "updated_fields", "update_time", "organization_id")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    LAYER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LAYER_TYPE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    layer_id: str
    name: str
    layer_type: str
    position: int
    version: int
    size_bytes: int
    updated_fields: _containers.RepeatedScalarFieldContainer[str]
    update_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, context_id: _Optional[str] = ..., layer_id: _Optional[str] = ..., name: _Optional[str] = ..., layer_type: _Optional[str] = ..., position: _Optional[int] = ..., version: _Optional[int] = ..., size_bytes: _Optional[int] = ..., updated_fields: _Optional[_Iterable[str]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class LayerRemoved(_message.Message):
    __slots__ = ("context_id", "layer_id", "name", "layer_type", "position", "version", "size_bytes", "remove_time", "organization_id")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    LAYER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LAYER_TYPE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    REMOVE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    layer_id: str
    name: str
    layer_type: str
    position: int
    version: int
    size_bytes: int
    remove_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, context_id: _Optional[str] = ..., layer_id: _Optional[str] = ..., name: _Optional[str] = ..., layer_type: _Optional[str] = ..., position: _Optional[int] = ..., version: _Optional[int] = ..., size_bytes: _Optional[int] = ..., remove_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ContextExpired(_message.Message):
    __slots__ = ("context_id", "name", "type", "owner", "deleted_layers", "version", "expire_time", "cleanup_time", "organization_id")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    DELETED_LAYERS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CLEANUP_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    name: str
    type: str
    owner: str
    deleted_layers: int
    version: int
    expire_time: _timestamp_pb2.Timestamp
    cleanup_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, context_id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., owner: _Optional[str] = ..., deleted_layers: _Optional[int] = ..., version: _Optional[int] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cleanup_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...
