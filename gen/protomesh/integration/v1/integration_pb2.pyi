import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protomesh.common.v1 import service_info_pb2 as _service_info_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IntegrationKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTEGRATION_KIND_UNSPECIFIED: _ClassVar[IntegrationKind]
    INTEGRATION_KIND_HTTP: _ClassVar[IntegrationKind]
    INTEGRATION_KIND_POSTGRES: _ClassVar[IntegrationKind]
    INTEGRATION_KIND_SMTP: _ClassVar[IntegrationKind]
    INTEGRATION_KIND_LOCAL_STORAGE: _ClassVar[IntegrationKind]
    INTEGRATION_KIND_S3: _ClassVar[IntegrationKind]
    INTEGRATION_KIND_NATS: _ClassVar[IntegrationKind]
INTEGRATION_KIND_UNSPECIFIED: IntegrationKind
INTEGRATION_KIND_HTTP: IntegrationKind
INTEGRATION_KIND_POSTGRES: IntegrationKind
INTEGRATION_KIND_SMTP: IntegrationKind
INTEGRATION_KIND_LOCAL_STORAGE: IntegrationKind
INTEGRATION_KIND_S3: IntegrationKind
INTEGRATION_KIND_NATS: IntegrationKind

class Integration(_message.Message):
    __slots__ = ("integration_id", "name", "kind", "description", "config", "has_credentials", "credential_keys", "enabled", "labels", "last_probe", "version", "create_time", "update_time", "organization_id")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    HAS_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_KEYS_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LAST_PROBE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    name: str
    kind: IntegrationKind
    description: str
    config: _struct_pb2.Struct
    has_credentials: bool
    credential_keys: _containers.RepeatedScalarFieldContainer[str]
    enabled: bool
    labels: _containers.ScalarMap[str, str]
    last_probe: ProbeSummary
    version: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, integration_id: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[_Union[IntegrationKind, str]] = ..., description: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., has_credentials: _Optional[bool] = ..., credential_keys: _Optional[_Iterable[str]] = ..., enabled: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ..., last_probe: _Optional[_Union[ProbeSummary, _Mapping]] = ..., version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ProbeSummary(_message.Message):
    __slots__ = ("state", "detail", "latency", "check_time", "probe")
    STATE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    CHECK_TIME_FIELD_NUMBER: _ClassVar[int]
    PROBE_FIELD_NUMBER: _ClassVar[int]
    state: _service_info_pb2.HealthState
    detail: str
    latency: _duration_pb2.Duration
    check_time: _timestamp_pb2.Timestamp
    probe: str
    def __init__(self, state: _Optional[_Union[_service_info_pb2.HealthState, str]] = ..., detail: _Optional[str] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., check_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., probe: _Optional[str] = ...) -> None: ...

class ProbeStep(_message.Message):
    __slots__ = ("name", "ok", "detail", "latency")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    name: str
    ok: bool
    detail: str
    latency: _duration_pb2.Duration
    def __init__(self, name: _Optional[str] = ..., ok: _Optional[bool] = ..., detail: _Optional[str] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class TokenBucketStatus(_message.Message):
    __slots__ = ("key", "rate", "burst", "available", "admitted", "rejected")
    KEY_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    BURST_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    ADMITTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    key: str
    rate: float
    burst: float
    available: float
    admitted: int
    rejected: int
    def __init__(self, key: _Optional[str] = ..., rate: _Optional[float] = ..., burst: _Optional[float] = ..., available: _Optional[float] = ..., admitted: _Optional[int] = ..., rejected: _Optional[int] = ...) -> None: ...

class BreakerTransition(_message.Message):
    __slots__ = ("state", "time")
    STATE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    state: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, state: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CallCounters(_message.Message):
    __slots__ = ("calls", "succeeded", "failed", "retries", "fallbacks", "short_circuited", "budget_exhausted", "last_errors")
    CALLS_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    SHORT_CIRCUITED_FIELD_NUMBER: _ClassVar[int]
    BUDGET_EXHAUSTED_FIELD_NUMBER: _ClassVar[int]
    LAST_ERRORS_FIELD_NUMBER: _ClassVar[int]
    calls: int
    succeeded: int
    failed: int
    retries: int
    fallbacks: int
    short_circuited: int
    budget_exhausted: int
    last_errors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, calls: _Optional[int] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., retries: _Optional[int] = ..., fallbacks: _Optional[int] = ..., short_circuited: _Optional[int] = ..., budget_exhausted: _Optional[int] = ..., last_errors: _Optional[_Iterable[str]] = ...) -> None: ...

class CacheStats(_message.Message):
    __slots__ = ("enabled", "ttl", "max_entries", "entries", "size_bytes", "hits", "misses", "evictions", "expirations", "stale_served", "hit_ratio")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    MAX_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    EVICTIONS_FIELD_NUMBER: _ClassVar[int]
    EXPIRATIONS_FIELD_NUMBER: _ClassVar[int]
    STALE_SERVED_FIELD_NUMBER: _ClassVar[int]
    HIT_RATIO_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    ttl: _duration_pb2.Duration
    max_entries: int
    entries: int
    size_bytes: int
    hits: int
    misses: int
    evictions: int
    expirations: int
    stale_served: int
    hit_ratio: float
    def __init__(self, enabled: _Optional[bool] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_entries: _Optional[int] = ..., entries: _Optional[int] = ..., size_bytes: _Optional[int] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ..., evictions: _Optional[int] = ..., expirations: _Optional[int] = ..., stale_served: _Optional[int] = ..., hit_ratio: _Optional[float] = ...) -> None: ...

class ClientKind(_message.Message):
    __slots__ = ("client_type", "kind", "description", "operations", "cacheable_operations", "config_fields", "credential_fields", "integration_count")
    CLIENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    CACHEABLE_OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELDS_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELDS_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_COUNT_FIELD_NUMBER: _ClassVar[int]
    client_type: str
    kind: IntegrationKind
    description: str
    operations: _containers.RepeatedScalarFieldContainer[str]
    cacheable_operations: _containers.RepeatedScalarFieldContainer[str]
    config_fields: _containers.RepeatedScalarFieldContainer[str]
    credential_fields: _containers.RepeatedScalarFieldContainer[str]
    integration_count: int
    def __init__(self, client_type: _Optional[str] = ..., kind: _Optional[_Union[IntegrationKind, str]] = ..., description: _Optional[str] = ..., operations: _Optional[_Iterable[str]] = ..., cacheable_operations: _Optional[_Iterable[str]] = ..., config_fields: _Optional[_Iterable[str]] = ..., credential_fields: _Optional[_Iterable[str]] = ..., integration_count: _Optional[int] = ...) -> None: ...

class ClientHealth(_message.Message):
    __slots__ = ("client_type", "state", "integrations")
    CLIENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    INTEGRATIONS_FIELD_NUMBER: _ClassVar[int]
    client_type: str
    state: _service_info_pb2.HealthState
    integrations: _containers.RepeatedCompositeFieldContainer[_service_info_pb2.DependencyHealth]
    def __init__(self, client_type: _Optional[str] = ..., state: _Optional[_Union[_service_info_pb2.HealthState, str]] = ..., integrations: _Optional[_Iterable[_Union[_service_info_pb2.DependencyHealth, _Mapping]]] = ...) -> None: ...
