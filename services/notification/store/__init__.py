"""The notification service's PostgreSQL access, split at its seams: subscriptions, notifications, deliveries.

Webhook secrets only pass through here sealed (ciphertext, nonce, key id); the store never sees them
in clear. The rows it returns are in services/notification/rows.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from services.notification.store.deliveries import DeliveryStore
from services.notification.store.notifications import NotificationFilter, NotificationStore
from services.notification.store.subscriptions import SubscriptionStore

__all__ = ["DeliveryStore", "NotificationFilter", "NotificationStore", "Store", "SubscriptionStore"]


@dataclass(frozen=True)
class Store:
    """Every query of the service over one pool, by the table (or the work) it is about."""

    subscriptions: SubscriptionStore
    notifications: NotificationStore
    deliveries: DeliveryStore

    @classmethod
    def open(cls, pool: AsyncConnectionPool) -> Store:
        """The three parts over the replica's pool."""
        return cls(SubscriptionStore(pool), NotificationStore(pool), DeliveryStore(pool))
