"""The integration service, described for the chassis to run."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import chassis
from chassis.crypto import load_cipher
from chassis.paths import RUN_DIR
from services.integration.clients.base import Shared
from services.integration.connections import IntegrationConnections
from services.integration.deps import IntegrationDeps
from services.integration.servicer import IntegrationServicer
from services.integration.settings import IntegrationSettings
from services.integration.store import IntegrationStore
from services.integration.targets import TargetGuard


@contextlib.asynccontextmanager
async def lifespan(replica: chassis.Replica, settings: IntegrationSettings) -> AsyncIterator[IntegrationDeps]:
    """Load the encryption key, read where integrations may connect, open the shared HTTP pool; close every
    client on shutdown."""
    cipher = load_cipher("integration", default_state_dir=RUN_DIR)
    guard = TargetGuard.from_settings(settings.allowed_targets, replica.settings)
    shared = Shared(targets=guard)  # its HTTP session is opened by the first HTTP-based client
    integrations = IntegrationConnections(replica.caller, cipher, shared,
                                      probe_timeout=settings.probe_timeout_seconds,
                                      max_client_keys=settings.max_client_keys)
    try:
        yield IntegrationDeps(settings, IntegrationStore(replica.db), cipher, integrations)
    finally:
        await integrations.close()
        await shared.close()


def build() -> chassis.Service[IntegrationSettings, IntegrationDeps]:
    """The integration service: external systems behind the mesh's resilience policies."""
    return chassis.Service(
        name="integration",
        description="Registers external systems (HTTP APIs, PostgreSQL, SMTP, object storage, NATS) with encrypted "
                    "credentials, probes them, and calls them through breakers, retries, rate limits and a cache.",
        servicers=[IntegrationServicer],
        settings=IntegrationSettings,
        lifespan=lifespan,
        migrations=Path(__file__).parent / "migrations",
    )
