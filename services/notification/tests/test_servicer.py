"""NotificationService over a real channel: each RPC's happy path and the errors only the servicer can give
(the event-type catalog, an update's webhook secret, update masks, paging tokens, unknown ids, names taken).

Notifications are made by the event consumer in production; here they are inserted through the store, in
one transaction as the consumer does, so no event has to travel through NATS.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from chassis.identity import acting_as
from chassis.testing import TEST_PRINCIPAL, InProcess
from protomesh.common.v1 import service_info_pb2
from protomesh.notification.v1 import notification_pb2 as n
from protomesh.notification.v1 import notification_service_pb2 as pb
from protomesh.notification.v1.notification_service_pb2_grpc import NotificationServiceStub
from services.notification.deps import NotificationDeps
from tests.support.errors import async_failure, bad_fields

FAILED = "protomesh.agent.v1.ExecutionFailed"
SECRET = "0123456789abcdef-secret"  # pragma: allowlist secret - fake credential, test input
NOT_FOUND = grpc.StatusCode.NOT_FOUND


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=paths)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def stub(notification: InProcess[NotificationDeps]) -> NotificationServiceStub:
    return notification.stub(NotificationServiceStub)


async def new_email(stub: NotificationServiceStub, name: str = "", **fields: Any) -> n.Subscription:
    request = pb.CreateSubscriptionRequest(name=name or unique("mail"), event_types=[FAILED],
                                           email=n.EmailChannel(to=["ops@example.com"]), **fields)
    return (await stub.CreateSubscription(request)).subscription


async def new_webhook(stub: NotificationServiceStub) -> n.Subscription:
    request = pb.CreateSubscriptionRequest(name=unique("hook"), event_types=[FAILED],
                                           webhook=n.WebhookChannel(url="https://hooks.example.com/in", secret=SECRET))
    return (await stub.CreateSubscription(request)).subscription


async def notify(service: InProcess[NotificationDeps], subscription_id: str, subject: str = "executions/x") -> str:
    """One PENDING notification of a made-up ExecutionFailed event, as the consumer inserts it."""
    store = service.deps.store
    # The store's lookups are the current principal's organization's, as in a call (chassis.authz.organization_scope).
    with acting_as(TEST_PRINCIPAL):
        row = await store.subscriptions.get(uuid.UUID(subscription_id))
    async with service.replica.db.connection() as conn, conn.transaction():
        assert row is not None
        [nid] = await store.notifications.create_for_event(
            conn, [row], event_id=uuid.uuid4().hex, event_type=FAILED, event_subject=subject, event_source="agent",
            event_time=datetime.now(UTC), event_data={"error": "boom"}, max_attempts=5)
    return str(nid)


# --- subscriptions -----------------------------------------------------------------------------------------


async def test_a_subscription_from_creation_to_deletion(stub: NotificationServiceStub) -> None:
    created = (await stub.CreateSubscription(pb.CreateSubscriptionRequest(
        name=unique("life"), event_types=[FAILED, "protomesh.agent.v1.*", FAILED], subject_filter="executions/*",
        email=n.EmailChannel(to=["ops@example.com"], subject_template="{event} {data.error}")))).subscription
    assert list(created.event_types) == [FAILED, "protomesh.agent.v1.*"], "repeats dropped, order kept"
    assert created.enabled and created.WhichOneof("channel") == "email"
    sid = created.subscription_id
    assert (await stub.GetSubscription(pb.GetSubscriptionRequest(subscription_id=sid))).subscription == created

    renamed = (await stub.UpdateSubscription(pb.UpdateSubscriptionRequest(
        subscription_id=sid, name=unique("renamed"), enabled=False))).subscription
    assert not renamed.enabled and renamed.subject_filter == "executions/*", "fields not set are kept"

    cleared = (await stub.UpdateSubscription(pb.UpdateSubscriptionRequest(
        subscription_id=sid, enabled=True, update_mask=mask("subject_filter", "enabled")))).subscription
    assert cleared.subject_filter == "" and cleared.enabled, "a masked field that is unset is cleared"

    deleted = await stub.DeleteSubscription(pb.DeleteSubscriptionRequest(subscription_id=sid))
    assert deleted.subscription_id == sid
    for call, request in ((stub.GetSubscription, pb.GetSubscriptionRequest(subscription_id=sid)),
                          (stub.DeleteSubscription, pb.DeleteSubscriptionRequest(subscription_id=sid)),
                          (stub.UpdateSubscription, pb.UpdateSubscriptionRequest(subscription_id=sid, name="x"))):
        assert (await async_failure(call, request)).code() == NOT_FOUND


async def test_a_webhook_secret_is_required_when_new_kept_when_left_out_and_never_returned(
        stub: NotificationServiceStub) -> None:
    sid = (await new_email(stub)).subscription_id
    url_only = n.WebhookChannel(url="https://hooks.example.com/a")
    no_secret = await async_failure(stub.UpdateSubscription,
                                    pb.UpdateSubscriptionRequest(subscription_id=sid, webhook=url_only))
    assert bad_fields(no_secret) == {"webhook.secret"}, "an email subscription has no secret to keep"

    hooked = (await stub.UpdateSubscription(pb.UpdateSubscriptionRequest(
        subscription_id=sid, webhook=n.WebhookChannel(url="https://hooks.example.com/a", secret=SECRET)))).subscription
    assert hooked.webhook.has_secret and hooked.webhook.secret == "" and hooked.WhichOneof("channel") == "webhook"

    moved = (await stub.UpdateSubscription(pb.UpdateSubscriptionRequest(
        subscription_id=sid, webhook=n.WebhookChannel(url="http://127.0.0.1:9/b")))).subscription
    assert moved.webhook.url == "http://127.0.0.1:9/b" and moved.webhook.has_secret, "left out: the secret is kept"

    # The contract's WebhookChannel rules, which the update applies itself, still hold for what is given.
    bad = await async_failure(stub.UpdateSubscription, pb.UpdateSubscriptionRequest(
        subscription_id=sid, webhook=n.WebhookChannel(url="ftp://example.com/", secret="short")))
    assert bad_fields(bad) == {"webhook.url", "webhook.secret"}


async def test_event_types_must_match_a_domain_event(stub: NotificationServiceStub) -> None:
    error = await async_failure(stub.CreateSubscription, pb.CreateSubscriptionRequest(
        name=unique("catalog"), event_types=[FAILED, "protomesh.agent.v1.NoSuchEvent", "protomesh.nothing.v1.*",
                                             "protomesh.agent.v1.Agent"],
        email=n.EmailChannel(to=["ops@example.com"])))
    assert bad_fields(error) == {"event_types[1]", "event_types[2]", "event_types[3]"}
    sid = (await new_email(stub)).subscription_id
    error = await async_failure(stub.UpdateSubscription, pb.UpdateSubscriptionRequest(
        subscription_id=sid, event_types=["protomesh.agent.v1.Nope"]))
    assert bad_fields(error) == {"event_types[0]"}
    every = (await stub.UpdateSubscription(pb.UpdateSubscriptionRequest(subscription_id=sid, event_types=["*"])))
    assert list(every.subscription.event_types) == ["*"]


async def test_one_answer_names_the_contracts_fields_and_the_catalogs(stub: NotificationServiceStub) -> None:
    """The chassis runs check_CreateSubscription on a request the contract refuses, and merges the two."""
    error = await async_failure(stub.CreateSubscription, pb.CreateSubscriptionRequest(
        name=unique("both"), event_types=["protomesh.agent.v1.Nope"],
        email=n.EmailChannel(to=["x"], subject_template="{")))
    assert bad_fields(error) == {"event_types[0]", "email.to[0]", "email.subject_template"}


async def test_names_are_unique_whatever_their_case(stub: NotificationServiceStub) -> None:
    name = unique("Taken")
    await new_email(stub, name)
    duplicate = await async_failure(stub.CreateSubscription, pb.CreateSubscriptionRequest(
        name=name.lower(), event_types=[FAILED], email=n.EmailChannel(to=["a@example.com"])))
    assert duplicate.code() == grpc.StatusCode.ALREADY_EXISTS
    other = await new_email(stub)
    rename = pb.UpdateSubscriptionRequest(subscription_id=other.subscription_id, name=name.upper())
    renamed = await async_failure(stub.UpdateSubscription, rename)
    assert renamed.code() == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize(("paths", "field", "says"), [
    (("colour",), "update_mask.paths[0]", "unknown field"),
    (("enabled", "create_time"), "update_mask.paths[1]", "cannot be changed"),
    (("subscription_id",), "update_mask.paths[0]", "cannot be changed"),
    (("email",), "update_mask.paths[0]", "'channel'"),
    (("channel",), "channel", "required"),
])
async def test_update_masks_name_the_path_they_refuse(stub: NotificationServiceStub, paths: tuple[str, ...],
                                                      field: str, says: str) -> None:
    sid = (await new_email(stub)).subscription_id
    error = await async_failure(stub.UpdateSubscription,
                                pb.UpdateSubscriptionRequest(subscription_id=sid, update_mask=mask(*paths)))
    assert bad_fields(error) == {field}
    assert says in (error.details() or "")


async def test_update_mask_repeats_are_dropped_and_an_empty_update_is_refused(stub: NotificationServiceStub) -> None:
    sid = (await new_email(stub)).subscription_id
    reply = await stub.UpdateSubscription(pb.UpdateSubscriptionRequest(
        subscription_id=sid, enabled=False, update_mask=mask("enabled", "enabled")))
    assert not reply.subscription.enabled
    nothing = await async_failure(stub.UpdateSubscription, pb.UpdateSubscriptionRequest(subscription_id=sid))
    assert bad_fields(nothing) == {"update_mask"}


async def test_subscriptions_page_newest_first_and_filter_by_channel(stub: NotificationServiceStub) -> None:
    made = [(await new_email(stub)).subscription_id for _ in range(3)]
    hook = (await new_webhook(stub)).subscription_id
    seen: list[str] = []
    token = ""
    while True:
        reply = await stub.ListSubscriptions(pb.ListSubscriptionsRequest(page_size=2, page_token=token))
        assert len(reply.subscriptions) <= 2
        seen += [s.subscription_id for s in reply.subscriptions]
        token = reply.page_info.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == reply.page_info.total_size
    assert seen.index(hook) < min(seen.index(sid) for sid in made), "newest first"
    hooks = await stub.ListSubscriptions(pb.ListSubscriptionsRequest(channel=n.CHANNEL_TYPE_WEBHOOK))
    assert hook in [s.subscription_id for s in hooks.subscriptions]
    assert all(s.WhichOneof("channel") == "webhook" for s in hooks.subscriptions)


async def test_a_page_token_is_refused_when_edited_or_reused_with_other_filters(
        stub: NotificationServiceStub) -> None:
    for _ in range(2):
        await new_email(stub)
    token = (await stub.ListSubscriptions(pb.ListSubscriptionsRequest(page_size=1))).page_info.next_page_token
    assert token
    edited = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    tampered = await async_failure(stub.ListSubscriptions, pb.ListSubscriptionsRequest(page_size=1, page_token=edited))
    assert bad_fields(tampered) == {"page_token"}
    other = await async_failure(stub.ListSubscriptions, pb.ListSubscriptionsRequest(
        page_size=1, page_token=token, channel=n.CHANNEL_TYPE_EMAIL))
    assert bad_fields(other) == {"page_token"}
    assert "other filters" in (other.details() or "")
    for_notifications = await async_failure(stub.ListNotifications, pb.ListNotificationsRequest(page_token=token))
    assert bad_fields(for_notifications) == {"page_token"}, "a token of one list is not another's"


# --- notifications -----------------------------------------------------------------------------------------


async def test_notifications_are_listed_by_filter_read_and_paged(notification: InProcess[NotificationDeps],
                                                                  stub: NotificationServiceStub) -> None:
    sid = (await new_email(stub)).subscription_id
    made = [await notify(notification, sid, subject=f"executions/{i}") for i in range(3)]
    mine = pb.ListNotificationsRequest(subscription_id=sid, state=n.NOTIFICATION_STATE_PENDING, page_size=2)
    first = await stub.ListNotifications(mine)
    assert [x.notification_id for x in first.notifications] == made[::-1][:2], "newest first"
    assert first.page_info.total_size == 3
    mine.page_token = first.page_info.next_page_token
    second = await stub.ListNotifications(mine)
    assert [x.notification_id for x in second.notifications] == [made[0]] and not second.page_info.next_page_token

    mine.state = n.NOTIFICATION_STATE_FAILED
    reused = await async_failure(stub.ListNotifications, mine)
    assert bad_fields(reused) == {"page_token"}, "the token was issued for state PENDING"
    by_subject = await stub.ListNotifications(pb.ListNotificationsRequest(event_subject="executions/1",
                                                                          subscription_id=sid))
    assert [x.notification_id for x in by_subject.notifications] == [made[1]]

    got = (await stub.GetNotification(pb.GetNotificationRequest(notification_id=made[0]))).notification
    assert (got.subscription_id, got.event_type, got.state, got.delivery_count) == (
        sid, FAILED, n.NOTIFICATION_STATE_PENDING, 1)
    assert got.event_data["error"] == "boom" and list(got.attempts) == []


async def test_only_a_finished_notification_is_resent(notification: InProcess[NotificationDeps],
                                                      stub: NotificationServiceStub) -> None:
    sid = (await new_email(stub)).subscription_id
    nid = await notify(notification, sid)
    busy = await async_failure(stub.ResendNotification, pb.ResendNotificationRequest(notification_id=nid))
    assert busy.code() == grpc.StatusCode.FAILED_PRECONDITION and "PENDING" in (busy.details() or "")
    async with notification.replica.db.connection() as conn:
        await conn.execute("UPDATE notifications SET state = 'FAILED', last_error = 'x' WHERE id = %s", (nid,))
    resent = (await stub.ResendNotification(pb.ResendNotificationRequest(notification_id=nid))).notification
    assert (resent.state, resent.delivery_count, resent.attempt_count, resent.last_error) == (
        n.NOTIFICATION_STATE_PENDING, 2, 0, "")


@pytest.mark.parametrize(("missing", "expected"), [(str(uuid.uuid4()), NOT_FOUND),
                                                   ("not-a-uuid", grpc.StatusCode.INVALID_ARGUMENT)],
                         ids=["unknown", "malformed"])
async def test_an_unknown_id_is_not_found_a_malformed_one_invalid(stub: NotificationServiceStub, missing: str,
                                                                  expected: grpc.StatusCode) -> None:
    for call, request in (
        (stub.GetSubscription, pb.GetSubscriptionRequest(subscription_id=missing)),
        (stub.UpdateSubscription, pb.UpdateSubscriptionRequest(subscription_id=missing, enabled=True)),
        (stub.DeleteSubscription, pb.DeleteSubscriptionRequest(subscription_id=missing)),
        (stub.GetNotification, pb.GetNotificationRequest(notification_id=missing)),
        (stub.ResendNotification, pb.ResendNotificationRequest(notification_id=missing)),
    ):
        assert (await async_failure(call, request)).code() == expected, call


# --- replica -------------------------------------------------------------------------------------------------


async def test_info_and_health(stub: NotificationServiceStub) -> None:
    await new_email(stub)
    info = await stub.GetInfo(pb.GetInfoRequest())
    assert info.info.name == "notification" and info.subscription_count >= 1 and info.max_attempts == 5
    assert FAILED in info.event_types
    serving = service_info_pb2.HEALTH_STATE_SERVING
    assert (await stub.GetHealth(pb.GetHealthRequest())).health.state == serving
    assert (await stub.GetReadiness(pb.GetReadinessRequest())).health.service == "notification"
    assert (await stub.GetLiveness(pb.GetLivenessRequest())).state == serving
