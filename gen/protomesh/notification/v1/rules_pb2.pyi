from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
EVENT_TYPE_PATTERN_FIELD_NUMBER: _ClassVar[int]
event_type_pattern: _descriptor.FieldDescriptor
PRINTABLE_FIELD_NUMBER: _ClassVar[int]
printable: _descriptor.FieldDescriptor
SUBJECT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
subject_template: _descriptor.FieldDescriptor
WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
webhook_url: _descriptor.FieldDescriptor
