"""From domain event to delivered notification: the consumer, the delivery worker and the sweeper.

1. The consumer (`Deliverer.on_event`) runs in the transaction that marks the event handled: it
   inserts one PENDING notification per matching subscription (ids derived from subscription and
   event, so a redelivered event inserts nothing) and queues a `notification.deliver` task per new
   row, with task id "<notification id>.<delivery>" (a resubmission is de-duplicated by NATS).
2. A worker on any replica takes the task (`Deliverer.run_task`), claims the next attempt in
   PostgreSQL (IN_PROGRESS, with a lease), sends, and records the outcome. A retryable failure
   raises, so the work queue redelivers the task after exponential backoff; the N-th failed
   attempt, or a permanent failure, marks the notification FAILED and ends the task.
3. A replica that dies mid-attempt stops heartbeating its task, which NATS hands to another
   worker after ack_wait; that worker finds the lease expired, marks the attempt ABANDONED and
   tries again. The sweeper re-queues (under a fresh task id) any unfinished delivery overdue by a
   grace period, in case its task itself was lost (dead-lettered, or lost with a nats-server store);
   a duplicate task is harmless, as every task first claims the attempt in PostgreSQL.

Delivery is therefore at least once: a receiver may see a notification twice (X-Protomesh-Event-Id
and the notification id are stable, for de-duplication), and never loses one that was committed.

Tenancy (docs/authorization.md): the consumer acts only within the event's organization
(`Envelope.organization_id`, which the outbox takes from the event's own `organization_id` field and
also sends as the `pm-organization` header; for an envelope from before that field, the event's own
field). Only that organization's subscriptions are matched, and each notification is stamped with it.
An event without an organization (a mesh-wide one, or an old event of a contract whose messages have no
such field) notifies no one: every subscription belongs to an organization, and none may hear of what
happened in another or outside them all. The worker sends each notification within its own
organization (chassis.acting_for), through a subscription of that organization only.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

import psycopg
from google.protobuf import json_format, message

from chassis.authz import acting_for
from chassis.crypto import Cipher, DecryptionError
from chassis.events import Backoff, EventBus, Task, TaskQueue
from chassis.events.envelope import organization_of
from chassis.protos import to_datetime
from protomesh.events.v1 import envelope_pb2
from protomesh.notification.v1 import tasks_pb2
from services.notification.channels import PERMANENT, EmailSender, EventView, Outcome, WebhookSender
from services.notification.matching import subject_matches
from services.notification.rows import NotificationRow, SubscriptionRow
from services.notification.settings import NotificationSettings
from services.notification.store import Store

logger = logging.getLogger(__name__)

TASK_KIND = "notification.deliver"
CONSUMER_NAME = "notification-events"
_TASKS_READY_SECONDS = 10.0


def task_id(nid: uuid.UUID | str, delivery: int) -> str:
    """The task id of one delivery of a notification."""
    return f"{nid}.{delivery}"


def event_organization(event: message.Message, envelope: envelope_pb2.Envelope) -> str:
    """The organization an event belongs to ("" for none): the envelope's, else the event message's own field
    (an envelope published before the envelope carried it)."""
    return envelope.organization_id or organization_of(event)


class RetryLater(Exception):
    """Raised by the worker so the work queue redelivers the task after its backoff."""


class Deliverer:
    """Consumer handler, worker handler and sweeper of one replica, sharing the store and the senders."""

    def __init__(self, store: Store, settings: NotificationSettings, *, instance: str,
                 events: Callable[[], EventBus | None], email: EmailSender, webhook: WebhookSender,
                 cipher: Cipher) -> None:
        self.store = store
        self.cipher = cipher
        self.settings = settings
        self.instance = instance
        self._events = events
        self.email = email
        self.webhook = webhook
        self.backoff = Backoff(initial=settings.retry_initial_seconds, multiplier=2.0,
                               maximum=settings.retry_max_seconds, jitter=0.1)

    async def tasks(self) -> TaskQueue:
        """The task queue; the event bus starts its consumers before the server publishes it on the runtime."""
        deadline = asyncio.get_running_loop().time() + _TASKS_READY_SECONDS
        while (events := self._events()) is None:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("the event bus is not running (NATS_URL unset?)")
            await asyncio.sleep(0.05)
        return events.tasks

    async def submit(self, nid: uuid.UUID, delivery: int, *, again: bool = False) -> None:
        """Queue the delivery task of one delivery of a notification.

        `again` (the sweeper) gives the task a fresh id: the first one may still sit in NATS's
        duplicate window, which would silently drop a re-queue under the same id.
        """
        payload = tasks_pb2.DeliverNotification(notification_id=str(nid), delivery=delivery)
        tid = task_id(nid, delivery) + (f".{uuid.uuid4().hex[:8]}" if again else "")
        await (await self.tasks()).submit(TASK_KIND, payload, task_id=tid)

    # --- consumer ---------------------------------------------------------------------------------

    async def on_event(self, event: message.Message, envelope: envelope_pb2.Envelope,
                       conn: psycopg.AsyncConnection) -> None:
        """Make the notifications of one domain event, in the transaction that marks it handled: for the
        matching subscriptions of the event's organization only (none for an event without one)."""
        organization = event_organization(event, envelope)
        if not organization:
            logger.info("event without an organization: no subscription is notified",
                        extra={"event_id": envelope.id, "event_type": envelope.type})
            return
        with acting_for(organization):
            await self._notify(event, envelope, conn, organization)

    async def _notify(self, event: message.Message, envelope: envelope_pb2.Envelope, conn: psycopg.AsyncConnection,
                      organization: str) -> None:
        candidates = await self.store.subscriptions.matching(conn, envelope.type, organization)
        matched = [s for s in candidates if subject_matches(s.subject_filter, envelope.subject)]
        if not matched:
            return
        created = await self.store.notifications.create_for_event(
            conn, matched, event_id=envelope.id, event_type=envelope.type, event_subject=envelope.subject,
            event_source=envelope.source, event_time=to_datetime(envelope.time),
            event_data=json_format.MessageToDict(event, preserving_proto_field_name=True),
            max_attempts=self.settings.max_attempts,
        )
        # Queued before this transaction commits: a worker that is quicker waits on the row's
        # advisory lock; if the commit fails, the event is redelivered and recreates the same ids.
        for nid in created:
            await self.submit(nid, 1)
        logger.info("notifications created", extra={"event_id": envelope.id, "event_type": envelope.type,
                                                    "subject": envelope.subject, "count": len(created),
                                                    "organization": organization})

    # --- worker -----------------------------------------------------------------------------------

    async def run_task(self, payload: tasks_pb2.DeliverNotification, task: Task) -> None:
        """Make the next attempt of a delivery; raise RetryLater to be run again after backoff."""
        try:
            nid = uuid.UUID(payload.notification_id)
        except ValueError:
            logger.error("delivery task with a bad notification id", extra={"task_id": task.id})
            return
        claim = await self.store.deliveries.claim(nid, payload.delivery, worker=self.instance,
                                               lease_seconds=self.settings.lease_seconds)
        if claim.action == "missing":
            raise RetryLater(f"notification {nid} does not exist (yet)")
        if claim.action == "busy":
            raise RetryLater(f"notification {nid}: another worker's attempt is in progress")
        notification, subscription = claim.notification, claim.subscription
        if claim.action == "done" or notification is None or subscription is None:  # "send" carries both
            return
        # The task names only the notification; what is sent is that notification's organization's business.
        with acting_for(notification.organization_id):
            outcome = await self._send(notification, subscription, claim.attempt)
        retry_in = self.backoff.delay(claim.attempt) if claim.attempt < self.settings.max_attempts else None
        state = await self.store.deliveries.finish(nid, payload.delivery, claim.attempt, outcome=outcome.outcome,
                                                status_code=outcome.status_code, error=outcome.error,
                                                retry_in=retry_in)
        logger.info("delivery attempt", extra={"notification_id": str(nid), "delivery": payload.delivery,
                                               "attempt": claim.attempt, "outcome": outcome.outcome,
                                               "status_code": outcome.status_code, "state": state})
        if state == "RETRYING":
            raise RetryLater(f"attempt {claim.attempt} failed: {outcome.error}")

    async def _send(self, n: NotificationRow, s: SubscriptionRow, attempt: int) -> Outcome:
        view = EventView(notification_id=str(n.id), event_id=n.event_id, type=n.event_type, subject=n.event_subject,
                         source=n.event_source, time=n.event_time, data=n.event_data, subscription=s.name,
                         delivery=n.delivery, attempt=attempt)
        try:
            if s.channel == "WEBHOOK":
                sealed = s.sealed_secret
                if sealed is None:
                    return Outcome(PERMANENT, error="the webhook subscription has no secret to sign with")
                secret = self.cipher.open_bytes(sealed, str(s.id), what="webhook secret").decode()
                return await self.webhook.send(s.webhook_url, secret, view)
            return await self.email.send(list(s.email_to), s.subject_template, view)
        except DecryptionError as exc:  # another key than the one it was stored with: no retry can help
            return Outcome(PERMANENT, error=exc.message)
        except Exception as exc:  # a bug in rendering or sending must still end as a recorded attempt
            logger.exception("sending failed unexpectedly", extra={"notification_id": str(n.id)})
            return Outcome(PERMANENT, error=f"internal error: {type(exc).__name__}: {exc}")

    # --- sweeper ----------------------------------------------------------------------------------

    async def sweep_once(self) -> int:
        """Re-queue unfinished deliveries whose task is overdue by the grace period, and delete finished
        notifications past the retention; returns how many were re-queued."""
        overdue = await self.store.deliveries.overdue(self.settings.sweep_grace_seconds)
        for nid, delivery in overdue:
            await self.submit(nid, delivery, again=True)
        if overdue:
            logger.warning("re-queued overdue deliveries", extra={"count": len(overdue)})
        expired = await self.store.deliveries.delete_finished(self.settings.retention_days)
        if expired:
            logger.info("deleted notifications past retention", extra={"count": expired,
                                                                       "retention_days": self.settings.retention_days})
        return len(overdue)

    async def run_sweeper(self) -> None:
        """Sweep every interval until cancelled; a failed round is logged and retried next time."""
        while True:
            await asyncio.sleep(self.settings.sweep_interval_seconds)
            if self._events() is None:
                continue
            try:
                await self.sweep_once()
            except Exception as exc:  # PostgreSQL or NATS away: the next round tries again
                logger.warning("sweep failed; will retry", extra={"error": repr(exc)})
