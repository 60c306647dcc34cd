import datetime

from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeadLetterReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEAD_LETTER_REASON_UNSPECIFIED: _ClassVar[DeadLetterReason]
    DEAD_LETTER_REASON_HANDLER_FAILED: _ClassVar[DeadLetterReason]
    DEAD_LETTER_REASON_INVALID_EVENT: _ClassVar[DeadLetterReason]
DEAD_LETTER_REASON_UNSPECIFIED: DeadLetterReason
DEAD_LETTER_REASON_HANDLER_FAILED: DeadLetterReason
DEAD_LETTER_REASON_INVALID_EVENT: DeadLetterReason

class Envelope(_message.Message):
    __slots__ = ("id", "source", "type", "subject", "time", "schema_version", "trace_parent", "trace_state", "data", "organization_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRACE_PARENT_FIELD_NUMBER: _ClassVar[int]
    TRACE_STATE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    source: str
    type: str
    subject: str
    time: _timestamp_pb2.Timestamp
    schema_version: int
    trace_parent: str
    trace_state: str
    data: _any_pb2.Any
    organization_id: str
    def __init__(self, id: _Optional[str] = ..., source: _Optional[str] = ..., type: _Optional[str] = ..., subject: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., schema_version: _Optional[int] = ..., trace_parent: _Optional[str] = ..., trace_state: _Optional[str] = ..., data: _Optional[_Union[_any_pb2.Any, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("reason", "error", "consumer", "delivery_count", "original_subject", "original_stream", "original_sequence", "data", "headers", "event_id", "event_type", "dead_letter_time")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_COUNT_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_STREAM_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_TIME_FIELD_NUMBER: _ClassVar[int]
    reason: DeadLetterReason
    error: str
    consumer: str
    delivery_count: int
    original_subject: str
    original_stream: str
    original_sequence: int
    data: bytes
    headers: _containers.ScalarMap[str, str]
    event_id: str
    event_type: str
    dead_letter_time: _timestamp_pb2.Timestamp
    def __init__(self, reason: _Optional[_Union[DeadLetterReason, str]] = ..., error: _Optional[str] = ..., consumer: _Optional[str] = ..., delivery_count: _Optional[int] = ..., original_subject: _Optional[str] = ..., original_stream: _Optional[str] = ..., original_sequence: _Optional[int] = ..., data: _Optional[bytes] = ..., headers: _Optional[_Mapping[str, str]] = ..., event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., dead_letter_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TaskProgress(_message.Message):
    __slots__ = ("task_id", "kind", "progress", "message", "worker", "report_time")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    REPORT_TIME_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    kind: str
    progress: float
    message: str
    worker: str
    report_time: _timestamp_pb2.Timestamp
    def __init__(self, task_id: _Optional[str] = ..., kind: _Optional[str] = ..., progress: _Optional[float] = ..., message: _Optional[str] = ..., worker: _Optional[str] = ..., report_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
