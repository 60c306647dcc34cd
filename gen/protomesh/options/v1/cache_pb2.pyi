import datetime

from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
CACHE_FIELD_NUMBER: _ClassVar[int]
cache: _descriptor.FieldDescriptor

class Cache(_message.Message):
    __slots__ = ("ttl", "varies_by_principal", "client_max_age")
    TTL_FIELD_NUMBER: _ClassVar[int]
    VARIES_BY_PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MAX_AGE_FIELD_NUMBER: _ClassVar[int]
    ttl: _duration_pb2.Duration
    varies_by_principal: bool
    client_max_age: _duration_pb2.Duration
    def __init__(self, ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., varies_by_principal: _Optional[bool] = ..., client_max_age: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...
