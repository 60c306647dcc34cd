"""The identity service, described for the chassis to run."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import chassis
from chassis import events
from chassis.paths import RUN_DIR
from services.identity.api_key_servicer import ApiKeyServicer
from services.identity.apikeys import ApiKeyVerifier, load_pepper
from services.identity.audit import AuditServicer, audit_consumer
from services.identity.deps import IdentityDeps
from services.identity.oauth.wiring import OAUTH_SERVICERS, http_app, open_oauth
from services.identity.organization_servicer import OrganizationServicer
from services.identity.settings import IdentitySettings
from services.identity.store import ApiKeyStore, OrganizationStore, UserStore
from services.identity.user_servicer import UserServicer


@contextlib.asynccontextmanager
async def lifespan(replica: chassis.Replica, settings: IdentitySettings) -> AsyncIterator[IdentityDeps]:
    """Load the API-key pepper, open the stores and the OAuth provider (which bootstraps a new mesh);
    wait for pending last-used writes on shutdown."""
    pepper = load_pepper(default_state_dir=RUN_DIR)
    verifier = ApiKeyVerifier(
        replica.db, pepper, cache_seconds=settings.apikey_cache_seconds,
        default_rate=settings.apikey_rate_per_second, default_burst=settings.apikey_burst,
        last_used_interval=settings.apikey_last_used_interval,
    )
    try:
        async with open_oauth(replica, settings, verifier) as oauth:
            yield IdentityDeps(settings, UserStore(replica.db), OrganizationStore(replica.db),
                               ApiKeyStore(replica.db), pepper, verifier, oauth)
    finally:
        await verifier.close()


def handlers(replica: chassis.Replica, deps: IdentityDeps) -> events.EventHandlers:
    """The audit trail's consumer: every service's AuditRecorded events into identity.audit_records."""
    return events.EventHandlers(consumers=[audit_consumer()])


def build() -> chassis.Service[IdentitySettings, IdentityDeps]:
    """The identity service: users, organizations, API keys (and the OAuth 2.1 / OIDC provider)."""
    return chassis.Service(
        name="identity",
        description="Users, organizations, API keys and the OAuth 2.1 / OpenID Connect provider of the mesh.",
        # ClientService and SigningKeyService come with the OAuth provider (services/identity/oauth/);
        # OidcService is served by the replica's HTTP listener, never as a gRPC servicer.
        servicers=[UserServicer, OrganizationServicer, ApiKeyServicer, AuditServicer, *OAUTH_SERVICERS],
        settings=IdentitySettings,
        lifespan=lifespan,
        migrations=Path(__file__).parent / "migrations",
        http=http_app,
        handlers=handlers,
    )
