"""The context service, described for the chassis to run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import chassis
from protomesh.context.v1 import context_service_pb2, context_service_pb2_grpc
from services.context.cleanup import run_cleanup
from services.context.servicer import ContextServicer
from services.context.settings import ContextSettings
from services.context.store import ContextStore


@contextlib.asynccontextmanager
async def lifespan(runtime: chassis.Runtime) -> AsyncIterator[None]:
    """Open the store and start the periodic cleanup job; stop the job on shutdown."""
    settings = ContextSettings.from_env()
    store = ContextStore(runtime.db)
    runtime.state.update(store=store, settings=settings)
    cleanup = asyncio.create_task(
        run_cleanup(store, settings.cleanup_interval_seconds, settings.usage_retention_days), name="context-cleanup"
    )
    try:
        yield
    finally:
        cleanup.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cleanup


def build() -> chassis.Service:
    """The context service: layered contexts shared between services."""
    return chassis.Service(
        name="context",
        description="Stores layered contexts that services share, with access lists, versions, expiry and analytics.",
        servicers=[
            chassis.Servicer(
                descriptor=context_service_pb2.DESCRIPTOR.services_by_name["ContextService"],
                add_to_server=context_service_pb2_grpc.add_ContextServiceServicer_to_server,
                factory=ContextServicer,
            )
        ],
        migrations=Path(__file__).parent / "migrations",
        lifespan=lifespan,
    )
