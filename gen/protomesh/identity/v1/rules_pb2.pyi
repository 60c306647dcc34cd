from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
EMAIL_FIELD_NUMBER: _ClassVar[int]
email: _descriptor.FieldDescriptor
PASSWORD_FIELD_NUMBER: _ClassVar[int]
password: _descriptor.FieldDescriptor
ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
organization_name: _descriptor.FieldDescriptor
SCOPE_FIELD_NUMBER: _ClassVar[int]
scope: _descriptor.FieldDescriptor
REDIRECT_URI_FIELD_NUMBER: _ClassVar[int]
redirect_uri: _descriptor.FieldDescriptor
GRANT_TYPE_FIELD_NUMBER: _ClassVar[int]
grant_type: _descriptor.FieldDescriptor
