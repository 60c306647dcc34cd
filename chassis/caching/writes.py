"""Which organizations the current call's writes touched: noted by the outbox, read by the cache's fence.

Kept apart from the rest of chassis.caching so that chassis.events.outbox can import it without importing
the cache (and its NATS, metrics and authz imports) into every module that writes an event.
"""

from __future__ import annotations

import contextvars

Noted = set[tuple[str, str]]
"""(event type, organization) of each event a call queued."""

_touched: contextvars.ContextVar[Noted | None] = contextvars.ContextVar("protomesh_cache_touched", default=None)


def note_event(event_type: str, organization: str) -> None:
    """Called by chassis.events.outbox.add for each event it queues: what `organization` reads of the event's
    service is stale once the transaction commits. Outside a fenced call (a task worker, a consumer) nothing
    is noted: the relay's hook invalidates those when it publishes the event."""
    touched = _touched.get()
    if touched is not None:
        touched.add((event_type, organization))


def start_noting() -> Noted:
    """Begin noting the events the current call queues; returns the live set."""
    touched: Noted = set()
    _touched.set(touched)
    return touched
