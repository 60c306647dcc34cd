from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
KIND_FIELD_NUMBER: _ClassVar[int]
kind: _descriptor.FieldDescriptor
SUBJECT_FIELD_NUMBER: _ClassVar[int]
subject: _descriptor.FieldDescriptor
TAG_FIELD_NUMBER: _ClassVar[int]
tag: _descriptor.FieldDescriptor
SETTABLE_STATUS_FIELD_NUMBER: _ClassVar[int]
settable_status: _descriptor.FieldDescriptor
