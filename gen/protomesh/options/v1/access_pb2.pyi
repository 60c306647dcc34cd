from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Resource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESOURCE_UNSPECIFIED: _ClassVar[Resource]
    RESOURCE_ORGANIZATION: _ClassVar[Resource]
    RESOURCE_OWNER: _ClassVar[Resource]
    RESOURCE_SHARED: _ClassVar[Resource]
RESOURCE_UNSPECIFIED: Resource
RESOURCE_ORGANIZATION: Resource
RESOURCE_OWNER: Resource
RESOURCE_SHARED: Resource
ACCESS_FIELD_NUMBER: _ClassVar[int]
access: _descriptor.FieldDescriptor
HTTP_SERVED_FIELD_NUMBER: _ClassVar[int]
http_served: _descriptor.FieldDescriptor

class Access(_message.Message):
    __slots__ = ("public", "authenticated", "permission", "resource")
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATED_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    public: bool
    authenticated: bool
    permission: str
    resource: Resource
    def __init__(self, public: _Optional[bool] = ..., authenticated: _Optional[bool] = ..., permission: _Optional[str] = ..., resource: _Optional[_Union[Resource, str]] = ...) -> None: ...

class HttpServed(_message.Message):
    __slots__ = ("deployable",)
    DEPLOYABLE_FIELD_NUMBER: _ClassVar[int]
    deployable: str
    def __init__(self, deployable: _Optional[str] = ...) -> None: ...
