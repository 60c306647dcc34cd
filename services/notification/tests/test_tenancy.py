"""Tenancy of subscriptions and notifications over a real channel and a real NATS (docs/authorization.md, Tenancy).

A subscription belongs to the organization of the principal that created it, a notification to its
subscription's. A member of another organization gets NOT_FOUND for every call naming one by id and never sees
it in a list or count; a platform admin sees every organization. Events travel for real (outbox, relay, NATS,
the consumer): a subscription is only notified of its own organization's events, and an event without an
organization notifies no one.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import grpc
from google.protobuf import field_mask_pb2

from chassis.events import outbox
from chassis.identity import Principal, acting_as
from chassis.testing import InProcess
from protomesh.agent.v1 import events_pb2 as agent_events
from protomesh.notification.v1 import notification_pb2 as n
from protomesh.notification.v1 import notification_service_pb2 as pb
from protomesh.notification.v1.notification_service_pb2_grpc import NotificationServiceStub
from services.notification.delivery import CONSUMER_NAME
from services.notification.deps import NotificationDeps
from tests.support.errors import async_failure, bad_fields

FAILED = "protomesh.agent.v1.ExecutionFailed"
NOT_FOUND = grpc.StatusCode.NOT_FOUND


def new_organization() -> str:
    return f"org-{uuid.uuid4().hex[:12]}"


def admin_of(organization: str) -> Principal:
    """An organization admin: every notification permission, so what stops it is tenancy, not a role."""
    return Principal(subject=f"user-{uuid.uuid4().hex[:8]}", kind="user", organization=organization,
                     roles=frozenset({"admin"}))


PLATFORM_ADMIN = Principal(subject="user-platform", kind="user", organization=new_organization(),
                           platform_admin=True)


def stub_as(service: InProcess[NotificationDeps], principal: Principal) -> NotificationServiceStub:
    return service.stub(NotificationServiceStub, principal=principal)


async def subscribe(stub: NotificationServiceStub, subject_filter: str = "", name: str = "") -> n.Subscription:
    request = pb.CreateSubscriptionRequest(name=name or f"mail-{uuid.uuid4().hex[:8]}", event_types=[FAILED],
                                           subject_filter=subject_filter,
                                           email=n.EmailChannel(to=["ops@example.com"]))
    return (await stub.CreateSubscription(request)).subscription


async def notify(service: InProcess[NotificationDeps], owner: Principal, subscription_id: str) -> str:
    """One PENDING notification of a made-up event, inserted as the consumer does (no task is queued)."""
    store = service.deps.store
    with acting_as(owner):
        row = await store.subscriptions.get(uuid.UUID(subscription_id))
    assert row is not None
    async with service.replica.db.connection() as conn, conn.transaction():
        [nid] = await store.notifications.create_for_event(
            conn, [row], event_id=uuid.uuid4().hex, event_type=FAILED, event_subject="executions/x",
            event_source="agent", event_time=datetime.now(UTC), event_data={"error": "boom"}, max_attempts=5)
    return str(nid)


def calls_by_id(stub: NotificationServiceStub, sid: str, nid: str) -> dict[str, tuple[object, object]]:
    """Every RPC that names one subscription or notification, with a request the contract accepts."""
    return {
        "GetSubscription": (stub.GetSubscription, pb.GetSubscriptionRequest(subscription_id=sid)),
        "UpdateSubscription": (stub.UpdateSubscription, pb.UpdateSubscriptionRequest(
            subscription_id=sid, update_mask=field_mask_pb2.FieldMask(paths=["enabled"]), enabled=False)),
        "DeleteSubscription": (stub.DeleteSubscription, pb.DeleteSubscriptionRequest(subscription_id=sid)),
        "GetNotification": (stub.GetNotification, pb.GetNotificationRequest(notification_id=nid)),
        "ResendNotification": (stub.ResendNotification, pb.ResendNotificationRequest(notification_id=nid)),
    }


async def test_every_rpc_naming_a_subscription_or_notification_is_covered() -> None:
    # async: an aio channel needs a loop, and a sync test has one only if no earlier test cleared it.
    # ListNotifications filters by subscription_id (checked below); every other RPC naming one must be listed.
    service = pb.DESCRIPTOR.services_by_name["NotificationService"]
    naming = {m.name for m in service.methods
              if {"subscription_id", "notification_id"} & set(m.input_type.fields_by_name)} - {"ListNotifications"}
    assert naming == set(calls_by_id(NotificationServiceStub(grpc.aio.insecure_channel("unused")), "s", "n"))


async def test_another_organization_gets_not_found_for_every_call_by_id(
        notification: InProcess[NotificationDeps]) -> None:
    owner, intruder = admin_of(new_organization()), admin_of(new_organization())
    a, b = stub_as(notification, owner), stub_as(notification, intruder)
    mine = await subscribe(a)
    assert mine.organization_id == owner.organization, "stamped with the creator's organization"
    nid = await notify(notification, owner, mine.subscription_id)
    async with notification.replica.db.connection() as conn:  # finished, so a resend by its owner would work
        await conn.execute("UPDATE notifications SET state = 'FAILED', last_error = 'x' WHERE id = %s", (nid,))

    for name, (call, request) in calls_by_id(b, mine.subscription_id, nid).items():
        refused = await async_failure(call, request)  # type: ignore[arg-type]
        assert refused.code() == NOT_FOUND, f"{name}: {refused.code()} {refused.details()}"
    by_subscription = await b.ListNotifications(pb.ListNotificationsRequest(subscription_id=mine.subscription_id))
    assert list(by_subscription.notifications) == [] and by_subscription.page_info.total_size == 0

    # Nothing B tried changed A's subscription or notification.
    still = (await a.GetSubscription(pb.GetSubscriptionRequest(subscription_id=mine.subscription_id))).subscription
    assert still == mine
    got = (await a.GetNotification(pb.GetNotificationRequest(notification_id=nid))).notification
    assert (got.state, got.delivery_count, got.organization_id) == (
        n.NOTIFICATION_STATE_FAILED, 1, owner.organization)


async def test_lists_and_counts_show_only_the_callers_organization(notification: InProcess[NotificationDeps]) -> None:
    owners = [admin_of(new_organization()), admin_of(new_organization())]
    name = f"shared-{uuid.uuid4().hex[:6]}"
    # Names are unique per organization: the second may use the first's name, and learns nothing from it.
    made = [await subscribe(stub_as(notification, o), name=name) for o in owners]
    notes = [await notify(notification, o, s.subscription_id) for o, s in zip(owners, made, strict=True)]
    for owner, own, note in zip(owners, made, notes, strict=True):
        stub = stub_as(notification, owner)
        subs = await stub.ListSubscriptions(pb.ListSubscriptionsRequest(page_size=100))
        assert [s.subscription_id for s in subs.subscriptions] == [own.subscription_id]
        notifications = await stub.ListNotifications(pb.ListNotificationsRequest(page_size=100))
        assert [x.notification_id for x in notifications.notifications] == [note]
        info = await stub.GetInfo(pb.GetInfoRequest())
        assert (info.subscription_count, info.notification_count) == (1, 1)

    platform = stub_as(notification, PLATFORM_ADMIN)
    every = await platform.ListSubscriptions(pb.ListSubscriptionsRequest(page_size=1000))
    assert {s.subscription_id for s in made} <= {s.subscription_id for s in every.subscriptions}
    for one in made:
        got = await platform.GetSubscription(pb.GetSubscriptionRequest(subscription_id=one.subscription_id))
        assert got.subscription.organization_id == one.organization_id
    all_notes = await platform.ListNotifications(pb.ListNotificationsRequest(page_size=1000))
    assert set(notes) <= {x.notification_id for x in all_notes.notifications}


async def test_the_organization_is_output_only(notification: InProcess[NotificationDeps]) -> None:
    owner = admin_of(new_organization())
    stub = stub_as(notification, owner)
    mine = await subscribe(stub)
    moved = await async_failure(stub.UpdateSubscription, pb.UpdateSubscriptionRequest(
        subscription_id=mine.subscription_id, update_mask=field_mask_pb2.FieldMask(paths=["organization_id"])))
    assert moved.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(moved) == {"update_mask.paths[0]"}
    assert "'organization_id' cannot be changed" in (moved.details() or "")


# --- events: the consumer acts only within the event's organization ----------------------------------------


async def emit(service: InProcess[NotificationDeps], event: agent_events.ExecutionFailed, subject: str) -> str:
    """Publish a domain event for real: through this service's outbox, its relay and NATS to its consumer."""
    async with service.replica.db.connection() as conn, conn.transaction():
        envelope = await outbox.add(conn, event, subject=subject, source="agent")
    return envelope.id


