"""What the identity store returns: its rows as dataclasses. Secrets never appear here in clear: a
user row keeps the argon2id hash (excluded from repr), an API key row its HMAC."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

ROLES = ("owner", "admin", "member", "viewer")
"""Role names as stored and as tokens carry them (`roles` claim), strongest first."""


@dataclass(frozen=True)
class UserRow:
    """A user as stored."""

    id: uuid.UUID
    email: str
    display_name: str
    status: str
    password_hash: str = field(repr=False)
    platform_admin: bool
    sessions_valid_after: datetime
    created_by: str
    created_at: datetime
    updated_at: datetime
    password_changed_at: datetime

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class OrganizationRow:
    """An organization as stored, with its member count."""

    id: uuid.UUID
    name: str
    display_name: str
    created_by: str
    created_at: datetime
    member_count: int = 0


@dataclass(frozen=True)
class MembershipRow:
    """A membership with the user's email and name (joined)."""

    organization_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    created_at: datetime
    updated_at: datetime
    email: str = ""
    display_name: str = ""


@dataclass(frozen=True)
class InvitationRow:
    """An invitation as stored; `expired` is computed by the query (pending past expires_at)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    role: str
    status: str
    invited_by: str
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    expired: bool = False


@dataclass(frozen=True)
class ApiKeyRow:
    """An API key as stored (its HMAC, never the key)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    prefix: str
    secret_hash: bytes = field(repr=False)
    scopes: list[str]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    rotated_from: uuid.UUID | None
    rotated_at: datetime | None
    rate_limit_per_second: float
    rate_limit_burst: int

    def accepted_at(self, now: datetime) -> bool:
        """Whether the key is accepted at `now`: not revoked and not past its expiry (a rotated key
        is accepted until the overlap's end, which is its expires_at)."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)
