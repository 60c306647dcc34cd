from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor
ACCESS_FIELD_NUMBER: _ClassVar[int]
access: _descriptor.FieldDescriptor
HTTP_SERVED_FIELD_NUMBER: _ClassVar[int]
http_served: _descriptor.FieldDescriptor

class Access(_message.Message):
    __slots__ = ("public",)
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    public: bool
    def __init__(self, public: _Optional[bool] = ...) -> None: ...

class HttpServed(_message.Message):
    __slots__ = ("deployable",)
    DEPLOYABLE_FIELD_NUMBER: _ClassVar[int]
    deployable: str
    def __init__(self, deployable: _Optional[str] = ...) -> None: ...
