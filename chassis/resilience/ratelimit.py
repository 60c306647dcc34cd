"""Token-bucket rate limiting, per integration and per client key."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """`rate` tokens per second, holding at most `burst`; a call takes one token or is refused."""

    rate: float
    burst: float
    tokens: float = -1.0
    updated: float = field(default_factory=time.monotonic)
    admitted: int = 0
    rejected: int = 0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.burst

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def try_take(self, now: float | None = None) -> bool:
        """Take a token if one is there."""
        self._refill(time.monotonic() if now is None else now)
        if self.tokens >= 1:
            self.tokens -= 1
            self.admitted += 1
            return True
        self.rejected += 1
        return False

    def retry_after(self) -> float:
        """Seconds until the next token."""
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def snapshot(self) -> dict[str, float]:
        """Current state, for status endpoints."""
        self._refill(time.monotonic())
        return {"rate": self.rate, "burst": self.burst, "available": round(self.tokens, 3),
                "admitted": self.admitted, "rejected": self.rejected}


class KeyedRateLimiter:
    """One bucket per key (an integration, or a client key within it)."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}

    def bucket(self, key: str) -> TokenBucket:
        """The bucket of a key, created full."""
        if key not in self._buckets:
            self._buckets[key] = TokenBucket(self.rate, self.burst)
        return self._buckets[key]

    def try_take(self, key: str) -> bool:
        """Take a token from the key's bucket."""
        return self.bucket(key).try_take()