async def handled(service: InProcess[NotificationDeps], event_ids: list[str], timeout: float = 20.0) -> None:
    """Wait until the notification consumer has committed its handling of every one of these events."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with service.replica.db.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM processed_events WHERE consumer = %s"
                                     " AND event_id = ANY(%s)", (CONSUMER_NAME, event_ids))
            row = await cur.fetchone()
        if row and row[0] == len(event_ids):
            return
        assert asyncio.get_running_loop().time() < deadline, f"events not handled: {event_ids}"
        await asyncio.sleep(0.1)


async def test_a_subscription_is_notified_of_its_own_organizations_events_only(
        notification: InProcess[NotificationDeps]) -> None:
    owners = [admin_of(new_organization()), admin_of(new_organization())]
    subject = f"executions/{uuid.uuid4()}"
    made = [await subscribe(stub_as(notification, o), subject_filter=subject) for o in owners]
    events = [await emit(notification, agent_events.ExecutionFailed(
        execution_id=subject, error=f"failed in {o.organization}", organization_id=o.organization), subject)
        for o in owners]
    # An event of a third organization, where nobody subscribed, and one without any organization (a mesh-wide
    # event, or one published before events carried it): neither may reach A's or B's subscription.
    stray = [await emit(notification, agent_events.ExecutionFailed(execution_id=subject, error="elsewhere",
                                                                   organization_id=new_organization()), subject),
             await emit(notification, agent_events.ExecutionFailed(execution_id=subject, error="nowhere"), subject)]
    await handled(notification, events + stray)

    for owner, own in zip(owners, made, strict=True):
        listed = await stub_as(notification, owner).ListNotifications(
            pb.ListNotificationsRequest(subscription_id=own.subscription_id))
        [only] = listed.notifications
        assert only.event_id == events[owners.index(owner)]
        assert (only.organization_id, only.event_data["error"]) == (owner.organization,
                                                                    f"failed in {owner.organization}")
    every = await stub_as(notification, PLATFORM_ADMIN).ListNotifications(
        pb.ListNotificationsRequest(event_subject=subject, page_size=100))
    assert sorted(x.event_id for x in every.notifications) == sorted(events), "none for the stray events"


async def test_a_notification_is_only_sent_through_a_subscription_of_its_organization(
        notification: InProcess[NotificationDeps]) -> None:
    # A row no API can make (a notification of B pointing at A's subscription): the worker's claim looks the
    # subscription up with the notification's organization too, so it fails the delivery instead of sending.
    owner = admin_of(new_organization())
    mine = await subscribe(stub_as(notification, owner))
    nid = uuid.uuid4()
    async with notification.replica.db.connection() as conn:
        await conn.execute(
            "INSERT INTO notifications (id, organization_id, subscription_id, subscription_name, event_id, event_type,"
            " event_time, max_attempts, next_attempt_at) VALUES (%s, %s, %s, 'x', %s, %s, now(), 5, now())",
            (nid, new_organization(), uuid.UUID(mine.subscription_id), uuid.uuid4().hex, FAILED))
    claim = await notification.deps.store.deliveries.claim(nid, 1, worker="test", lease_seconds=5)
    assert (claim.action, claim.subscription) == ("done", None)
    async with notification.replica.db.connection() as conn:
        cur = await conn.execute("SELECT state FROM notifications WHERE id = %s", (nid,))
        assert await cur.fetchone() == ("FAILED",)
