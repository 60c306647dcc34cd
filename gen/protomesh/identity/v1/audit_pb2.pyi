import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditDecision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_DECISION_UNSPECIFIED: _ClassVar[AuditDecision]
    AUDIT_DECISION_ALLOWED: _ClassVar[AuditDecision]
    AUDIT_DECISION_DENIED: _ClassVar[AuditDecision]

class AuditPrincipalKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_PRINCIPAL_KIND_UNSPECIFIED: _ClassVar[AuditPrincipalKind]
    AUDIT_PRINCIPAL_KIND_ANONYMOUS: _ClassVar[AuditPrincipalKind]
    AUDIT_PRINCIPAL_KIND_USER: _ClassVar[AuditPrincipalKind]
    AUDIT_PRINCIPAL_KIND_SERVICE_ACCOUNT: _ClassVar[AuditPrincipalKind]
    AUDIT_PRINCIPAL_KIND_API_KEY: _ClassVar[AuditPrincipalKind]
    AUDIT_PRINCIPAL_KIND_MESH_SERVICE: _ClassVar[AuditPrincipalKind]
AUDIT_DECISION_UNSPECIFIED: AuditDecision
AUDIT_DECISION_ALLOWED: AuditDecision
AUDIT_DECISION_DENIED: AuditDecision
AUDIT_PRINCIPAL_KIND_UNSPECIFIED: AuditPrincipalKind
AUDIT_PRINCIPAL_KIND_ANONYMOUS: AuditPrincipalKind
AUDIT_PRINCIPAL_KIND_USER: AuditPrincipalKind
AUDIT_PRINCIPAL_KIND_SERVICE_ACCOUNT: AuditPrincipalKind
AUDIT_PRINCIPAL_KIND_API_KEY: AuditPrincipalKind
AUDIT_PRINCIPAL_KIND_MESH_SERVICE: AuditPrincipalKind

class AuditRecord(_message.Message):
    __slots__ = ("record_id", "time", "principal", "principal_kind", "api_key_id", "client_id", "organization_id", "cross_org", "action", "resource", "decision", "status", "trace_id", "source_address", "service", "instance_id")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_KIND_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    CROSS_ORG_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    time: _timestamp_pb2.Timestamp
    principal: str
    principal_kind: AuditPrincipalKind
    api_key_id: str
    client_id: str
    organization_id: str
    cross_org: bool
    action: str
    resource: str
    decision: AuditDecision
    status: str
    trace_id: str
    source_address: str
    service: str
    instance_id: str
    def __init__(self, record_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., principal: _Optional[str] = ..., principal_kind: _Optional[_Union[AuditPrincipalKind, str]] = ..., api_key_id: _Optional[str] = ..., client_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., cross_org: _Optional[bool] = ..., action: _Optional[str] = ..., resource: _Optional[str] = ..., decision: _Optional[_Union[AuditDecision, str]] = ..., status: _Optional[str] = ..., trace_id: _Optional[str] = ..., source_address: _Optional[str] = ..., service: _Optional[str] = ..., instance_id: _Optional[str] = ...) -> None: ...

class AuditRecorded(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: AuditRecord
    def __init__(self, record: _Optional[_Union[AuditRecord, _Mapping]] = ...) -> None: ...
