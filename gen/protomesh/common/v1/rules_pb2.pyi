from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
RESOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
resource_name: _descriptor.FieldDescriptor
DISPLAY_TEXT_FIELD_NUMBER: _ClassVar[int]
display_text: _descriptor.FieldDescriptor
LABEL_KEY_FIELD_NUMBER: _ClassVar[int]
label_key: _descriptor.FieldDescriptor
LABEL_VALUE_FIELD_NUMBER: _ClassVar[int]
label_value: _descriptor.FieldDescriptor
LABELS_FIELD_NUMBER: _ClassVar[int]
labels: _descriptor.FieldDescriptor
