"""NotificationService: subscriptions, notifications with their delivery attempts, resend, replica information."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import grpc

from chassis import Replica
from chassis.authz import creating_organization
from chassis.crypto import Cipher, Sealed
from chassis.errors import FailedPrecondition, NotFound, Violations
from chassis.idempotency import idempotent
from chassis.resources import Keyset, UpdateMask, found, optional_id, resource_id
from chassis.standard_rpcs import HealthRpcs
from protomesh.notification.v1 import notification_pb2, notification_service_pb2_grpc
from protomesh.notification.v1 import notification_service_pb2 as pb
from services.notification import validation
from services.notification.delivery import Deliverer
from services.notification.deps import NotificationDeps
from services.notification.matching import domain_event_types
from services.notification.messages import CHANNEL_NAMES, STATE_NAMES, notification_message, subscription_message
from services.notification.rows import SubscriptionRow, sealed_secret_columns
from services.notification.settings import NotificationSettings
from services.notification.store import NotificationFilter, Store

logger = logging.getLogger(__name__)

_MASK = UpdateMask.of(pb.UpdateSubscriptionRequest, resource=notification_pb2.Subscription)
SUBSCRIPTIONS = Keyset.newest_first("subscriptions")
NOTIFICATIONS = Keyset.newest_first("notifications")


def _channel_columns(request: pb.CreateSubscriptionRequest | pb.UpdateSubscriptionRequest,
                     current: SubscriptionRow | None, cipher: Cipher, subscription_id: uuid.UUID) -> dict[str, Any]:
    """Column values of the request's channel, the webhook secret sealed to the subscription's id; a webhook
    without a secret keeps the current one."""
    if request.WhichOneof("channel") == "webhook":
        secret = request.webhook.secret
        sealed: Sealed | None
        if secret:
            sealed = cipher.seal_bytes(secret.encode(), str(subscription_id))
        else:
            sealed = current.sealed_secret if current is not None and current.channel == "WEBHOOK" else None
        return {"channel": "WEBHOOK", "webhook_url": request.webhook.url.strip(), **sealed_secret_columns(sealed),
                "email_to": [], "subject_template": ""}
    return {"channel": "EMAIL", "email_to": list(request.email.to), "subject_template": request.email.subject_template,
            "webhook_url": "", **sealed_secret_columns(None)}


class NotificationServicer(HealthRpcs,
                           notification_service_pb2_grpc.NotificationServiceServicer):
    """Implements protomesh.notification.v1.NotificationService over PostgreSQL and the task queue."""

    def __init__(self, replica: Replica, deps: NotificationDeps) -> None:
        self._replica = replica
        self._store: Store = deps.store
        self._deliverer: Deliverer = deps.deliverer
        self._settings: NotificationSettings = deps.settings
        self._cipher: Cipher = deps.cipher

    async def _subscription(self, sid: str) -> SubscriptionRow:
        return found(await self._store.subscriptions.get(resource_id("subscription", sid, field="subscription_id")),
                     "subscription", sid)

    # --- subscriptions -----------------------------------------------------------------------------

    async def ListSubscriptions(
        self, request: pb.ListSubscriptionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSubscriptionsResponse:
        channel = CHANNEL_NAMES.get(request.channel, "")
        result = await self._store.subscriptions.list_page(channel, SUBSCRIPTIONS.page(request, channel))
        return pb.ListSubscriptionsResponse(
            subscriptions=[subscription_message(r) for r in result.items], page_info=result.page_info())

    # The event-type catalog, which the contract cannot state (it is read from every events.proto at run
    # time). The chassis also runs these `check_<Method>`s when the contract refuses a request, so one
    # answer names every bad field; when it accepts one, the RPC runs them itself.

    def check_CreateSubscription(self, request: pb.CreateSubscriptionRequest, v: Violations) -> None:
        validation.check_event_types(v, request.event_types)

    def check_UpdateSubscription(self, request: pb.UpdateSubscriptionRequest, v: Violations) -> None:
        validation.check_event_types(v, request.event_types)

    @idempotent(pb.CreateSubscriptionResponse)
    async def CreateSubscription(
        self, request: pb.CreateSubscriptionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateSubscriptionResponse:
        v = Violations()
        self.check_CreateSubscription(request, v)
        v.raise_if_any()
        organization = creating_organization("a subscription")  # the caller's: the contract has no field to say another
        subscription_id = uuid.uuid4()
        row = await self._store.subscriptions.create(subscription_id, organization, {
            "name": request.name, "event_types": validation.unique(request.event_types),
            "subject_filter": request.subject_filter,
            "enabled": request.enabled if request.HasField("enabled") else True,
            **_channel_columns(request, None, self._cipher, subscription_id),
        })
        logger.info("subscription created", extra={"subscription_id": str(row.id), "channel": row.channel,
                                                    "organization": row.organization_id})
        return pb.CreateSubscriptionResponse(subscription=subscription_message(row))

    async def GetSubscription(
        self, request: pb.GetSubscriptionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSubscriptionResponse:
        row = await self._subscription(request.subscription_id)
        return pb.GetSubscriptionResponse(subscription=subscription_message(row))

    async def UpdateSubscription(
        self, request: pb.UpdateSubscriptionRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateSubscriptionResponse:
        current = await self._subscription(request.subscription_id)
        v = Violations()
        paths = _MASK.paths(request, v)
        v.raise_if_any()
        self.check_UpdateSubscription(request, v)
        changes = _MASK.copied(request, paths, "name", "subject_filter", "enabled")
        if "event_types" in paths:
            changes["event_types"] = validation.unique(request.event_types)
        if "channel" in paths:
            validation.check_new_channel(v, request, current)
            if request.WhichOneof("channel"):
                changes.update(_channel_columns(request, current, self._cipher, current.id))
        v.raise_if_any()
        row = found(await self._store.subscriptions.update(current.id, changes), "subscription", current.id)
        return pb.UpdateSubscriptionResponse(subscription=subscription_message(row))

    async def DeleteSubscription(
        self, request: pb.DeleteSubscriptionRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteSubscriptionResponse:
        sid = resource_id("subscription", request.subscription_id, field="subscription_id")
        if not await self._store.subscriptions.delete(sid):
            raise NotFound("subscription", request.subscription_id)
        logger.info("subscription deleted", extra={"subscription_id": request.subscription_id})
        return pb.DeleteSubscriptionResponse(subscription_id=request.subscription_id)

    # --- notifications -----------------------------------------------------------------------------

    async def ListNotifications(
        self, request: pb.ListNotificationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListNotificationsResponse:
        v = Violations()  # the contract already refused a malformed id; this only converts it
        subscription_id = optional_id(v, request.subscription_id, "subscription_id", "subscription")
        v.raise_if_any()
        flt = NotificationFilter(state=STATE_NAMES.get(request.state, ""), subscription_id=subscription_id,
                                 event_type=request.event_type, event_subject=request.event_subject)
        # The token is bound to the finished filter, so the page is taken only once the filter is built.
        result = await self._store.notifications.list_page(flt, NOTIFICATIONS.page(request, flt))
        return pb.ListNotificationsResponse(
            notifications=[notification_message(r) for r in result.items], page_info=result.page_info())

    async def GetNotification(
        self, request: pb.GetNotificationRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetNotificationResponse:
        nid = request.notification_id
        row = found(await self._store.notifications.get(resource_id("notification", nid)), "notification", nid)
        return pb.GetNotificationResponse(notification=notification_message(row))

    @idempotent(pb.ResendNotificationResponse)
    async def ResendNotification(
        self, request: pb.ResendNotificationRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResendNotificationResponse:
        nid = resource_id("notification", request.notification_id, field="notification_id")
        row, state = await self._store.notifications.start_new_delivery(nid, self._settings.max_attempts)
        if row is None:
            if not state:
                raise NotFound("notification", request.notification_id)
            raise FailedPrecondition(
                f"notification {request.notification_id} is {state}; only DELIVERED or FAILED notifications can be "
                "resent", metadata={"state": state})
        try:
            await self._deliverer.submit(row.id, row.delivery)
        except Exception as exc:  # the row is PENDING: the sweeper queues it once NATS is back
            logger.warning("resend not queued; the sweeper will", extra={"notification_id": str(row.id),
                                                                          "error": repr(exc)})
        logger.info("notification resent", extra={"notification_id": str(row.id), "delivery": row.delivery})
        return pb.ResendNotificationResponse(notification=notification_message(row))

    # --- replica -------------------------------------------------------------------------------------

    async def GetInfo(
        self, request: pb.GetInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetInfoResponse:
        return pb.GetInfoResponse(
            info=self._replica.service_info(), subscription_count=await self._store.subscriptions.count(),
            notification_count=await self._store.notifications.count(), event_types=domain_event_types(),
            max_attempts=self._settings.max_attempts,
        )
