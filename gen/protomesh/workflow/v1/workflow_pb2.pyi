import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecutionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_STATUS_UNSPECIFIED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_PENDING: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_RUNNING: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_SUCCEEDED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_FAILED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_CANCELLED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_TERMINATED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_COMPENSATING: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_NEEDS_ATTENTION: _ClassVar[ExecutionStatus]

class TaskStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATUS_UNSPECIFIED: _ClassVar[TaskStatus]
    TASK_STATUS_RUNNING: _ClassVar[TaskStatus]
    TASK_STATUS_SUCCEEDED: _ClassVar[TaskStatus]
    TASK_STATUS_FAILED: _ClassVar[TaskStatus]
EXECUTION_STATUS_UNSPECIFIED: ExecutionStatus
EXECUTION_STATUS_PENDING: ExecutionStatus
EXECUTION_STATUS_RUNNING: ExecutionStatus
EXECUTION_STATUS_SUCCEEDED: ExecutionStatus
EXECUTION_STATUS_FAILED: ExecutionStatus
EXECUTION_STATUS_CANCELLED: ExecutionStatus
EXECUTION_STATUS_TERMINATED: ExecutionStatus
EXECUTION_STATUS_COMPENSATING: ExecutionStatus
EXECUTION_STATUS_NEEDS_ATTENTION: ExecutionStatus
TASK_STATUS_UNSPECIFIED: TaskStatus
TASK_STATUS_RUNNING: TaskStatus
TASK_STATUS_SUCCEEDED: TaskStatus
TASK_STATUS_FAILED: TaskStatus

class Definition(_message.Message):
    __slots__ = ("name", "revision", "document_version", "namespace", "source", "summary", "create_time", "created_by", "organization_id", "task_paths")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_PATHS_FIELD_NUMBER: _ClassVar[int]
    name: str
    revision: int
    document_version: str
    namespace: str
    source: str
    summary: str
    create_time: _timestamp_pb2.Timestamp
    created_by: str
    organization_id: str
    task_paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., revision: _Optional[int] = ..., document_version: _Optional[str] = ..., namespace: _Optional[str] = ..., source: _Optional[str] = ..., summary: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., organization_id: _Optional[str] = ..., task_paths: _Optional[_Iterable[str]] = ...) -> None: ...

class ExecutionError(_message.Message):
    __slots__ = ("type", "status", "title", "detail", "instance")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    type: str
    status: int
    title: str
    detail: str
    instance: str
    def __init__(self, type: _Optional[str] = ..., status: _Optional[int] = ..., title: _Optional[str] = ..., detail: _Optional[str] = ..., instance: _Optional[str] = ...) -> None: ...

class Execution(_message.Message):
    __slots__ = ("execution_id", "definition_name", "revision", "status", "input", "output", "error", "waiting", "compensated", "create_time", "end_time", "parent_execution_id", "organization_id", "created_by", "trace_id")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_NAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    COMPENSATED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PARENT_EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    definition_name: str
    revision: int
    status: ExecutionStatus
    input: _struct_pb2.Struct
    output: _struct_pb2.Struct
    error: ExecutionError
    waiting: str
    compensated: bool
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    parent_execution_id: str
    organization_id: str
    created_by: str
    trace_id: str
    def __init__(self, execution_id: _Optional[str] = ..., definition_name: _Optional[str] = ..., revision: _Optional[int] = ..., status: _Optional[_Union[ExecutionStatus, str]] = ..., input: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., output: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[_Union[ExecutionError, _Mapping]] = ..., waiting: _Optional[str] = ..., compensated: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., parent_execution_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., created_by: _Optional[str] = ..., trace_id: _Optional[str] = ...) -> None: ...

class TaskRecord(_message.Message):
    __slots__ = ("path", "kind", "attempt", "status", "input", "output", "error", "start_time", "end_time", "compensation")
    PATH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPENSATION_FIELD_NUMBER: _ClassVar[int]
    path: str
    kind: str
    attempt: int
    status: TaskStatus
    input: _struct_pb2.Value
    output: _struct_pb2.Value
    error: ExecutionError
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    compensation: bool
    def __init__(self, path: _Optional[str] = ..., kind: _Optional[str] = ..., attempt: _Optional[int] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., input: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., output: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., error: _Optional[_Union[ExecutionError, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., compensation: _Optional[bool] = ...) -> None: ...

class StatusCount(_message.Message):
    __slots__ = ("status", "count")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    status: ExecutionStatus
    count: int
    def __init__(self, status: _Optional[_Union[ExecutionStatus, str]] = ..., count: _Optional[int] = ...) -> None: ...

class TaskFailureRate(_message.Message):
    __slots__ = ("path", "attempts", "failures", "failure_rate")
    PATH_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    FAILURE_RATE_FIELD_NUMBER: _ClassVar[int]
    path: str
    attempts: int
    failures: int
    failure_rate: float
    def __init__(self, path: _Optional[str] = ..., attempts: _Optional[int] = ..., failures: _Optional[int] = ..., failure_rate: _Optional[float] = ...) -> None: ...

class DefinitionAnalytics(_message.Message):
    __slots__ = ("definition_name", "status_counts", "duration_p50", "duration_p95", "duration_p99", "task_failures", "total")
    DEFINITION_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_COUNTS_FIELD_NUMBER: _ClassVar[int]
    DURATION_P50_FIELD_NUMBER: _ClassVar[int]
    DURATION_P95_FIELD_NUMBER: _ClassVar[int]
    DURATION_P99_FIELD_NUMBER: _ClassVar[int]
    TASK_FAILURES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    definition_name: str
    status_counts: _containers.RepeatedCompositeFieldContainer[StatusCount]
    duration_p50: _duration_pb2.Duration
    duration_p95: _duration_pb2.Duration
    duration_p99: _duration_pb2.Duration
    task_failures: _containers.RepeatedCompositeFieldContainer[TaskFailureRate]
    total: int
    def __init__(self, definition_name: _Optional[str] = ..., status_counts: _Optional[_Iterable[_Union[StatusCount, _Mapping]]] = ..., duration_p50: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., duration_p95: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., duration_p99: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., task_failures: _Optional[_Iterable[_Union[TaskFailureRate, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...
