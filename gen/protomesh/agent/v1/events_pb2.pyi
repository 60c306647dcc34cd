import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentRegistered(_message.Message):
    __slots__ = ("agent_id", "name", "type", "capabilities", "create_time", "organization_id")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    name: str
    type: str
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, agent_id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., capabilities: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class AgentUpdated(_message.Message):
    __slots__ = ("agent_id", "name", "type", "updated_fields", "update_time", "organization_id")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    name: str
    type: str
    updated_fields: _containers.RepeatedScalarFieldContainer[str]
    update_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, agent_id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., updated_fields: _Optional[_Iterable[str]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class AgentDeregistered(_message.Message):
    __slots__ = ("agent_id", "name", "type", "stopped_execution_id", "deregister_time", "organization_id")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STOPPED_EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    DEREGISTER_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    name: str
    type: str
    stopped_execution_id: str
    deregister_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, agent_id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., stopped_execution_id: _Optional[str] = ..., deregister_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ExecutionStarted(_message.Message):
    __slots__ = ("execution_id", "agent_id", "agent_type", "start_time", "organization_id")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    agent_id: str
    agent_type: str
    start_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, execution_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., agent_type: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ExecutionSucceeded(_message.Message):
    __slots__ = ("execution_id", "agent_id", "agent_type", "output_summary", "end_time", "organization_id")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    agent_id: str
    agent_type: str
    output_summary: str
    end_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, execution_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., agent_type: _Optional[str] = ..., output_summary: _Optional[str] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ExecutionFailed(_message.Message):
    __slots__ = ("execution_id", "agent_id", "agent_type", "error", "end_time", "organization_id")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    agent_id: str
    agent_type: str
    error: str
    end_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, execution_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., agent_type: _Optional[str] = ..., error: _Optional[str] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ExecutionStopped(_message.Message):
    __slots__ = ("execution_id", "agent_id", "agent_type", "reason", "end_time", "organization_id")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    agent_id: str
    agent_type: str
    reason: str
    end_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, execution_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., agent_type: _Optional[str] = ..., reason: _Optional[str] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...
