"""What the notification service's lifespan opens and its servicer, handlers and sweeper use."""

from __future__ import annotations

from dataclasses import dataclass

from chassis.crypto import Cipher
from services.notification.delivery import Deliverer
from services.notification.settings import NotificationSettings
from services.notification.store import Store


@dataclass(frozen=True)
class NotificationDeps:
    """The notification replica's dependencies, typed: no string-keyed state."""

    settings: NotificationSettings
    store: Store
    cipher: Cipher
    deliverer: Deliverer
