"""Every field rule of the notification contract, over a real channel: a request breaking it is INVALID_ARGUMENT
naming the field, before the servicer runs (so unknown ids here never get as far as NOT_FOUND)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from buf.validate import validate_pb2
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from chassis.testing import InProcess
from protomesh.notification.v1 import notification_pb2 as n
from protomesh.notification.v1 import notification_service_pb2 as pb
from protomesh.notification.v1.notification_service_pb2_grpc import NotificationServiceStub
from tests.support.errors import async_failure, bad_fields

FAILED = "protomesh.agent.v1.ExecutionFailed"
SECRET = "0123456789abcdef-secret"  # pragma: allowlist secret - fake credential, test input
SID = str(uuid.uuid4())
EMAIL = n.EmailChannel(to=["ops@example.com"])


def create(**fields: Any) -> pb.CreateSubscriptionRequest:
    """A valid CreateSubscriptionRequest but for `fields`."""
    base: dict[str, Any] = {"name": "rules", "event_types": [FAILED], "email": EMAIL}
    if "webhook" in fields:
        base.pop("email")
    return pb.CreateSubscriptionRequest(**{**base, **fields})


def update(**fields: Any) -> pb.UpdateSubscriptionRequest:
    return pb.UpdateSubscriptionRequest(**{"subscription_id": SID, **fields})


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=paths)


# (RPC, request, the one field named). Rules of the nested EmailChannel and WebhookChannel are broken
# through CreateSubscription; UpdateSubscription's webhook is exempt from them (see test_servicer.py).
RULES: list[tuple[str, Message, str]] = [
    ("ListSubscriptions", pb.ListSubscriptionsRequest(page_size=-1), "page_size"),
    ("ListSubscriptions", pb.ListSubscriptionsRequest(page_size=1001), "page_size"),
    ("ListSubscriptions", pb.ListSubscriptionsRequest(channel=99), "channel"),  # type: ignore[arg-type]
    ("CreateSubscription", create(name=""), "name"),
    ("CreateSubscription", create(name=" leading-space"), "name"),
    ("CreateSubscription", create(name="n" * 129), "name"),
    ("CreateSubscription", create(name="semi;colon"), "name"),
    ("CreateSubscription", create(event_types=[]), "event_types"),
    ("CreateSubscription", create(event_types=[FAILED] * 51), "event_types"),
    ("CreateSubscription", create(event_types=[FAILED, "bogus"]), "event_types[1]"),
    ("CreateSubscription", create(event_types=["protomesh.agent.v1.Exec*"]), "event_types[0]"),
    ("CreateSubscription", create(event_types=["protomesh." + "x" * 256]), "event_types[0]"),
    ("CreateSubscription", create(subject_filter="s" * 257), "subject_filter"),
    ("CreateSubscription", create(subject_filter="line\nbreak"), "subject_filter"),
    ("CreateSubscription", pb.CreateSubscriptionRequest(name="rules", event_types=[FAILED]), "channel"),
    ("CreateSubscription", create(email=n.EmailChannel()), "email.to"),
    ("CreateSubscription", create(email=n.EmailChannel(to=["a@example.com"] * 21)), "email.to"),
    ("CreateSubscription", create(email=n.EmailChannel(to=["a@example.com", "no address"])), "email.to[1]"),
    ("CreateSubscription", create(email=n.EmailChannel(to=["a@example.com"], subject_template="t" * 201)),
     "email.subject_template"),
    ("CreateSubscription", create(email=n.EmailChannel(to=["a@example.com"], subject_template="{nope}")),
     "email.subject_template"),
    ("CreateSubscription", create(email=n.EmailChannel(to=["a@example.com"], subject_template="tab\there")),
     "email.subject_template"),
    ("CreateSubscription", create(webhook=n.WebhookChannel(secret=SECRET)), "webhook.url"),
    ("CreateSubscription", create(webhook=n.WebhookChannel(url="ftp://example.com/", secret=SECRET)),
     "webhook.url"),
    ("CreateSubscription", create(webhook=n.WebhookChannel(url="https://example.com:0/", secret=SECRET)),
     "webhook.url"),
    ("CreateSubscription", create(webhook=n.WebhookChannel(url="https://example.com/" + "p" * 2030, secret=SECRET)),
     "webhook.url"),
    ("CreateSubscription", create(webhook=n.WebhookChannel(url="https://example.com/\x7f", secret=SECRET)),
     "webhook.url"),
    ("CreateSubscription", create(webhook=n.WebhookChannel(url="https://example.com/")), "webhook.secret"),
    ("CreateSubscription", create(webhook=n.WebhookChannel(url="https://example.com/", secret="short")),
     "webhook.secret"),
    ("CreateSubscription", create(webhook=n.WebhookChannel(url="https://example.com/", secret="s" * 257)),
     "webhook.secret"),
    ("GetSubscription", pb.GetSubscriptionRequest(), "subscription_id"),
    ("UpdateSubscription", update(subscription_id="", enabled=True), "subscription_id"),
    ("UpdateSubscription", update(name="!!"), "name"),
    ("UpdateSubscription", update(update_mask=mask("name")), "name"),
    ("UpdateSubscription", update(event_types=["nodot"]), "event_types[0]"),
    ("UpdateSubscription", update(event_types=[FAILED] * 51), "event_types"),
    ("UpdateSubscription", update(update_mask=mask("event_types")), "event_types"),
    ("UpdateSubscription", update(subject_filter="s" * 257), "subject_filter"),
    ("UpdateSubscription", update(email=n.EmailChannel()), "email.to"),
    ("DeleteSubscription", pb.DeleteSubscriptionRequest(), "subscription_id"),
    ("ListNotifications", pb.ListNotificationsRequest(page_size=1001), "page_size"),
    ("ListNotifications", pb.ListNotificationsRequest(state=99), "state"),  # type: ignore[arg-type]
    ("ListNotifications", pb.ListNotificationsRequest(subscription_id="nope"), "subscription_id"),
    ("GetNotification", pb.GetNotificationRequest(), "notification_id"),
    ("ResendNotification", pb.ResendNotificationRequest(), "notification_id"),
    ("CreateSubscription", create(request_id="x" * 65), "request_id"),
    ("ResendNotification", pb.ResendNotificationRequest(notification_id=str(uuid.uuid4()), request_id="a b"),
     "request_id"),
]


@pytest.mark.parametrize(("rpc", "request_", "field"), RULES,
                         ids=[f"{rpc}-{field}-{i}" for i, (rpc, _, field) in enumerate(RULES)])
async def test_a_request_breaking_a_rule_is_refused_naming_the_field(
        notification: InProcess[Any], rpc: str, request_: Message, field: str) -> None:
    error = await async_failure(getattr(notification.stub(NotificationServiceStub), rpc), request_)
    assert bad_fields(error) == {field}, error.details()


def _declared(message: Any, seen: set[str]) -> set[str]:
    """"Message.field" (or "Message.oneof") for every buf.validate rule in a message and the messages it holds."""
    if message.full_name in seen:
        return set()
    seen.add(message.full_name)
    found = {f"{message.name}.{o.name}" for o in message.oneofs
             if o.GetOptions().HasExtension(validate_pb2.oneof)}
    for field in message.fields:
        if field.GetOptions().HasExtension(validate_pb2.field):
            found.add(f"{message.name}.{field.name}")
        if field.message_type is not None and field.message_type.full_name.startswith("protomesh."):
            found |= _declared(field.message_type, seen)
    return found


def _covered() -> set[str]:
    """The same names, for the fields the table above breaks a rule of."""
    covered = set()
    for _rpc, request, path in RULES:
        message = request.DESCRIPTOR
        for part in re.sub(r"\[\d+\]", "", path).split("."):
            covered.add(f"{message.name}.{part}")
            field = message.fields_by_name.get(part)
            message = field.message_type if field is not None and field.message_type is not None else message
    return covered


def test_the_table_breaks_every_rule_the_contract_declares() -> None:
    service = pb.DESCRIPTOR.services_by_name["NotificationService"]
    declared: set[str] = set()
    for method in service.methods:
        declared |= _declared(method.input_type, set())
    # Exempt from WebhookChannel's rules (IGNORE_ALWAYS): the servicer applies them, see test_servicer.py.
    declared.discard("UpdateSubscriptionRequest.webhook")
    missing = declared - _covered()
    assert not missing, f"rules no row of RULES breaks: {sorted(missing)}"
