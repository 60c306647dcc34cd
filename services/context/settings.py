"""The context service's own settings (CONTEXT_*), read once at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from chassis.config import env_float, env_int


@dataclass(frozen=True)
class ContextSettings:
    """Limits and the cleanup schedule."""

    max_layer_bytes: int = 256 * 1024
    """Largest layer, as compact JSON (CONTEXT_MAX_LAYER_BYTES)."""
    max_context_bytes: int = 2 * 1024 * 1024
    """Largest total of a context's layers (CONTEXT_MAX_CONTEXT_BYTES); bounds the resolved view."""
    max_metadata_bytes: int = 64 * 1024
    """Largest metadata object (CONTEXT_MAX_METADATA_BYTES)."""
    cleanup_interval_seconds: float = 60.0
    """How often expired contexts are cleaned up (CONTEXT_CLEANUP_INTERVAL_SECONDS)."""
    usage_retention_days: int = 400
    """How long hourly usage counters are kept (CONTEXT_USAGE_RETENTION_DAYS)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ContextSettings:
        """Read the settings; ConfigError names a bad variable."""
        env = os.environ if env is None else env
        return cls(
            max_layer_bytes=env_int(env, "CONTEXT_MAX_LAYER_BYTES", cls.max_layer_bytes, low=64, high=4 * 1024 * 1024),
            max_context_bytes=env_int(env, "CONTEXT_MAX_CONTEXT_BYTES", cls.max_context_bytes,
                                      low=64, high=64 * 1024 * 1024),
            max_metadata_bytes=env_int(env, "CONTEXT_MAX_METADATA_BYTES", cls.max_metadata_bytes,
                                       low=64, high=4 * 1024 * 1024),
            cleanup_interval_seconds=env_float(env, "CONTEXT_CLEANUP_INTERVAL_SECONDS", cls.cleanup_interval_seconds,
                                               low=0.05, high=86400),
            usage_retention_days=env_int(env, "CONTEXT_USAGE_RETENTION_DAYS", cls.usage_retention_days,
                                         low=1, high=36500),
        )
