"""Bulkhead: a limit on concurrent calls to one target; the excess fails at once instead of queueing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from chassis.errors import ResourceExhausted


class Bulkhead:
    """At most `limit` calls in flight; one more raises ResourceExhausted immediately."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.in_flight = 0
        self.rejected = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the duration of a call."""
        if self.in_flight >= self.limit:
            self.rejected += 1
            raise ResourceExhausted(f"{self.name}: {self.limit} calls already in flight (bulkhead); retry later",
                                    metadata={"target": self.name, "limit": str(self.limit)})
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
