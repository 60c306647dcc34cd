import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protomesh.common.v1 import pagination_pb2 as _pagination_pb2
from protomesh.common.v1 import rules_pb2 as _rules_pb2
from protomesh.common.v1 import service_info_pb2 as _service_info_pb2
from protomesh.context.v1 import context_pb2 as _context_pb2
from protomesh.context.v1 import rules_pb2 as _rules_pb2_1
from protomesh.options.v1 import access_pb2 as _access_pb2
from protomesh.options.v1 import resilience_pb2 as _resilience_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListContextsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "type", "status", "tags", "owner", "name_contains")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    NAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    type: str
    status: _context_pb2.ContextStatus
    tags: _containers.RepeatedScalarFieldContainer[str]
    owner: str
    name_contains: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., type: _Optional[str] = ..., status: _Optional[_Union[_context_pb2.ContextStatus, str]] = ..., tags: _Optional[_Iterable[str]] = ..., owner: _Optional[str] = ..., name_contains: _Optional[str] = ...) -> None: ...

class ListContextsResponse(_message.Message):
    __slots__ = ("contexts", "page_info")
    CONTEXTS_FIELD_NUMBER: _ClassVar[int]
    PAGE_INFO_FIELD_NUMBER: _ClassVar[int]
    contexts: _containers.RepeatedCompositeFieldContainer[_context_pb2.Context]
    page_info: _pagination_pb2.PageInfo
    def __init__(self, contexts: _Optional[_Iterable[_Union[_context_pb2.Context, _Mapping]]] = ..., page_info: _Optional[_Union[_pagination_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class CreateContextRequest(_message.Message):
    __slots__ = ("name", "type", "metadata", "tags", "shared_with", "expire_time", "ttl", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SHARED_WITH_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    metadata: _struct_pb2.Struct
    tags: _containers.RepeatedScalarFieldContainer[str]
    shared_with: _containers.RepeatedScalarFieldContainer[str]
    expire_time: _timestamp_pb2.Timestamp
    ttl: _duration_pb2.Duration
    request_id: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., shared_with: _Optional[_Iterable[str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateContextResponse(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: _context_pb2.Context
    def __init__(self, context: _Optional[_Union[_context_pb2.Context, _Mapping]] = ...) -> None: ...

class GetContextRequest(_message.Message):
    __slots__ = ("context_id",)
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    def __init__(self, context_id: _Optional[str] = ...) -> None: ...

class GetContextResponse(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: _context_pb2.Context
    def __init__(self, context: _Optional[_Union[_context_pb2.Context, _Mapping]] = ...) -> None: ...

class UpdateContextRequest(_message.Message):
    __slots__ = ("context_id", "name", "metadata", "tags", "status", "expire_time", "ttl", "update_mask", "expected_version")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    name: str
    metadata: _struct_pb2.Struct
    tags: _containers.RepeatedScalarFieldContainer[str]
    status: _context_pb2.ContextStatus
    expire_time: _timestamp_pb2.Timestamp
    ttl: _duration_pb2.Duration
    update_mask: _field_mask_pb2.FieldMask
    expected_version: int
    def __init__(self, context_id: _Optional[str] = ..., name: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., status: _Optional[_Union[_context_pb2.ContextStatus, str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., expected_version: _Optional[int] = ...) -> None: ...

class UpdateContextResponse(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: _context_pb2.Context
    def __init__(self, context: _Optional[_Union[_context_pb2.Context, _Mapping]] = ...) -> None: ...

class DeleteContextRequest(_message.Message):
    __slots__ = ("context_id", "expected_version")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    expected_version: int
    def __init__(self, context_id: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class DeleteContextResponse(_message.Message):
    __slots__ = ("context_id", "deleted_layers")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    DELETED_LAYERS_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    deleted_layers: int
    def __init__(self, context_id: _Optional[str] = ..., deleted_layers: _Optional[int] = ...) -> None: ...

class ListLayersRequest(_message.Message):
    __slots__ = ("context_id", "page_size", "page_token", "layer_type")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LAYER_TYPE_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    page_size: int
    page_token: str
    layer_type: str
    def __init__(self, context_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., layer_type: _Optional[str] = ...) -> None: ...

class ListLayersResponse(_message.Message):
    __slots__ = ("layers", "page_info")
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    PAGE_INFO_FIELD_NUMBER: _ClassVar[int]
    layers: _containers.RepeatedCompositeFieldContainer[_context_pb2.Layer]
    page_info: _pagination_pb2.PageInfo
    def __init__(self, layers: _Optional[_Iterable[_Union[_context_pb2.Layer, _Mapping]]] = ..., page_info: _Optional[_Union[_pagination_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class AddLayerRequest(_message.Message):
    __slots__ = ("context_id", "name", "layer_type", "data", "position", "request_id")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LAYER_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    name: str
    layer_type: str
    data: _struct_pb2.Struct
    position: int
    request_id: str
    def __init__(self, context_id: _Optional[str] = ..., name: _Optional[str] = ..., layer_type: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., position: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class AddLayerResponse(_message.Message):
    __slots__ = ("layer", "context")
    LAYER_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    layer: _context_pb2.Layer
    context: _context_pb2.Context
    def __init__(self, layer: _Optional[_Union[_context_pb2.Layer, _Mapping]] = ..., context: _Optional[_Union[_context_pb2.Context, _Mapping]] = ...) -> None: ...

class GetLayerRequest(_message.Message):
    __slots__ = ("context_id", "layer_id")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    LAYER_ID_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    layer_id: str
    def __init__(self, context_id: _Optional[str] = ..., layer_id: _Optional[str] = ...) -> None: ...

class GetLayerResponse(_message.Message):
    __slots__ = ("layer",)
    LAYER_FIELD_NUMBER: _ClassVar[int]
    layer: _context_pb2.Layer
    def __init__(self, layer: _Optional[_Union[_context_pb2.Layer, _Mapping]] = ...) -> None: ...

class UpdateLayerRequest(_message.Message):
    __slots__ = ("context_id", "layer_id", "name", "layer_type", "data", "position", "update_mask", "expected_version")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    LAYER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LAYER_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    layer_id: str
    name: str
    layer_type: str
    data: _struct_pb2.Struct
    position: int
    update_mask: _field_mask_pb2.FieldMask
    expected_version: int
    def __init__(self, context_id: _Optional[str] = ..., layer_id: _Optional[str] = ..., name: _Optional[str] = ..., layer_type: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., position: _Optional[int] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., expected_version: _Optional[int] = ...) -> None: ...

class UpdateLayerResponse(_message.Message):
    __slots__ = ("layer", "context")
    LAYER_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    layer: _context_pb2.Layer
    context: _context_pb2.Context
    def __init__(self, layer: _Optional[_Union[_context_pb2.Layer, _Mapping]] = ..., context: _Optional[_Union[_context_pb2.Context, _Mapping]] = ...) -> None: ...

class DeleteLayerRequest(_message.Message):
    __slots__ = ("context_id", "layer_id", "expected_version")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    LAYER_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    layer_id: str
    expected_version: int
    def __init__(self, context_id: _Optional[str] = ..., layer_id: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class DeleteLayerResponse(_message.Message):
    __slots__ = ("layer_id", "context")
    LAYER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    layer_id: str
    context: _context_pb2.Context
    def __init__(self, layer_id: _Optional[str] = ..., context: _Optional[_Union[_context_pb2.Context, _Mapping]] = ...) -> None: ...

class GetResolvedContextRequest(_message.Message):
    __slots__ = ("context_id",)
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    def __init__(self, context_id: _Optional[str] = ...) -> None: ...

class GetResolvedContextResponse(_message.Message):
    __slots__ = ("context", "data", "layer_ids")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LAYER_IDS_FIELD_NUMBER: _ClassVar[int]
    context: _context_pb2.Context
    data: _struct_pb2.Struct
    layer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, context: _Optional[_Union[_context_pb2.Context, _Mapping]] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., layer_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ShareContextRequest(_message.Message):
    __slots__ = ("context_id", "service")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    service: str
    def __init__(self, context_id: _Optional[str] = ..., service: _Optional[str] = ...) -> None: ...

class ShareContextResponse(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: _context_pb2.Context
    def __init__(self, context: _Optional[_Union[_context_pb2.Context, _Mapping]] = ...) -> None: ...

class UnshareContextRequest(_message.Message):
    __slots__ = ("context_id", "service")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    service: str
    def __init__(self, context_id: _Optional[str] = ..., service: _Optional[str] = ...) -> None: ...

class UnshareContextResponse(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: _context_pb2.Context
    def __init__(self, context: _Optional[_Union[_context_pb2.Context, _Mapping]] = ...) -> None: ...

class GetContextAnalyticsRequest(_message.Message):
    __slots__ = ("context_id",)
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    def __init__(self, context_id: _Optional[str] = ...) -> None: ...

class GetContextAnalyticsResponse(_message.Message):
    __slots__ = ("analytics",)
    ANALYTICS_FIELD_NUMBER: _ClassVar[int]
    analytics: _context_pb2.ContextAnalytics
    def __init__(self, analytics: _Optional[_Union[_context_pb2.ContextAnalytics, _Mapping]] = ...) -> None: ...

class GetAnalyticsSummaryRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetAnalyticsSummaryResponse(_message.Message):
    __slots__ = ("total_contexts", "contexts_by_status", "contexts_by_type", "total_layers", "total_size_bytes", "total_size_mb", "total_access_count", "reads_last_24h", "writes_last_24h")
    class ContextsByTypeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TOTAL_CONTEXTS_FIELD_NUMBER: _ClassVar[int]
    CONTEXTS_BY_STATUS_FIELD_NUMBER: _ClassVar[int]
    CONTEXTS_BY_TYPE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_LAYERS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_MB_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ACCESS_COUNT_FIELD_NUMBER: _ClassVar[int]
    READS_LAST_24H_FIELD_NUMBER: _ClassVar[int]
    WRITES_LAST_24H_FIELD_NUMBER: _ClassVar[int]
    total_contexts: int
    contexts_by_status: _containers.RepeatedCompositeFieldContainer[_context_pb2.StatusCount]
    contexts_by_type: _containers.ScalarMap[str, int]
    total_layers: int
    total_size_bytes: int
    total_size_mb: float
    total_access_count: int
    reads_last_24h: int
    writes_last_24h: int
    def __init__(self, total_contexts: _Optional[int] = ..., contexts_by_status: _Optional[_Iterable[_Union[_context_pb2.StatusCount, _Mapping]]] = ..., contexts_by_type: _Optional[_Mapping[str, int]] = ..., total_layers: _Optional[int] = ..., total_size_bytes: _Optional[int] = ..., total_size_mb: _Optional[float] = ..., total_access_count: _Optional[int] = ..., reads_last_24h: _Optional[int] = ..., writes_last_24h: _Optional[int] = ...) -> None: ...

class GetUsageTrendsRequest(_message.Message):
    __slots__ = ("window", "start_time", "end_time", "last", "context_id", "type")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    window: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    last: int
    context_id: str
    type: str
    def __init__(self, window: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last: _Optional[int] = ..., context_id: _Optional[str] = ..., type: _Optional[str] = ...) -> None: ...

class GetUsageTrendsResponse(_message.Message):
    __slots__ = ("window", "buckets", "total_reads", "total_writes")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_READS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_WRITES_FIELD_NUMBER: _ClassVar[int]
    window: str
    buckets: _containers.RepeatedCompositeFieldContainer[_context_pb2.UsageBucket]
    total_reads: int
    total_writes: int
    def __init__(self, window: _Optional[str] = ..., buckets: _Optional[_Iterable[_Union[_context_pb2.UsageBucket, _Mapping]]] = ..., total_reads: _Optional[int] = ..., total_writes: _Optional[int] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("info", "context_count", "max_layer_bytes", "max_context_bytes")
    INFO_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_LAYER_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_CONTEXT_BYTES_FIELD_NUMBER: _ClassVar[int]
    info: _service_info_pb2.ServiceInfo
    context_count: int
    max_layer_bytes: int
    max_context_bytes: int
    def __init__(self, info: _Optional[_Union[_service_info_pb2.ServiceInfo, _Mapping]] = ..., context_count: _Optional[int] = ..., max_layer_bytes: _Optional[int] = ..., max_context_bytes: _Optional[int] = ...) -> None: ...

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
