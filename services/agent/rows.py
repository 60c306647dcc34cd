"""The rows the agent store returns: what the servicer, the runner, the events and the messages read.

They live apart from store.py so that events.py and messages.py can name them without importing the
store (which imports events.py to publish through the outbox).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

FINAL_STATES = ("SUCCEEDED", "FAILED", "STOPPED")


@dataclass(frozen=True)
class AgentRow:
    """An agent as stored, with its active execution if any."""

    id: uuid.UUID
    name: str
    type: str
    description: str
    capabilities: list[str]
    config: dict[str, Any]
    labels: dict[str, str]
    created_at: datetime
    updated_at: datetime
    organization_id: str
    current_execution_id: uuid.UUID | None


@dataclass(frozen=True)
class ExecutionRow:
    """An execution as stored."""

    id: uuid.UUID
    agent_id: uuid.UUID
    state: str
    input: dict[str, Any]
    output: dict[str, Any] | None
    error: str
    progress: float
    runner: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    context_id: str = ""
    result_layer_id: str = ""
    agent_type: str = ""
    organization_id: str = ""


@dataclass(frozen=True)
class DeletedAgent:
    """What is left of a deregistered agent for its event."""

    id: uuid.UUID
    name: str
    type: str
    organization_id: str
    deleted_at: datetime
