"""The workflow service's own settings (WORKFLOW_*), read once at start by chassis.load_settings."""

from __future__ import annotations

from dataclasses import dataclass

from chassis import setting


@dataclass(frozen=True)
class WorkflowSettings:
    """Leases, the scheduler, calls and compensations."""

    lease_seconds: float = setting(5.0, low=0.5, high=600)
    """How long a replica holds an execution without renewing it (WORKFLOW_LEASE_SECONDS): a killed replica's
    executions are resumed elsewhere after at most this long."""
    poll_seconds: float = setting(0.5, low=0.01, high=60)
    """How often the scheduler looks for due timers and expired leases when nothing wakes it
    (WORKFLOW_POLL_SECONDS)."""
    max_running: int = setting(256, low=1, high=10000)
    """Executions one replica runs at once (WORKFLOW_MAX_RUNNING)."""
    call_timeout_seconds: float = setting(30.0, low=0.1, high=3600)
    """Deadline of one `call` task's RPC (WORKFLOW_CALL_TIMEOUT_SECONDS)."""
    compensation_attempts: int = setting(3, low=1, high=20)
    """Attempts of each compensation before the execution NEEDS_ATTENTION (WORKFLOW_COMPENSATION_ATTEMPTS)."""
    compensation_backoff_seconds: float = setting(1.0, low=0.0, high=3600)
    """Wait before a compensation's 2nd attempt; doubles per attempt (WORKFLOW_COMPENSATION_BACKOFF_SECONDS)."""
    clock: str = "system"
    """`system`, or `manual` for tests only: time moves when the test says so (WORKFLOW_CLOCK)."""
