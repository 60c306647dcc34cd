"""What the context store returns: plain rows, imported by the store, the events and the messages alike."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ContextRow:
    """A context as stored (status already EXPIRED when its expiry has passed)."""

    id: uuid.UUID
    name: str
    type: str
    status: str
    owner: str
    shared_with: list[str]
    metadata: dict[str, Any]
    tags: list[str]
    layer_count: int
    size_bytes: int
    access_count: int
    version: int
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    last_accessed_at: datetime | None
    organization_id: str


@dataclass(frozen=True)
class LayerRow:
    """A layer as stored."""

    id: uuid.UUID
    context_id: uuid.UUID
    name: str
    layer_type: str
    position: int
    data: dict[str, Any]
    size_bytes: int
    version: int
    created_at: datetime
    updated_at: datetime
    organization_id: str


@dataclass(frozen=True)
class Usage:
    """Reads and writes in one window."""

    start: datetime
    end: datetime
    reads: int
    writes: int
    active_contexts: int


@dataclass(frozen=True)
class Summary:
    """Figures over all contexts."""

    total_contexts: int
    by_status: dict[str, int]
    by_type: dict[str, int]
    total_layers: int
    total_size_bytes: int
    total_access_count: int
    reads_last_24h: int
    writes_last_24h: int
