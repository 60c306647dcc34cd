"""Retries: exponential backoff with full jitter, and a budget so retries cannot multiply load in an outage."""

from __future__ import annotations

import random
import time
from collections import deque

from chassis.resilience.policy import RetrySettings


def full_jitter_backoff(attempt: int, settings: RetrySettings, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `attempt` (1-based): uniform in [0, min(max, initial * 2^(n-1))]."""
    cap = min(settings.max_backoff, settings.initial_backoff * (2 ** (attempt - 1)))
    return (rng or random).uniform(0, cap)


class RetryBudget:
    """Allows retries only while they stay under `ratio` of recent requests (plus a small floor).

    In an outage every first attempt fails; without a budget each caller would send up to
    max_attempts times the load to a struggling target.
    """

    def __init__(self, ratio: float = 0.2, min_retries_per_window: int = 10, window_seconds: float = 10.0) -> None:
        self.ratio = ratio
        self.floor = min_retries_per_window
        self.window = window_seconds
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()

    def _trim(self, now: float) -> None:
        for events in (self._requests, self._retries):
            while events and events[0] < now - self.window:
                events.popleft()

    def record_request(self) -> None:
        """Count a first attempt."""
        now = time.monotonic()
        self._trim(now)
        self._requests.append(now)

    def try_spend(self) -> bool:
        """Take a retry from the budget; False when the budget is used up."""
        now = time.monotonic()
        self._trim(now)
        if len(self._retries) >= max(self.floor, self.ratio * len(self._requests)):
            return False
        self._retries.append(now)
        return True
