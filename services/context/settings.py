"""The context service\'s own settings (CONTEXT_*), read once at start by chassis.load_settings."""

from __future__ import annotations

from dataclasses import dataclass

from chassis import setting


@dataclass(frozen=True)
class ContextSettings:
    """Limits and the cleanup schedule."""

    max_layer_bytes: int = setting(256 * 1024, low=64, high=4 * 1024 * 1024)
    """Largest layer, as compact JSON (CONTEXT_MAX_LAYER_BYTES)."""
    max_context_bytes: int = setting(2 * 1024 * 1024, low=64, high=64 * 1024 * 1024)
    """Largest total of a context's layers (CONTEXT_MAX_CONTEXT_BYTES); bounds the resolved view."""
    max_metadata_bytes: int = setting(64 * 1024, low=64, high=4 * 1024 * 1024)
    """Largest metadata object (CONTEXT_MAX_METADATA_BYTES)."""
    cleanup_interval_seconds: float = setting(60.0, low=0.05, high=86400)
    """How often expired contexts are cleaned up (CONTEXT_CLEANUP_INTERVAL_SECONDS)."""
    usage_retention_days: int = setting(400, low=1, high=36500)
    """How long hourly usage counters are kept (CONTEXT_USAGE_RETENTION_DAYS)."""
