"""The notification service, described for the chassis to run."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import chassis
from chassis.crypto import load_cipher
from chassis.events import Consumer, EventHandlers, Worker
from chassis.paths import RUN_DIR
from services.notification.channels import EmailSender, WebhookSender
from services.notification.delivery import CONSUMER_NAME, TASK_KIND, Deliverer
from services.notification.deps import NotificationDeps
from services.notification.matching import domain_event_types
from services.notification.servicer import NotificationServicer
from services.notification.settings import NotificationSettings
from services.notification.store import Store

_SPARE_TASK_DELIVERIES = 10
"""Task deliveries beyond max_attempts, for waits that are not attempts (row not committed yet, a dead
worker's lease not run out yet): the worker, not the work queue, decides when a notification has FAILED."""


@contextlib.asynccontextmanager
async def lifespan(replica: chassis.Replica, settings: NotificationSettings) -> AsyncIterator[NotificationDeps]:
    """Load the webhook secrets' key and open the store; the webhook sender's HTTP session is closed on shutdown."""
    cipher = load_cipher("notification", default_state_dir=RUN_DIR)
    store = Store.open(replica.db)
    webhook = WebhookSender(settings.send_timeout_seconds, f"protomesh-notification/{replica.settings.version}")
    try:
        deliverer = Deliverer(
            store, settings, instance=replica.settings.instance_id, events=lambda: replica.events,
            email=EmailSender(settings), webhook=webhook, cipher=cipher,
        )
        yield NotificationDeps(settings, store, cipher, deliverer)
    finally:
        await webhook.close()


def handlers(replica: chassis.Replica, deps: NotificationDeps) -> EventHandlers:
    """One consumer of every domain event type in the contracts, and the delivery worker."""
    settings, deliverer = deps.settings, deps.deliverer
    return EventHandlers(
        consumers=[Consumer(CONSUMER_NAME, list(domain_event_types()), deliverer.on_event, max_deliver=5)],
        workers=[Worker([TASK_KIND], deliverer.run_task, ack_wait=settings.task_ack_wait_seconds,
                        concurrency=settings.workers, max_deliver=settings.max_attempts + _SPARE_TASK_DELIVERIES,
                        backoff=deliverer.backoff)],
    )


async def sweep(deps: NotificationDeps) -> None:
    """Deliveries whose task was lost are queued again; old finished notifications are deleted."""
    await deps.deliverer.run_sweeper()


def build() -> chassis.Service[NotificationSettings, NotificationDeps]:
    """The notification service: domain events to email and webhook notifications by subscription."""
    return chassis.Service(
        name="notification",
        description="Turns domain events into email and webhook notifications by subscription, with retries.",
        servicers=[NotificationServicer],
        settings=NotificationSettings,
        lifespan=lifespan,
        migrations=Path(__file__).parent / "migrations",
        handlers=handlers,
        background=[chassis.Loop("notification-sweeper", sweep)],
    )
