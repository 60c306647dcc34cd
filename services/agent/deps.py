"""What the agent service's lifespan opens and its servicer and worker use."""

from __future__ import annotations

from dataclasses import dataclass

from services.agent.runner import ExecutionRunner
from services.agent.settings import AgentSettings
from services.agent.store import AgentStore


@dataclass(frozen=True)
class AgentDeps:
    """The agent replica's dependencies, typed: no string-keyed state."""

    settings: AgentSettings
    store: AgentStore
    runner: ExecutionRunner
