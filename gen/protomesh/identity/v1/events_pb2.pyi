import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protomesh.identity.v1 import identity_pb2 as _identity_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MembershipChange(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMBERSHIP_CHANGE_UNSPECIFIED: _ClassVar[MembershipChange]
    MEMBERSHIP_CHANGE_ADDED: _ClassVar[MembershipChange]
    MEMBERSHIP_CHANGE_ROLE_CHANGED: _ClassVar[MembershipChange]
    MEMBERSHIP_CHANGE_REMOVED: _ClassVar[MembershipChange]
    MEMBERSHIP_CHANGE_INVITED: _ClassVar[MembershipChange]
MEMBERSHIP_CHANGE_UNSPECIFIED: MembershipChange
MEMBERSHIP_CHANGE_ADDED: MembershipChange
MEMBERSHIP_CHANGE_ROLE_CHANGED: MembershipChange
MEMBERSHIP_CHANGE_REMOVED: MembershipChange
MEMBERSHIP_CHANGE_INVITED: MembershipChange

class UserCreated(_message.Message):
    __slots__ = ("user_id", "email", "display_name", "platform_admin", "created_by", "create_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_ADMIN_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    display_name: str
    platform_admin: bool
    created_by: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., display_name: _Optional[str] = ..., platform_admin: _Optional[bool] = ..., created_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UserDisabled(_message.Message):
    __slots__ = ("user_id", "email", "disabled_by", "disable_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    DISABLED_BY_FIELD_NUMBER: _ClassVar[int]
    DISABLE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    disabled_by: str
    disable_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., disabled_by: _Optional[str] = ..., disable_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UserEnabled(_message.Message):
    __slots__ = ("user_id", "email", "enabled_by", "enable_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ENABLED_BY_FIELD_NUMBER: _ClassVar[int]
    ENABLE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    enabled_by: str
    enable_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., enabled_by: _Optional[str] = ..., enable_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PasswordChanged(_message.Message):
    __slots__ = ("user_id", "email", "changed_by", "change_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    CHANGED_BY_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    changed_by: str
    change_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., changed_by: _Optional[str] = ..., change_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OrganizationCreated(_message.Message):
    __slots__ = ("organization_id", "name", "display_name", "created_by", "create_time")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    name: str
    display_name: str
    created_by: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, organization_id: _Optional[str] = ..., name: _Optional[str] = ..., display_name: _Optional[str] = ..., created_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MembershipChanged(_message.Message):
    __slots__ = ("organization_id", "user_id", "email", "change", "role", "previous_role", "changed_by", "change_time")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_ROLE_FIELD_NUMBER: _ClassVar[int]
    CHANGED_BY_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TIME_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    user_id: str
    email: str
    change: MembershipChange
    role: _identity_pb2.Role
    previous_role: _identity_pb2.Role
    changed_by: str
    change_time: _timestamp_pb2.Timestamp
    def __init__(self, organization_id: _Optional[str] = ..., user_id: _Optional[str] = ..., email: _Optional[str] = ..., change: _Optional[_Union[MembershipChange, str]] = ..., role: _Optional[_Union[_identity_pb2.Role, str]] = ..., previous_role: _Optional[_Union[_identity_pb2.Role, str]] = ..., changed_by: _Optional[str] = ..., change_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ApiKeyCreated(_message.Message):
    __slots__ = ("api_key_id", "organization_id", "name", "prefix", "scopes", "rotated_from", "created_by", "create_time", "expire_time")
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    ROTATED_FROM_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    api_key_id: str
    organization_id: str
    name: str
    prefix: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    rotated_from: str
    created_by: str
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, api_key_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., name: _Optional[str] = ..., prefix: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., rotated_from: _Optional[str] = ..., created_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ApiKeyRevoked(_message.Message):
    __slots__ = ("api_key_id", "organization_id", "name", "prefix", "revoked_by", "revoke_time")
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    REVOKED_BY_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    api_key_id: str
    organization_id: str
    name: str
    prefix: str
    revoked_by: str
    revoke_time: _timestamp_pb2.Timestamp
    def __init__(self, api_key_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., name: _Optional[str] = ..., prefix: _Optional[str] = ..., revoked_by: _Optional[str] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ClientRegistered(_message.Message):
    __slots__ = ("client_id", "name", "organization_id", "grant_types", "scopes", "public", "created_by", "create_time")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    GRANT_TYPES_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    name: str
    organization_id: str
    grant_types: _containers.RepeatedScalarFieldContainer[str]
    scopes: _containers.RepeatedScalarFieldContainer[str]
    public: bool
    created_by: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, client_id: _Optional[str] = ..., name: _Optional[str] = ..., organization_id: _Optional[str] = ..., grant_types: _Optional[_Iterable[str]] = ..., scopes: _Optional[_Iterable[str]] = ..., public: _Optional[bool] = ..., created_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SigningKeyRotated(_message.Message):
    __slots__ = ("current_kid", "next_kid", "retiring_kid", "retiring_expire_time", "rotated_by", "rotate_time")
    CURRENT_KID_FIELD_NUMBER: _ClassVar[int]
    NEXT_KID_FIELD_NUMBER: _ClassVar[int]
    RETIRING_KID_FIELD_NUMBER: _ClassVar[int]
    RETIRING_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    ROTATED_BY_FIELD_NUMBER: _ClassVar[int]
    ROTATE_TIME_FIELD_NUMBER: _ClassVar[int]
    current_kid: str
    next_kid: str
    retiring_kid: str
    retiring_expire_time: _timestamp_pb2.Timestamp
    rotated_by: str
    rotate_time: _timestamp_pb2.Timestamp
    def __init__(self, current_kid: _Optional[str] = ..., next_kid: _Optional[str] = ..., retiring_kid: _Optional[str] = ..., retiring_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rotated_by: _Optional[str] = ..., rotate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
