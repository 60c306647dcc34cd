"""The answers one replica keeps: a bounded LRU of serialized responses, each tagged with the generation of
its scope it was computed under (chassis.caching.generations) and an expiry."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

MAX_ENTRIES = 10_000
MAX_BYTES = 64 * 1024 * 1024
"""Bounds of one replica's cache; the least recently used answers go first."""


@dataclass(frozen=True)
class Entry:
    """One kept answer."""

    response: Any
    """The response message, given again as is (nothing downstream of the servicer mutates it)."""
    etag: str
    """The strong ETag of its serialized bytes, quoted (`"3f2a…"`)."""
    generation: str
    """The scope's generation when the answer was computed; a different current one makes it stale."""
    expires: float
    """time.monotonic() after which it is not given again."""
    size: int
    """Serialized bytes, for the size bound and the size metric."""


class LocalCache:
    """Key -> Entry, least recently used first out; not thread-safe (one event loop serves a replica)."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self._entries: OrderedDict[tuple[Any, ...], Entry] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[Any, ...], now: float | None = None) -> Entry | None:
        """The live entry for `key`, None if absent or expired (an expired one is dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= (time.monotonic() if now is None else now):
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple[Any, ...], entry: Entry) -> None:
        """Keep `entry`, evicting the least recently used ones beyond the bounds; one larger than all of
        the byte bound is not kept."""
        if entry.size > self._max_bytes:
            return
        self._drop(key)
        self._entries[key] = entry
        self.bytes += entry.size
        while len(self._entries) > self._max_entries or self.bytes > self._max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    def discard(self, key: tuple[Any, ...]) -> None:
        """Forget `key` (a stale entry found on a lookup)."""
        self._drop(key)

    def clear(self) -> None:
        """Forget everything (the generations could not be bumped: nothing kept can be trusted)."""
        self._entries.clear()
        self.bytes = 0

    def _drop(self, key: tuple[Any, ...]) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size
