"""What the notification store returns: its rows as dataclasses, shared by the store, delivery and messages.

Webhook secrets only appear here sealed (ciphertext, nonce, key id); nothing in the store sees them in clear.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chassis.crypto import Sealed


@dataclass(frozen=True)
class SubscriptionRow:
    """A subscription as stored."""

    id: uuid.UUID
    organization_id: str
    """The organization it belongs to; it matches that organization's events only (docs/authorization.md)."""
    name: str
    event_types: list[str]
    subject_filter: str
    channel: str
    email_to: list[str]
    subject_template: str
    webhook_url: str
    webhook_secret_ciphertext: bytes | None = field(repr=False)
    webhook_secret_nonce: bytes | None = field(repr=False)
    webhook_secret_key_id: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @property
    def sealed_secret(self) -> Sealed | None:
        """The webhook's secret, sealed (the store never sees it in clear); None for an email subscription."""
        ciphertext, nonce = self.webhook_secret_ciphertext, self.webhook_secret_nonce
        if ciphertext is None or nonce is None or not self.webhook_secret_key_id:
            return None
        return Sealed(bytes(ciphertext), bytes(nonce), self.webhook_secret_key_id)


def sealed_secret_columns(sealed: Sealed | None) -> dict[str, Any]:
    """The subscription columns that store a sealed webhook secret (all NULL for none): sealed_secret's inverse."""
    return {"webhook_secret_ciphertext": sealed.ciphertext if sealed else None,
            "webhook_secret_nonce": sealed.nonce if sealed else None,
            "webhook_secret_key_id": sealed.key_id if sealed else None}


@dataclass(frozen=True)
class AttemptRow:
    """One delivery attempt as stored."""

    notification_id: uuid.UUID
    delivery: int
    attempt: int
    outcome: str
    channel: str
    target: str
    status_code: int
    error: str
    worker: str
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class NotificationRow:
    """A notification as stored, with its attempts when they were asked for."""

    id: uuid.UUID
    subscription_id: uuid.UUID
    subscription_name: str
    event_id: str
    event_type: str
    event_subject: str
    event_source: str
    event_time: datetime
    event_data: dict[str, Any]
    state: str
    delivery: int
    attempt_count: int
    max_attempts: int
    last_error: str
    next_attempt_at: datetime | None
    lease_until: datetime | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    organization_id: str
    """Its subscription's organization, which is its event's."""
    attempts: list[AttemptRow] = field(default_factory=list)


@dataclass(frozen=True)
class Claim:
    """What a worker may do with a delivery task: "send" (attempt claimed), "done", "busy" or "missing"."""

    action: str
    notification: NotificationRow | None = None
    subscription: SubscriptionRow | None = None
    attempt: int = 0
