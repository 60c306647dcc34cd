from buf.validate import validate_pb2 as _validate_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from protomesh.common.v1 import pagination_pb2 as _pagination_pb2
from protomesh.common.v1 import rules_pb2 as _rules_pb2
from protomesh.common.v1 import service_info_pb2 as _service_info_pb2
from protomesh.notification.v1 import notification_pb2 as _notification_pb2
from protomesh.notification.v1 import rules_pb2 as _rules_pb2_1
from protomesh.options.v1 import access_pb2 as _access_pb2
from protomesh.options.v1 import resilience_pb2 as _resilience_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListSubscriptionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "channel")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    channel: _notification_pb2.ChannelType
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., channel: _Optional[_Union[_notification_pb2.ChannelType, str]] = ...) -> None: ...

class ListSubscriptionsResponse(_message.Message):
    __slots__ = ("subscriptions", "page_info")
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    PAGE_INFO_FIELD_NUMBER: _ClassVar[int]
    subscriptions: _containers.RepeatedCompositeFieldContainer[_notification_pb2.Subscription]
    page_info: _pagination_pb2.PageInfo
    def __init__(self, subscriptions: _Optional[_Iterable[_Union[_notification_pb2.Subscription, _Mapping]]] = ..., page_info: _Optional[_Union[_pagination_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class CreateSubscriptionRequest(_message.Message):
    __slots__ = ("name", "event_types", "subject_filter", "email", "webhook", "enabled", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FILTER_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    event_types: _containers.RepeatedScalarFieldContainer[str]
    subject_filter: str
    email: _notification_pb2.EmailChannel
    webhook: _notification_pb2.WebhookChannel
    enabled: bool
    request_id: str
    def __init__(self, name: _Optional[str] = ..., event_types: _Optional[_Iterable[str]] = ..., subject_filter: _Optional[str] = ..., email: _Optional[_Union[_notification_pb2.EmailChannel, _Mapping]] = ..., webhook: _Optional[_Union[_notification_pb2.WebhookChannel, _Mapping]] = ..., enabled: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateSubscriptionResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: _notification_pb2.Subscription
    def __init__(self, subscription: _Optional[_Union[_notification_pb2.Subscription, _Mapping]] = ...) -> None: ...

class GetSubscriptionRequest(_message.Message):
    __slots__ = ("subscription_id",)
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    def __init__(self, subscription_id: _Optional[str] = ...) -> None: ...

class GetSubscriptionResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: _notification_pb2.Subscription
    def __init__(self, subscription: _Optional[_Union[_notification_pb2.Subscription, _Mapping]] = ...) -> None: ...

class UpdateSubscriptionRequest(_message.Message):
    __slots__ = ("subscription_id", "name", "event_types", "subject_filter", "email", "webhook", "enabled", "update_mask")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FILTER_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    name: str
    event_types: _containers.RepeatedScalarFieldContainer[str]
    subject_filter: str
    email: _notification_pb2.EmailChannel
    webhook: _notification_pb2.WebhookChannel
    enabled: bool
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, subscription_id: _Optional[str] = ..., name: _Optional[str] = ..., event_types: _Optional[_Iterable[str]] = ..., subject_filter: _Optional[str] = ..., email: _Optional[_Union[_notification_pb2.EmailChannel, _Mapping]] = ..., webhook: _Optional[_Union[_notification_pb2.WebhookChannel, _Mapping]] = ..., enabled: _Optional[bool] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateSubscriptionResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: _notification_pb2.Subscription
    def __init__(self, subscription: _Optional[_Union[_notification_pb2.Subscription, _Mapping]] = ...) -> None: ...

class DeleteSubscriptionRequest(_message.Message):
    __slots__ = ("subscription_id",)
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    def __init__(self, subscription_id: _Optional[str] = ...) -> None: ...

class DeleteSubscriptionResponse(_message.Message):
    __slots__ = ("subscription_id",)
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    def __init__(self, subscription_id: _Optional[str] = ...) -> None: ...

class ListNotificationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state", "subscription_id", "event_type", "event_subject")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: _notification_pb2.NotificationState
    subscription_id: str
    event_type: str
    event_subject: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[_notification_pb2.NotificationState, str]] = ..., subscription_id: _Optional[str] = ..., event_type: _Optional[str] = ..., event_subject: _Optional[str] = ...) -> None: ...

class ListNotificationsResponse(_message.Message):
    __slots__ = ("notifications", "page_info")
    NOTIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    PAGE_INFO_FIELD_NUMBER: _ClassVar[int]
    notifications: _containers.RepeatedCompositeFieldContainer[_notification_pb2.Notification]
    page_info: _pagination_pb2.PageInfo
    def __init__(self, notifications: _Optional[_Iterable[_Union[_notification_pb2.Notification, _Mapping]]] = ..., page_info: _Optional[_Union[_pagination_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class GetNotificationRequest(_message.Message):
    __slots__ = ("notification_id",)
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    def __init__(self, notification_id: _Optional[str] = ...) -> None: ...

class GetNotificationResponse(_message.Message):
    __slots__ = ("notification",)
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    notification: _notification_pb2.Notification
    def __init__(self, notification: _Optional[_Union[_notification_pb2.Notification, _Mapping]] = ...) -> None: ...

class ResendNotificationRequest(_message.Message):
    __slots__ = ("notification_id", "request_id")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    request_id: str
    def __init__(self, notification_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ResendNotificationResponse(_message.Message):
    __slots__ = ("notification",)
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    notification: _notification_pb2.Notification
    def __init__(self, notification: _Optional[_Union[_notification_pb2.Notification, _Mapping]] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("info", "subscription_count", "notification_count", "event_types", "max_attempts")
    INFO_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_COUNT_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    info: _service_info_pb2.ServiceInfo
    subscription_count: int
    notification_count: int
    event_types: _containers.RepeatedScalarFieldContainer[str]
    max_attempts: int
    def __init__(self, info: _Optional[_Union[_service_info_pb2.ServiceInfo, _Mapping]] = ..., subscription_count: _Optional[int] = ..., notification_count: _Optional[int] = ..., event_types: _Optional[_Iterable[str]] = ..., max_attempts: _Optional[int] = ...) -> None: ...

class GetHealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetHealthResponse(_message.Message):
    __slots__ = ("health",)
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    health: _service_info_pb2.HealthReport
    def __init__(self, health: _Optional[_Union[_service_info_pb2.HealthReport, _Mapping]] = ...) -> None: ...

class GetReadinessRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetReadinessResponse(_message.Message):
    __slots__ = ("health",)
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    health: _service_info_pb2.HealthReport
    def __init__(self, health: _Optional[_Union[_service_info_pb2.HealthReport, _Mapping]] = ...) -> None: ...

class GetLivenessRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetLivenessResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: _service_info_pb2.HealthState
    def __init__(self, state: _Optional[_Union[_service_info_pb2.HealthState, str]] = ...) -> None: ...
