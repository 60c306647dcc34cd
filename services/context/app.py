"""The context service, described for the chassis to run."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import chassis
from services.context.cleanup import run_cleanup
from services.context.deps import ContextDeps
from services.context.servicer import ContextServicer
from services.context.settings import ContextSettings
from services.context.store import ContextStore


@contextlib.asynccontextmanager
async def lifespan(replica: chassis.Replica, settings: ContextSettings) -> AsyncIterator[ContextDeps]:
    """Open the store (the pool is the chassis'; nothing to close here)."""
    yield ContextDeps(settings, ContextStore(replica.db))


async def cleanup(deps: ContextDeps) -> None:
    """Expired contexts and old usage counters, cleaned periodically by every replica."""
    await run_cleanup(deps.store, deps.settings.cleanup_interval_seconds, deps.settings.usage_retention_days)


def build() -> chassis.Service[ContextSettings, ContextDeps]:
    """The context service: layered contexts shared between services."""
    return chassis.Service(
        name="context",
        description="Stores layered contexts that services share, with access lists, versions, expiry and analytics.",
        servicers=[ContextServicer],
        settings=ContextSettings,
        lifespan=lifespan,
        migrations=Path(__file__).parent / "migrations",
        background=[chassis.Loop("context-cleanup", cleanup)],
    )
