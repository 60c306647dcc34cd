"""The integration service, described for the chassis to run."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

import chassis
from chassis.crypto import load_cipher
from chassis.paths import RUN_DIR
from protomesh.integration.v1 import integration_service_pb2, integration_service_pb2_grpc
from services.integration.clients.base import Shared
from services.integration.runtime import IntegrationRuntime
from services.integration.servicer import IntegrationServicer
from services.integration.settings import IntegrationSettings
from services.integration.store import IntegrationStore


@contextlib.asynccontextmanager
async def lifespan(runtime: chassis.Runtime) -> AsyncIterator[None]:
    """Load the encryption key, open the shared HTTP pool; close every client on shutdown."""
    settings = IntegrationSettings.from_env()
    cipher = load_cipher("integration", default_state_dir=RUN_DIR)
    # No cookie jar: one integration's cookies must never reach another's requests.
    http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), raise_for_status=False)
    integrations = IntegrationRuntime(runtime.caller, cipher, Shared(http=http),
                                      probe_timeout=settings.probe_timeout_seconds,
                                      max_client_keys=settings.max_client_keys)
    runtime.state.update(store=IntegrationStore(runtime.db), settings=settings, cipher=cipher,
                         integrations=integrations)
    try:
        yield
    finally:
        await integrations.close()
        await http.close()


def build() -> chassis.Service:
    """The integration service: external systems behind the mesh's resilience policies."""
    return chassis.Service(
        name="integration",
        description="Registers external systems (HTTP APIs, PostgreSQL, SMTP, object storage, NATS) with encrypted "
                    "credentials, probes them, and calls them through breakers, retries, rate limits and a cache.",
        servicers=[
            chassis.Servicer(
                descriptor=integration_service_pb2.DESCRIPTOR.services_by_name["IntegrationService"],
                add_to_server=integration_service_pb2_grpc.add_IntegrationServiceServicer_to_server,
                factory=IntegrationServicer,
            )
        ],
        migrations=Path(__file__).parent / "migrations",
        lifespan=lifespan,
    )
