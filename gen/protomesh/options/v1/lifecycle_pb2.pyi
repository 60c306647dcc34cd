from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor
LIFECYCLE_FIELD_NUMBER: _ClassVar[int]
lifecycle: _descriptor.FieldDescriptor
METHOD_LIFECYCLE_FIELD_NUMBER: _ClassVar[int]
method_lifecycle: _descriptor.FieldDescriptor

class Lifecycle(_message.Message):
    __slots__ = ("deprecated_since", "sunset", "migration_url", "successor", "unversioned")
    DEPRECATED_SINCE_FIELD_NUMBER: _ClassVar[int]
    SUNSET_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_URL_FIELD_NUMBER: _ClassVar[int]
    SUCCESSOR_FIELD_NUMBER: _ClassVar[int]
    UNVERSIONED_FIELD_NUMBER: _ClassVar[int]
    deprecated_since: str
    sunset: str
    migration_url: str
    successor: str
    unversioned: bool
    def __init__(self, deprecated_since: _Optional[str] = ..., sunset: _Optional[str] = ..., migration_url: _Optional[str] = ..., successor: _Optional[str] = ..., unversioned: _Optional[bool] = ...) -> None: ...
