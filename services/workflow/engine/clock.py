"""The time workflows see: the system's, or (tests only) one the test moves forward by hand.

Timers (wait, retry backoff, listen timeouts) are stored as absolute times and compared with this clock,
never with PostgreSQL's now(): moving a ManualClock a day ahead makes a one-day wait due at once, in
process, without a downloaded test server. Leases stay on real time (they are about replicas being
alive, not about workflow time).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the engine reads the time from."""

    def now(self) -> datetime: ...

    def on_advance(self, callback: Callable[[], None]) -> None: ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def on_advance(self, callback: Callable[[], None]) -> None:
        """Real time never jumps: nothing to notify."""


class ManualClock:
    """Real time plus an offset that only `advance` changes (WORKFLOW_CLOCK=manual, for tests)."""

    def __init__(self) -> None:
        self._offset = timedelta()
        self._callbacks: list[Callable[[], None]] = []

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> None:
        """Move time forward; the schedulers look for timers that fell due at once."""
        self._offset += timedelta(seconds=seconds)
        for callback in self._callbacks:
            callback()

    def on_advance(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)


def clock_named(name: str) -> Clock:
    """The clock a WORKFLOW_CLOCK setting names."""
    if name == "system":
        return SystemClock()
    if name == "manual":
        return ManualClock()
    raise ValueError(f"WORKFLOW_CLOCK must be system or manual (tests), not {name!r}")
