"""The integration service\'s own settings (INTEGRATION_*), read once at start by chassis.load_settings."""

from __future__ import annotations

from dataclasses import dataclass

from chassis import setting


@dataclass(frozen=True)
class IntegrationSettings:
    """Probe time limits and bounds on per-replica state."""

    probe_timeout_seconds: float = setting(5.0, low=0.1, high=60)
    """How long a health check may take; a test gets three times as long (INTEGRATION_PROBE_TIMEOUT_SECONDS)."""
    max_client_keys: int = setting(1000, low=1, high=1_000_000)
    """Client keys with their own token bucket per integration; the least recently seen go first
    (INTEGRATION_MAX_CLIENT_KEYS)."""
    max_parameters_bytes: int = setting(1024 * 1024, low=1024, high=64 * 1024 * 1024)
    """Largest InvokeIntegration parameters, as compact JSON (INTEGRATION_MAX_PARAMETERS_BYTES)."""
    allowed_targets: str = setting("")
    """Non-public targets integrations may connect to (INTEGRATION_ALLOWED_TARGETS): comma-separated
    addresses, CIDRs or host names, each optionally with :port, e.g. `10.20.0.0/16, 127.0.0.1:8080`.
    Public addresses need no entry; the mesh's own PostgreSQL, NATS and Consul are refused whatever this
    says. Read by services.integration.targets."""
