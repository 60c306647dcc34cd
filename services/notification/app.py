"""The notification service, described for the chassis to run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

import chassis
from chassis.crypto import load_cipher
from chassis.events import Consumer, EventsSpec, Worker
from chassis.paths import RUN_DIR
from protomesh.notification.v1 import notification_service_pb2, notification_service_pb2_grpc
from services.notification.channels import EmailSender, WebhookSender
from services.notification.delivery import CONSUMER_NAME, TASK_KIND, Deliverer
from services.notification.matching import domain_event_types
from services.notification.servicer import NotificationServicer
from services.notification.settings import NotificationSettings
from services.notification.store import NotificationStore

_SPARE_TASK_DELIVERIES = 10
"""Task deliveries beyond max_attempts, for waits that are not attempts (row not committed yet, a dead
worker's lease not run out yet): the worker, not the work queue, decides when a notification has FAILED."""


@contextlib.asynccontextmanager
async def lifespan(runtime: chassis.Runtime) -> AsyncIterator[None]:
    """Load the webhook secrets' key, open the store, the HTTP session and the sweeper; close them on shutdown."""
    settings = NotificationSettings.from_env()
    cipher = load_cipher("notification", default_state_dir=RUN_DIR)
    store = NotificationStore(runtime.db)
    async with aiohttp.ClientSession() as session:
        deliverer = Deliverer(
            store, settings, instance=runtime.settings.instance_id, events=lambda: runtime.events,
            email=EmailSender(settings),
            webhook=WebhookSender(session, settings.send_timeout_seconds,
                                  f"protomesh-notification/{runtime.settings.version}"),
            cipher=cipher,
        )
        runtime.state.update(store=store, settings=settings, deliverer=deliverer, cipher=cipher)
        sweeper = asyncio.create_task(deliverer.run_sweeper(), name="notification-sweeper")
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper


def events(runtime: chassis.Runtime) -> EventsSpec:
    """One consumer of every domain event type in the contracts, and the delivery worker."""
    deliverer: Deliverer = runtime.state["deliverer"]
    settings: NotificationSettings = runtime.state["settings"]
    return EventsSpec(
        consumers=[Consumer(CONSUMER_NAME, list(domain_event_types()), deliverer.on_event, max_deliver=5)],
        workers=[Worker([TASK_KIND], deliverer.run_task, ack_wait=settings.task_ack_wait_seconds,
                        concurrency=settings.workers, max_deliver=settings.max_attempts + _SPARE_TASK_DELIVERIES,
                        backoff=deliverer.backoff)],
    )


def build() -> chassis.Service:
    """The notification service: domain events to email and webhook notifications by subscription."""
    return chassis.Service(
        name="notification",
        description="Turns domain events into email and webhook notifications by subscription, with retries.",
        servicers=[
            chassis.Servicer(
                descriptor=notification_service_pb2.DESCRIPTOR.services_by_name["NotificationService"],
                add_to_server=notification_service_pb2_grpc.add_NotificationServiceServicer_to_server,
                factory=NotificationServicer,
            )
        ],
        migrations=Path(__file__).parent / "migrations",
        lifespan=lifespan,
        events=events,
    )
