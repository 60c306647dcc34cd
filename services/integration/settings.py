"""The integration service's own settings (INTEGRATION_*), read once at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from chassis.config import env_float, env_int


@dataclass(frozen=True)
class IntegrationSettings:
    """Probe time limits and bounds on per-replica state."""

    probe_timeout_seconds: float = 5.0
    """How long a health check may take; a test gets three times as long (INTEGRATION_PROBE_TIMEOUT_SECONDS)."""
    max_client_keys: int = 1000
    """Client keys with their own token bucket per integration; the least recently seen go first
    (INTEGRATION_MAX_CLIENT_KEYS)."""
    max_parameters_bytes: int = 1024 * 1024
    """Largest InvokeIntegration parameters, as compact JSON (INTEGRATION_MAX_PARAMETERS_BYTES)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IntegrationSettings:
        """Read the settings; ConfigError names a bad variable."""
        env = os.environ if env is None else env
        return cls(
            probe_timeout_seconds=env_float(env, "INTEGRATION_PROBE_TIMEOUT_SECONDS", cls.probe_timeout_seconds,
                                            low=0.1, high=60),
            max_client_keys=env_int(env, "INTEGRATION_MAX_CLIENT_KEYS", cls.max_client_keys, low=1, high=1_000_000),
            max_parameters_bytes=env_int(env, "INTEGRATION_MAX_PARAMETERS_BYTES", cls.max_parameters_bytes,
                                         low=1024, high=64 * 1024 * 1024),
        )
