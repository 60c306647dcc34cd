"""The rows the integration store returns, in a module of their own.

The store, the connections and the message conversions all use them; keeping them apart from
the store means none of those imports another just for a type.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chassis.crypto import Sealed


@dataclass(frozen=True)
class IntegrationRow:
    """An integration as stored."""

    id: uuid.UUID
    organization_id: str
    """The organization it (and its credentials) belongs to (docs/authorization.md, Tenancy)."""
    name: str
    kind: str
    description: str
    config: dict[str, Any]
    credentials_ciphertext: bytes | None
    credentials_nonce: bytes | None
    credentials_key_id: str | None
    credential_keys: list[str]
    enabled: bool
    labels: dict[str, str]
    probe_kind: str | None
    probe_ok: bool | None
    probe_detail: str | None
    probe_latency_ms: float | None
    probed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime

    def __repr__(self) -> str:  # the sealed bytes are not for logs either
        return f"IntegrationRow(id={self.id}, name={self.name!r}, kind={self.kind}, version={self.version})"

    @property
    def sealed(self) -> Sealed | None:
        """The encrypted credentials, if any."""
        if self.credentials_ciphertext is None or self.credentials_nonce is None or not self.credentials_key_id:
            return None
        return Sealed(bytes(self.credentials_ciphertext), bytes(self.credentials_nonce), self.credentials_key_id)
