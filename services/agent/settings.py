"""The agent service's own settings (AGENT_*), read once at start by chassis.load_settings."""

from __future__ import annotations

from dataclasses import dataclass

from chassis import setting


@dataclass(frozen=True)
class AgentSettings:
    """How many executions a replica runs at once, and when a silent worker's execution moves on."""

    workers: int = setting(2, low=1, high=64)
    """Executions one replica runs at once (AGENT_WORKERS)."""
    task_ack_wait_seconds: float = setting(30.0, low=1, high=3600)
    """How long an execution held by a silent (dead) replica waits before another replica takes it
    (AGENT_TASK_ACK_WAIT_SECONDS); live workers heartbeat their tasks."""
