import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protomesh.common.v1 import rules_pb2 as _rules_pb2
from protomesh.common.v1 import pagination_pb2 as _pagination_pb2
from protomesh.common.v1 import service_info_pb2 as _service_info_pb2
from protomesh.integration.v1 import integration_pb2 as _integration_pb2
from protomesh.options.v1 import access_pb2 as _access_pb2
from protomesh.options.v1 import resilience_pb2 as _resilience_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListIntegrationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "kind", "name_contains", "enabled", "label")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    kind: _integration_pb2.IntegrationKind
    name_contains: str
    enabled: str
    label: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., kind: _Optional[_Union[_integration_pb2.IntegrationKind, str]] = ..., name_contains: _Optional[str] = ..., enabled: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class ListIntegrationsResponse(_message.Message):
    __slots__ = ("integrations", "page_info")
    INTEGRATIONS_FIELD_NUMBER: _ClassVar[int]
    PAGE_INFO_FIELD_NUMBER: _ClassVar[int]
    integrations: _containers.RepeatedCompositeFieldContainer[_integration_pb2.Integration]
    page_info: _pagination_pb2.PageInfo
    def __init__(self, integrations: _Optional[_Iterable[_Union[_integration_pb2.Integration, _Mapping]]] = ..., page_info: _Optional[_Union[_pagination_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class CreateIntegrationRequest(_message.Message):
    __slots__ = ("name", "kind", "description", "config", "credentials", "labels", "disabled", "request_id")
    class CredentialsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: _integration_pb2.IntegrationKind
    description: str
    config: _struct_pb2.Struct
    credentials: _containers.ScalarMap[str, str]
    labels: _containers.ScalarMap[str, str]
    disabled: bool
    request_id: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[_integration_pb2.IntegrationKind, str]] = ..., description: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., credentials: _Optional[_Mapping[str, str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., disabled: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateIntegrationResponse(_message.Message):
    __slots__ = ("integration",)
    INTEGRATION_FIELD_NUMBER: _ClassVar[int]
    integration: _integration_pb2.Integration
    def __init__(self, integration: _Optional[_Union[_integration_pb2.Integration, _Mapping]] = ...) -> None: ...

class GetIntegrationRequest(_message.Message):
    __slots__ = ("integration_id",)
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    def __init__(self, integration_id: _Optional[str] = ...) -> None: ...

class GetIntegrationResponse(_message.Message):
    __slots__ = ("integration",)
    INTEGRATION_FIELD_NUMBER: _ClassVar[int]
    integration: _integration_pb2.Integration
    def __init__(self, integration: _Optional[_Union[_integration_pb2.Integration, _Mapping]] = ...) -> None: ...

class UpdateIntegrationRequest(_message.Message):
    __slots__ = ("integration_id", "name", "description", "config", "credentials", "labels", "enabled", "update_mask", "expected_version")
    class CredentialsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    name: str
    description: str
    config: _struct_pb2.Struct
    credentials: _containers.ScalarMap[str, str]
    labels: _containers.ScalarMap[str, str]
    enabled: bool
    update_mask: _field_mask_pb2.FieldMask
    expected_version: int
    def __init__(self, integration_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., credentials: _Optional[_Mapping[str, str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., enabled: _Optional[bool] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., expected_version: _Optional[int] = ...) -> None: ...

class UpdateIntegrationResponse(_message.Message):
    __slots__ = ("integration",)
    INTEGRATION_FIELD_NUMBER: _ClassVar[int]
    integration: _integration_pb2.Integration
    def __init__(self, integration: _Optional[_Union[_integration_pb2.Integration, _Mapping]] = ...) -> None: ...

class DeleteIntegrationRequest(_message.Message):
    __slots__ = ("integration_id",)
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    def __init__(self, integration_id: _Optional[str] = ...) -> None: ...

class DeleteIntegrationResponse(_message.Message):
    __slots__ = ("integration_id",)
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    def __init__(self, integration_id: _Optional[str] = ...) -> None: ...

class CheckIntegrationHealthRequest(_message.Message):
    __slots__ = ("integration_id",)
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    def __init__(self, integration_id: _Optional[str] = ...) -> None: ...

class CheckIntegrationHealthResponse(_message.Message):
    __slots__ = ("integration_id", "probe", "circuit_state", "instance_id")
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    PROBE_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_STATE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    probe: _integration_pb2.ProbeSummary
    circuit_state: str
    instance_id: str
    def __init__(self, integration_id: _Optional[str] = ..., probe: _Optional[_Union[_integration_pb2.ProbeSummary, _Mapping]] = ..., circuit_state: _Optional[str] = ..., instance_id: _Optional[str] = ...) -> None: ...

class GetIntegrationStatusRequest(_message.Message):
    __slots__ = ("integration_id",)
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    def __init__(self, integration_id: _Optional[str] = ...) -> None: ...

class GetIntegrationStatusResponse(_message.Message):
    __slots__ = ("integration", "calls", "circuit_state", "rate_limit", "cache", "in_flight", "instance_id")
    INTEGRATION_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_STATE_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    integration: _integration_pb2.Integration
    calls: _integration_pb2.CallCounters
    circuit_state: str
    rate_limit: _integration_pb2.TokenBucketStatus
    cache: _integration_pb2.CacheStats
    in_flight: int
    instance_id: str
    def __init__(self, integration: _Optional[_Union[_integration_pb2.Integration, _Mapping]] = ..., calls: _Optional[_Union[_integration_pb2.CallCounters, _Mapping]] = ..., circuit_state: _Optional[str] = ..., rate_limit: _Optional[_Union[_integration_pb2.TokenBucketStatus, _Mapping]] = ..., cache: _Optional[_Union[_integration_pb2.CacheStats, _Mapping]] = ..., in_flight: _Optional[int] = ..., instance_id: _Optional[str] = ...) -> None: ...

class TestIntegrationRequest(_message.Message):
    __slots__ = ("integration_id",)
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    def __init__(self, integration_id: _Optional[str] = ...) -> None: ...

class TestIntegrationResponse(_message.Message):
    __slots__ = ("integration_id", "ok", "steps", "probe")
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    PROBE_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    ok: bool
    steps: _containers.RepeatedCompositeFieldContainer[_integration_pb2.ProbeStep]
    probe: _integration_pb2.ProbeSummary
    def __init__(self, integration_id: _Optional[str] = ..., ok: _Optional[bool] = ..., steps: _Optional[_Iterable[_Union[_integration_pb2.ProbeStep, _Mapping]]] = ..., probe: _Optional[_Union[_integration_pb2.ProbeSummary, _Mapping]] = ...) -> None: ...

class InvokeIntegrationRequest(_message.Message):
    __slots__ = ("integration_id", "operation", "parameters", "client_key", "skip_cache", "request_id")
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_KEY_FIELD_NUMBER: _ClassVar[int]
    SKIP_CACHE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    operation: str
    parameters: _struct_pb2.Struct
    client_key: str
    skip_cache: bool
    request_id: str
    def __init__(self, integration_id: _Optional[str] = ..., operation: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., client_key: _Optional[str] = ..., skip_cache: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class InvokeIntegrationResponse(_message.Message):
    __slots__ = ("result", "from_cache", "stale", "attempts", "duration", "instance_id")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FROM_CACHE_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    result: _struct_pb2.Struct
    from_cache: bool
    stale: bool
    attempts: int
    duration: _duration_pb2.Duration
    instance_id: str
    def __init__(self, result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., from_cache: _Optional[bool] = ..., stale: _Optional[bool] = ..., attempts: _Optional[int] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., instance_id: _Optional[str] = ...) -> None: ...

class GetRateLimitStatusRequest(_message.Message):
    __slots__ = ("integration_id",)
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    def __init__(self, integration_id: _Optional[str] = ...) -> None: ...

class GetRateLimitStatusResponse(_message.Message):
    __slots__ = ("integration_id", "integration", "clients", "instance_id")
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    integration: _integration_pb2.TokenBucketStatus
    clients: _containers.RepeatedCompositeFieldContainer[_integration_pb2.TokenBucketStatus]
    instance_id: str
    def __init__(self, integration_id: _Optional[str] = ..., integration: _Optional[_Union[_integration_pb2.TokenBucketStatus, _Mapping]] = ..., clients: _Optional[_Iterable[_Union[_integration_pb2.TokenBucketStatus, _Mapping]]] = ..., instance_id: _Optional[str] = ...) -> None: ...

class GetCacheStatsRequest(_message.Message):
    __slots__ = ("integration_id",)
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    def __init__(self, integration_id: _Optional[str] = ...) -> None: ...

class GetCacheStatsResponse(_message.Message):
    __slots__ = ("integration_id", "cache", "instance_id")
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    cache: _integration_pb2.CacheStats
    instance_id: str
    def __init__(self, integration_id: _Optional[str] = ..., cache: _Optional[_Union[_integration_pb2.CacheStats, _Mapping]] = ..., instance_id: _Optional[str] = ...) -> None: ...

class ClearCacheRequest(_message.Message):
    __slots__ = ("integration_id",)
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    def __init__(self, integration_id: _Optional[str] = ...) -> None: ...

class ClearCacheResponse(_message.Message):
    __slots__ = ("integration_id", "cleared_entries", "cache", "instance_id")
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    CLEARED_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    cleared_entries: int
    cache: _integration_pb2.CacheStats
    instance_id: str
    def __init__(self, integration_id: _Optional[str] = ..., cleared_entries: _Optional[int] = ..., cache: _Optional[_Union[_integration_pb2.CacheStats, _Mapping]] = ..., instance_id: _Optional[str] = ...) -> None: ...

class GetCircuitBreakerStatusRequest(_message.Message):
    __slots__ = ("integration_id",)
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    def __init__(self, integration_id: _Optional[str] = ...) -> None: ...

class GetCircuitBreakerStatusResponse(_message.Message):
    __slots__ = ("integration_id", "state", "failure_count", "failure_threshold", "recovery_timeout", "open_time", "transitions", "calls", "instance_id")
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    OPEN_TIME_FIELD_NUMBER: _ClassVar[int]
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    state: str
    failure_count: int
    failure_threshold: int
    recovery_timeout: _duration_pb2.Duration
    open_time: _timestamp_pb2.Timestamp
    transitions: _containers.RepeatedCompositeFieldContainer[_integration_pb2.BreakerTransition]
    calls: _integration_pb2.CallCounters
    instance_id: str
    def __init__(self, integration_id: _Optional[str] = ..., state: _Optional[str] = ..., failure_count: _Optional[int] = ..., failure_threshold: _Optional[int] = ..., recovery_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., open_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., transitions: _Optional[_Iterable[_Union[_integration_pb2.BreakerTransition, _Mapping]]] = ..., calls: _Optional[_Union[_integration_pb2.CallCounters, _Mapping]] = ..., instance_id: _Optional[str] = ...) -> None: ...

class ResetCircuitBreakerRequest(_message.Message):
    __slots__ = ("integration_id",)
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    def __init__(self, integration_id: _Optional[str] = ...) -> None: ...

class ResetCircuitBreakerResponse(_message.Message):
    __slots__ = ("integration_id", "previous_state", "state", "instance_id")
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    previous_state: str
    state: str
    instance_id: str
    def __init__(self, integration_id: _Optional[str] = ..., previous_state: _Optional[str] = ..., state: _Optional[str] = ..., instance_id: _Optional[str] = ...) -> None: ...

class ListClientsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListClientsResponse(_message.Message):
    __slots__ = ("clients",)
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    clients: _containers.RepeatedCompositeFieldContainer[_integration_pb2.ClientKind]
    def __init__(self, clients: _Optional[_Iterable[_Union[_integration_pb2.ClientKind, _Mapping]]] = ...) -> None: ...

class CheckAllClientsHealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CheckAllClientsHealthResponse(_message.Message):
    __slots__ = ("state", "clients")
    STATE_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    state: _service_info_pb2.HealthState
    clients: _containers.RepeatedCompositeFieldContainer[_integration_pb2.ClientHealth]
    def __init__(self, state: _Optional[_Union[_service_info_pb2.HealthState, str]] = ..., clients: _Optional[_Iterable[_Union[_integration_pb2.ClientHealth, _Mapping]]] = ...) -> None: ...

class CheckClientHealthRequest(_message.Message):
    __slots__ = ("client_type",)
    CLIENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    client_type: str
    def __init__(self, client_type: _Optional[str] = ...) -> None: ...

class CheckClientHealthResponse(_message.Message):
    __slots__ = ("health",)
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    health: _integration_pb2.ClientHealth
    def __init__(self, health: _Optional[_Union[_integration_pb2.ClientHealth, _Mapping]] = ...) -> None: ...

class TestClientRequest(_message.Message):
    __slots__ = ("client_type", "config", "credentials")
    class CredentialsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CLIENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    client_type: str
    config: _struct_pb2.Struct
    credentials: _containers.ScalarMap[str, str]
    def __init__(self, client_type: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., credentials: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ClientTestResult(_message.Message):
    __slots__ = ("integration_id", "name", "ok", "steps", "latency")
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    name: str
    ok: bool
    steps: _containers.RepeatedCompositeFieldContainer[_integration_pb2.ProbeStep]
    latency: _duration_pb2.Duration
    def __init__(self, integration_id: _Optional[str] = ..., name: _Optional[str] = ..., ok: _Optional[bool] = ..., steps: _Optional[_Iterable[_Union[_integration_pb2.ProbeStep, _Mapping]]] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class TestClientResponse(_message.Message):
    __slots__ = ("client_type", "ok", "results")
    CLIENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    client_type: str
    ok: bool
    results: _containers.RepeatedCompositeFieldContainer[ClientTestResult]
    def __init__(self, client_type: _Optional[str] = ..., ok: _Optional[bool] = ..., results: _Optional[_Iterable[_Union[ClientTestResult, _Mapping]]] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("info", "integration_count", "client_types", "encryption_key_id", "encryption_key_source", "probe_timeout")
    INFO_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_COUNT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTION_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTION_KEY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    PROBE_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    info: _service_info_pb2.ServiceInfo
    integration_count: int
    client_types: _containers.RepeatedScalarFieldContainer[str]
    encryption_key_id: str
    encryption_key_source: str
    probe_timeout: _duration_pb2.Duration
    def __init__(self, info: _Optional[_Union[_service_info_pb2.ServiceInfo, _Mapping]] = ..., integration_count: _Optional[int] = ..., client_types: _Optional[_Iterable[str]] = ..., encryption_key_id: _Optional[str] = ..., encryption_key_source: _Optional[str] = ..., probe_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

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
