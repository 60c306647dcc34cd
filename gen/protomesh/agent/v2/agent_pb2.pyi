import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_STATUS_UNSPECIFIED: _ClassVar[AgentStatus]
    AGENT_STATUS_IDLE: _ClassVar[AgentStatus]
    AGENT_STATUS_BUSY: _ClassVar[AgentStatus]

class ExecutionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_STATE_UNSPECIFIED: _ClassVar[ExecutionState]
    EXECUTION_STATE_PENDING: _ClassVar[ExecutionState]
    EXECUTION_STATE_RUNNING: _ClassVar[ExecutionState]
    EXECUTION_STATE_SUCCEEDED: _ClassVar[ExecutionState]
    EXECUTION_STATE_FAILED: _ClassVar[ExecutionState]
    EXECUTION_STATE_CANCELLED: _ClassVar[ExecutionState]
AGENT_STATUS_UNSPECIFIED: AgentStatus
AGENT_STATUS_IDLE: AgentStatus
AGENT_STATUS_BUSY: AgentStatus
EXECUTION_STATE_UNSPECIFIED: ExecutionState
EXECUTION_STATE_PENDING: ExecutionState
EXECUTION_STATE_RUNNING: ExecutionState
EXECUTION_STATE_SUCCEEDED: ExecutionState
EXECUTION_STATE_FAILED: ExecutionState
EXECUTION_STATE_CANCELLED: ExecutionState

class Agent(_message.Message):
    __slots__ = ("agent_id", "name", "type", "description", "capabilities", "config", "labels", "status", "current_execution_id", "create_time", "update_time", "organization_id")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    name: str
    type: str
    description: str
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    config: _struct_pb2.Struct
    labels: _containers.ScalarMap[str, str]
    status: AgentStatus
    current_execution_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    organization_id: str
    def __init__(self, agent_id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., description: _Optional[str] = ..., capabilities: _Optional[_Iterable[str]] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., status: _Optional[_Union[AgentStatus, str]] = ..., current_execution_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ...) -> None: ...

class Execution(_message.Message):
    __slots__ = ("execution_id", "agent_id", "agent_type", "state", "input", "result", "error", "cancel_reason", "progress", "create_time", "start_time", "end_time", "context_id", "result_layer_id", "runner", "organization_id")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REASON_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_LAYER_ID_FIELD_NUMBER: _ClassVar[int]
    RUNNER_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    agent_id: str
    agent_type: str
    state: ExecutionState
    input: _struct_pb2.Struct
    result: ExecutionResult
    error: str
    cancel_reason: str
    progress: float
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    context_id: str
    result_layer_id: str
    runner: str
    organization_id: str
    def __init__(self, execution_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., agent_type: _Optional[str] = ..., state: _Optional[_Union[ExecutionState, str]] = ..., input: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., result: _Optional[_Union[ExecutionResult, _Mapping]] = ..., error: _Optional[str] = ..., cancel_reason: _Optional[str] = ..., progress: _Optional[float] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., context_id: _Optional[str] = ..., result_layer_id: _Optional[str] = ..., runner: _Optional[str] = ..., organization_id: _Optional[str] = ...) -> None: ...

class ExecutionResult(_message.Message):
    __slots__ = ("calculator", "text_analysis", "primes", "json_transform", "field_report")
    CALCULATOR_FIELD_NUMBER: _ClassVar[int]
    TEXT_ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    PRIMES_FIELD_NUMBER: _ClassVar[int]
    JSON_TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    FIELD_REPORT_FIELD_NUMBER: _ClassVar[int]
    calculator: CalculatorResult
    text_analysis: TextAnalysisResult
    primes: PrimesResult
    json_transform: JsonTransformResult
    field_report: FieldReportResult
    def __init__(self, calculator: _Optional[_Union[CalculatorResult, _Mapping]] = ..., text_analysis: _Optional[_Union[TextAnalysisResult, _Mapping]] = ..., primes: _Optional[_Union[PrimesResult, _Mapping]] = ..., json_transform: _Optional[_Union[JsonTransformResult, _Mapping]] = ..., field_report: _Optional[_Union[FieldReportResult, _Mapping]] = ...) -> None: ...

