"""A TTL cache of idempotent reads, per integration, with real counters.

Entries are fresh for `ttl` seconds; after that they are no longer hits, but they are kept for
`stale_for` more seconds so that an open circuit breaker can still be answered with the last
known value (a fallback). The least recently used entry goes when the cache is full.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


def cache_key(operation: str, params: dict[str, Any]) -> str:
    """The same operation with the same parameters (in any key order) has the same key."""
    canonical = json.dumps([operation, params], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class _Entry:
    value: dict[str, Any]
    size: int
    fresh_until: float
    keep_until: float


class TtlCache:
    """LRU + TTL with hit/miss/eviction/expiration/stale counters."""

    def __init__(self, ttl: float, max_entries: int, stale_for: float) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.stale_for = stale_for
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.expirations = 0
        self.stale_served = 0

    def _purge(self, now: float) -> None:
        for key in [k for k, e in self._entries.items() if e.keep_until <= now]:
            del self._entries[key]
            self.expirations += 1

    def lookup(self, key: str, now: float | None = None) -> dict[str, Any] | None:
        """A fresh value (a hit), or None (a miss)."""
        now = time.monotonic() if now is None else now
        entry = self._entries.get(key)
        if entry is not None and entry.fresh_until > now:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry.value
        self.misses += 1
        return None

    def has_stale(self, key: str, now: float | None = None) -> bool:
        """Whether a value, fresh or not, is still kept for a fallback."""
        now = time.monotonic() if now is None else now
        entry = self._entries.get(key)
        return entry is not None and entry.keep_until > now

    def stale(self, key: str, now: float | None = None) -> dict[str, Any] | None:
        """The kept value, served as a fallback (counted), or None."""
        now = time.monotonic() if now is None else now
        entry = self._entries.get(key)
        if entry is None or entry.keep_until <= now:
            return None
        self.stale_served += 1
        return entry.value

    def put(self, key: str, value: dict[str, Any], now: float | None = None) -> None:
        """Store a value; evict the least recently used entries beyond max_entries."""
        now = time.monotonic() if now is None else now
        size = len(json.dumps(value, separators=(",", ":"), default=str))
        self._entries[key] = _Entry(value, size, now + self.ttl, now + self.ttl + self.stale_for)
        self._entries.move_to_end(key)
        self._purge(now)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self.evictions += 1

    def clear(self) -> int:
        """Drop every entry; the number dropped."""
        count = len(self._entries)
        self._entries.clear()
        return count

    def stats(self, now: float | None = None) -> dict[str, Any]:
        """Counters and occupancy."""
        self._purge(time.monotonic() if now is None else now)
        lookups = self.hits + self.misses
        return {"entries": len(self._entries), "size_bytes": sum(e.size for e in self._entries.values()),
                "hits": self.hits, "misses": self.misses, "evictions": self.evictions,
                "expirations": self.expirations, "stale_served": self.stale_served,
                "hit_ratio": self.hits / lookups if lookups else 0.0}
