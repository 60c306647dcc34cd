"""The context service's PostgreSQL access: every query it makes, grouped by what it is about.

Every write to a context or its layers first locks the context's row (SELECT ... FOR UPDATE),
checks access, state and version under that lock, and updates the context's counters in the
same transaction. So layer_count, size_bytes and access_count stay exact under concurrent
writers, appended positions never collide, and a stale expected_version is always noticed.
Reads count themselves with one UPDATE of the same row, rolled back if access is denied.
Every write also puts its domain event (services.context.events) in the outbox in the same
transaction, so the relay publishes it after commit, and a write that rolls back publishes nothing.

    store.contexts   contexts and their access lists   (contexts.py)
    store.layers     a context's layers                (layers.py)
    store.analytics  usage counters and summaries      (analytics.py)
    store.cleanup    expiry and pruning, for the job   (cleanup.py)

What they share inside one transaction (the row lock, read and write counting) is transaction.py.
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from services.context.store.analytics import Analytics
from services.context.store.cleanup import Cleanup
from services.context.store.contexts import ContextFilter, Contexts
from services.context.store.layers import Layers

__all__ = ["Analytics", "Cleanup", "ContextFilter", "ContextStore", "Contexts", "Layers"]


class ContextStore:
    """All queries over the context schema, on one pool."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.contexts = Contexts(pool)
        self.layers = Layers(pool)
        self.analytics = Analytics(pool)
        self.cleanup = Cleanup(pool)