class FieldReportResult(_message.Message):
    __slots__ = ("field_count", "fields_reported", "total_hectares", "workable_hectares", "season_count", "harvested_season_count", "crop_hectares")
    class CropHectaresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    FIELD_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIELDS_REPORTED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_HECTARES_FIELD_NUMBER: _ClassVar[int]
    WORKABLE_HECTARES_FIELD_NUMBER: _ClassVar[int]
    SEASON_COUNT_FIELD_NUMBER: _ClassVar[int]
    HARVESTED_SEASON_COUNT_FIELD_NUMBER: _ClassVar[int]
    CROP_HECTARES_FIELD_NUMBER: _ClassVar[int]
    field_count: int
    fields_reported: int
    total_hectares: float
    workable_hectares: float
    season_count: int
    harvested_season_count: int
    crop_hectares: _containers.ScalarMap[str, float]
    def __init__(self, field_count: _Optional[int] = ..., fields_reported: _Optional[int] = ..., total_hectares: _Optional[float] = ..., workable_hectares: _Optional[float] = ..., season_count: _Optional[int] = ..., harvested_season_count: _Optional[int] = ..., crop_hectares: _Optional[_Mapping[str, float]] = ...) -> None: ...

class CalculatorResult(_message.Message):
    __slots__ = ("expression", "value", "exact")
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    expression: str
    value: float
    exact: str
    def __init__(self, expression: _Optional[str] = ..., value: _Optional[float] = ..., exact: _Optional[str] = ...) -> None: ...

class WordCount(_message.Message):
    __slots__ = ("word", "count")
    WORD_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    word: str
    count: int
    def __init__(self, word: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class TextAnalysisResult(_message.Message):
    __slots__ = ("characters", "words", "unique_words", "sentences", "average_word_length", "top_words", "reading_time_seconds")
    CHARACTERS_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_WORDS_FIELD_NUMBER: _ClassVar[int]
    SENTENCES_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_WORD_LENGTH_FIELD_NUMBER: _ClassVar[int]
    TOP_WORDS_FIELD_NUMBER: _ClassVar[int]
    READING_TIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    characters: int
    words: int
    unique_words: int
    sentences: int
    average_word_length: float
    top_words: _containers.RepeatedCompositeFieldContainer[WordCount]
    reading_time_seconds: float
    def __init__(self, characters: _Optional[int] = ..., words: _Optional[int] = ..., unique_words: _Optional[int] = ..., sentences: _Optional[int] = ..., average_word_length: _Optional[float] = ..., top_words: _Optional[_Iterable[_Union[WordCount, _Mapping]]] = ..., reading_time_seconds: _Optional[float] = ...) -> None: ...

class PrimesResult(_message.Message):
    __slots__ = ("limit", "count", "largest", "first", "last")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LARGEST_FIELD_NUMBER: _ClassVar[int]
    FIRST_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    limit: int
    count: int
    largest: int
    first: _containers.RepeatedScalarFieldContainer[int]
    last: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, limit: _Optional[int] = ..., count: _Optional[int] = ..., largest: _Optional[int] = ..., first: _Optional[_Iterable[int]] = ..., last: _Optional[_Iterable[int]] = ...) -> None: ...

class JsonTransformResult(_message.Message):
    __slots__ = ("document", "operations_applied")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_APPLIED_FIELD_NUMBER: _ClassVar[int]
    document: _struct_pb2.Struct
    operations_applied: int
    def __init__(self, document: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., operations_applied: _Optional[int] = ...) -> None: ...

class AgentType(_message.Message):
    __slots__ = ("name", "description", "capabilities", "input_fields", "result_field")
    class InputFieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELDS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    input_fields: _containers.ScalarMap[str, str]
    result_field: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., capabilities: _Optional[_Iterable[str]] = ..., input_fields: _Optional[_Mapping[str, str]] = ..., result_field: _Optional[str] = ...) -> None: ...
