import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecutionStarted(_message.Message):
    __slots__ = ("execution_id", "definition_name", "revision", "start_time", "organization_id")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_NAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    definition_name: str
    revision: int
    start_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, execution_id: _Optional[str] = ..., definition_name: _Optional[str] = ..., revision: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ExecutionCompleted(_message.Message):
    __slots__ = ("execution_id", "definition_name", "revision", "end_time", "organization_id")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_NAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    definition_name: str
    revision: int
    end_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, execution_id: _Optional[str] = ..., definition_name: _Optional[str] = ..., revision: _Optional[int] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ExecutionFailed(_message.Message):
    __slots__ = ("execution_id", "definition_name", "revision", "status", "error", "task_path", "end_time", "organization_id")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_NAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TASK_PATH_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    definition_name: str
    revision: int
    status: str
    error: str
    task_path: str
    end_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, execution_id: _Optional[str] = ..., definition_name: _Optional[str] = ..., revision: _Optional[int] = ..., status: _Optional[str] = ..., error: _Optional[str] = ..., task_path: _Optional[str] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ExecutionCompensated(_message.Message):
    __slots__ = ("execution_id", "definition_name", "compensated_tasks", "end_time", "organization_id")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_NAME_FIELD_NUMBER: _ClassVar[int]
    COMPENSATED_TASKS_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    definition_name: str
    compensated_tasks: _containers.RepeatedScalarFieldContainer[str]
    end_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, execution_id: _Optional[str] = ..., definition_name: _Optional[str] = ..., compensated_tasks: _Optional[_Iterable[str]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class WorkflowEventEmitted(_message.Message):
    __slots__ = ("execution_id", "type", "data", "organization_id")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    type: str
    data: _struct_pb2.Struct
    organization_id: str
    def __init__(self, execution_id: _Optional[str] = ..., type: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...
