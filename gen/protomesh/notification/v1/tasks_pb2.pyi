from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class DeliverNotification(_message.Message):
    __slots__ = ("notification_id", "delivery")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    delivery: int
    def __init__(self, notification_id: _Optional[str] = ..., delivery: _Optional[int] = ...) -> None: ...
