import datetime

from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RetryCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RETRY_CODE_UNSPECIFIED: _ClassVar[RetryCode]
    RETRY_CODE_UNAVAILABLE: _ClassVar[RetryCode]
    RETRY_CODE_RESOURCE_EXHAUSTED: _ClassVar[RetryCode]
    RETRY_CODE_DEADLINE_EXCEEDED: _ClassVar[RetryCode]
RETRY_CODE_UNSPECIFIED: RetryCode
RETRY_CODE_UNAVAILABLE: RetryCode
RETRY_CODE_RESOURCE_EXHAUSTED: RetryCode
RETRY_CODE_DEADLINE_EXCEEDED: RetryCode
CALL_POLICY_FIELD_NUMBER: _ClassVar[int]
call_policy: _descriptor.FieldDescriptor
SERVICE_POLICY_FIELD_NUMBER: _ClassVar[int]
service_policy: _descriptor.FieldDescriptor

class RetryPolicy(_message.Message):
    __slots__ = ("max_attempts", "retry_codes", "initial_backoff", "max_backoff")
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RETRY_CODES_FIELD_NUMBER: _ClassVar[int]
    INITIAL_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    MAX_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    max_attempts: int
    retry_codes: _containers.RepeatedScalarFieldContainer[RetryCode]
    initial_backoff: _duration_pb2.Duration
    max_backoff: _duration_pb2.Duration
    def __init__(self, max_attempts: _Optional[int] = ..., retry_codes: _Optional[_Iterable[_Union[RetryCode, str]]] = ..., initial_backoff: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_backoff: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class BreakerPolicy(_message.Message):
    __slots__ = ("failure_threshold", "recovery_timeout")
    FAILURE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    failure_threshold: int
    recovery_timeout: _duration_pb2.Duration
    def __init__(self, failure_threshold: _Optional[int] = ..., recovery_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class CallPolicy(_message.Message):
    __slots__ = ("timeout", "retry")
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    timeout: _duration_pb2.Duration
    retry: RetryPolicy
    def __init__(self, timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., retry: _Optional[_Union[RetryPolicy, _Mapping]] = ...) -> None: ...

class ServicePolicy(_message.Message):
    __slots__ = ("default_call", "breaker", "max_concurrent_calls")
    DEFAULT_CALL_FIELD_NUMBER: _ClassVar[int]
    BREAKER_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_CALLS_FIELD_NUMBER: _ClassVar[int]
    default_call: CallPolicy
    breaker: BreakerPolicy
    max_concurrent_calls: int
    def __init__(self, default_call: _Optional[_Union[CallPolicy, _Mapping]] = ..., breaker: _Optional[_Union[BreakerPolicy, _Mapping]] = ..., max_concurrent_calls: _Optional[int] = ...) -> None: ...
