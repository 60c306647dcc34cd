"""The notification service's own settings (NOTIFICATION_*), read once at start by chassis.load_settings."""

from __future__ import annotations

from dataclasses import dataclass

from chassis import setting


@dataclass(frozen=True)
class NotificationSettings:
    """SMTP relay, retry policy and the sweeper's schedule."""

    smtp_host: str = "127.0.0.1"
    """SMTP relay host (NOTIFICATION_SMTP_HOST)."""
    smtp_port: int = setting(25, low=1, high=65535)
    """SMTP relay port (NOTIFICATION_SMTP_PORT)."""
    smtp_from: str = "protomesh@localhost"
    """Envelope and header sender (NOTIFICATION_SMTP_FROM)."""
    smtp_username: str = ""
    """Login, if the relay wants one (NOTIFICATION_SMTP_USERNAME)."""
    smtp_password: str = ""
    """Password for the login (NOTIFICATION_SMTP_PASSWORD)."""
    smtp_starttls: bool = False
    """Upgrade the connection with STARTTLS before sending (NOTIFICATION_SMTP_STARTTLS)."""
    max_attempts: int = setting(5, low=1, high=50)
    """Attempts per delivery before a notification is FAILED (NOTIFICATION_MAX_ATTEMPTS)."""
    retry_initial_seconds: float = setting(1.0, low=0.01, high=3600)
    """Wait before the 2nd attempt; doubles per attempt (NOTIFICATION_RETRY_INITIAL_SECONDS)."""
    retry_max_seconds: float = setting(300.0, low=0.01, high=86400)
    """Longest wait between attempts (NOTIFICATION_RETRY_MAX_SECONDS)."""
    send_timeout_seconds: float = setting(10.0, low=0.1, high=300)
    """Time limit of one SMTP or webhook attempt (NOTIFICATION_SEND_TIMEOUT_SECONDS)."""
    workers: int = setting(4, low=1, high=64)
    """Deliveries one replica makes at once (NOTIFICATION_WORKERS)."""
    task_ack_wait_seconds: float = setting(30.0, low=1, high=3600)
    """How long a delivery task held by a silent (dead) replica waits before another replica gets it
    (NOTIFICATION_TASK_ACK_WAIT_SECONDS); live replicas heartbeat their tasks."""
    sweep_interval_seconds: float = setting(30.0, low=0.05, high=3600)
    """How often a replica looks for deliveries whose task was lost (NOTIFICATION_SWEEP_INTERVAL_SECONDS)."""
    sweep_grace_seconds: float = setting(60.0, low=0.1, high=86400)
    """How overdue a delivery must be before the sweeper queues it again (NOTIFICATION_SWEEP_GRACE_SECONDS)."""
    retention_days: int = setting(30, low=1, high=36500)
    """DELIVERED and FAILED notifications older than this are deleted by the sweeper (NOTIFICATION_RETENTION_DAYS)."""

    @property
    def lease_seconds(self) -> float:
        """How long an attempt may look in progress before it counts as abandoned (twice the send timeout,
        as SMTP's applies to each network operation; a live worker normally records its outcome well before)."""
        return 2 * self.send_timeout_seconds + 1.0
