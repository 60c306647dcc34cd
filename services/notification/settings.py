"""The notification service's own settings (NOTIFICATION_*), read once at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from chassis.config import ConfigError, env_float, env_int


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (true/false)")


@dataclass(frozen=True)
class NotificationSettings:
    """SMTP relay, retry policy and the sweeper's schedule."""

    smtp_host: str = "127.0.0.1"
    """SMTP relay host (NOTIFICATION_SMTP_HOST)."""
    smtp_port: int = 25
    """SMTP relay port (NOTIFICATION_SMTP_PORT)."""
    smtp_from: str = "protomesh@localhost"
    """Envelope and header sender (NOTIFICATION_SMTP_FROM)."""
    smtp_username: str = ""
    """Login, if the relay wants one (NOTIFICATION_SMTP_USERNAME)."""
    smtp_password: str = ""
    """Password for the login (NOTIFICATION_SMTP_PASSWORD)."""
    smtp_starttls: bool = False
    """Upgrade the connection with STARTTLS before sending (NOTIFICATION_SMTP_STARTTLS)."""
    max_attempts: int = 5
    """Attempts per delivery before a notification is FAILED (NOTIFICATION_MAX_ATTEMPTS)."""
    retry_initial_seconds: float = 1.0
    """Wait before the 2nd attempt; doubles per attempt (NOTIFICATION_RETRY_INITIAL_SECONDS)."""
    retry_max_seconds: float = 300.0
    """Longest wait between attempts (NOTIFICATION_RETRY_MAX_SECONDS)."""
    send_timeout_seconds: float = 10.0
    """Time limit of one SMTP or webhook attempt (NOTIFICATION_SEND_TIMEOUT_SECONDS)."""
    workers: int = 4
    """Deliveries one replica makes at once (NOTIFICATION_WORKERS)."""
    task_ack_wait_seconds: float = 30.0
    """How long a delivery task held by a silent (dead) replica waits before another replica gets it
    (NOTIFICATION_TASK_ACK_WAIT_SECONDS); live replicas heartbeat their tasks."""
    sweep_interval_seconds: float = 30.0
    """How often a replica looks for deliveries whose task was lost (NOTIFICATION_SWEEP_INTERVAL_SECONDS)."""
    sweep_grace_seconds: float = 60.0
    """How overdue a delivery must be before the sweeper queues it again (NOTIFICATION_SWEEP_GRACE_SECONDS)."""
    retention_days: int = 30
    """DELIVERED and FAILED notifications older than this are deleted by the sweeper (NOTIFICATION_RETENTION_DAYS)."""

    @property
    def lease_seconds(self) -> float:
        """How long an attempt may look in progress before it counts as abandoned (twice the send timeout,
        as SMTP's applies to each network operation; a live worker normally records its outcome well before)."""
        return 2 * self.send_timeout_seconds + 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotificationSettings:
        """Read the settings; ConfigError names a bad variable."""
        env = os.environ if env is None else env
        return cls(
            smtp_host=env.get("NOTIFICATION_SMTP_HOST", "").strip() or cls.smtp_host,
            smtp_port=env_int(env, "NOTIFICATION_SMTP_PORT", cls.smtp_port, low=1, high=65535),
            smtp_from=env.get("NOTIFICATION_SMTP_FROM", "").strip() or cls.smtp_from,
            smtp_username=env.get("NOTIFICATION_SMTP_USERNAME", "").strip(),
            smtp_password=env.get("NOTIFICATION_SMTP_PASSWORD", ""),
            smtp_starttls=_flag(env, "NOTIFICATION_SMTP_STARTTLS", cls.smtp_starttls),
            max_attempts=env_int(env, "NOTIFICATION_MAX_ATTEMPTS", cls.max_attempts, low=1, high=50),
            retry_initial_seconds=env_float(env, "NOTIFICATION_RETRY_INITIAL_SECONDS", cls.retry_initial_seconds,
                                            low=0.01, high=3600),
            retry_max_seconds=env_float(env, "NOTIFICATION_RETRY_MAX_SECONDS", cls.retry_max_seconds,
                                        low=0.01, high=86400),
            send_timeout_seconds=env_float(env, "NOTIFICATION_SEND_TIMEOUT_SECONDS", cls.send_timeout_seconds,
                                           low=0.1, high=300),
            workers=env_int(env, "NOTIFICATION_WORKERS", cls.workers, low=1, high=64),
            task_ack_wait_seconds=env_float(env, "NOTIFICATION_TASK_ACK_WAIT_SECONDS", cls.task_ack_wait_seconds,
                                            low=1, high=3600),
            sweep_interval_seconds=env_float(env, "NOTIFICATION_SWEEP_INTERVAL_SECONDS", cls.sweep_interval_seconds,
                                             low=0.05, high=3600),
            sweep_grace_seconds=env_float(env, "NOTIFICATION_SWEEP_GRACE_SECONDS", cls.sweep_grace_seconds,
                                          low=0.1, high=86400),
            retention_days=env_int(env, "NOTIFICATION_RETENTION_DAYS", cls.retention_days, low=1, high=36500),
        )
