"""Which organizations the current call's writes touched: noted by the outbox, read by the cache's fence.

Kept apart from the rest of chassis.caching so that chassis.events.outbox can import it without importing
the cache (and its NATS, metrics and authz imports) into every module that writes an event.
"""

from __future__ import annotations

import contextvars

_touched: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("protomesh_cache_touched", default=None)


def note_event(organization: str) -> None:
    """Called by chassis.events.outbox.add for each event it queues: the cache of `organization` is stale
    once the transaction commits. Outside a fenced call (a task worker, a consumer) nothing is noted: the
    relay's hook invalidates those when it publishes the event."""
    touched = _touched.get()
    if touched is not None:
        touched.add(organization)


def start_noting() -> set[str]:
    """Begin noting the organizations the current call's events belong to; returns the live set."""
    touched: set[str] = set()
    _touched.set(touched)
    return touched
