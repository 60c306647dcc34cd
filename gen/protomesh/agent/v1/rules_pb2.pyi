from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
AGENT_TYPE_FIELD_NUMBER: _ClassVar[int]
agent_type: _descriptor.FieldDescriptor
CAPABILITY_FIELD_NUMBER: _ClassVar[int]
capability: _descriptor.FieldDescriptor
