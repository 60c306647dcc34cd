"""How the identity service's app.py plugs the OAuth provider in: three names.

    async with open_oauth(replica, settings, verifier) as oauth:   # in the lifespan
        yield IdentityDeps(..., oauth=oauth)
    chassis.Service(..., servicers=[..., *OAUTH_SERVICERS], http=http_app)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

from chassis.audit import Recorder
from chassis.crypto import load_cipher
from chassis.paths import RUN_DIR
from chassis.replica import Replica
from services.identity.bootstrap import bootstrap
from services.identity.clients_servicer import ClientServicer, HasOAuth
from services.identity.keys_servicer import SigningKeyServicer
from services.identity.oauth import authz
from services.identity.oauth.config import OAuthConfig
from services.identity.oauth.http import build_app
from services.identity.oauth.provider import OAuthProvider, open_provider
from services.identity.settings import IdentitySettings
from services.identity.store import OrganizationStore, UserStore

if TYPE_CHECKING:
    from services.identity.apikeys import ApiKeyVerifier

OAUTH_SERVICERS: list[type] = [ClientServicer, SigningKeyServicer]


def oauth_config(settings: IdentitySettings) -> OAuthConfig:
    """The provider's view of the IDENTITY_* settings."""
    return OAuthConfig(
        issuer=settings.issuer,
        access_token_ttl=int(settings.access_token_ttl.total_seconds()),
        refresh_token_ttl=int(settings.refresh_token_ttl.total_seconds()),
        key_publish_lead=settings.key_publish_lead.total_seconds(),
        login_max_failures_per_account=settings.login_max_failures_per_account,
        login_max_failures_per_address=settings.login_max_failures_per_address,
    )


@contextlib.asynccontextmanager
async def open_oauth(replica: Replica, settings: IdentitySettings,
                     verifier: ApiKeyVerifier | None) -> AsyncIterator[OAuthProvider]:
    """Open the provider (signing keys, the pool Authlib's threads use) and bootstrap a new mesh."""
    # Private signing keys are sealed with the identity service's key, found as every service's is.
    cipher = load_cipher("identity", default_state_dir=RUN_DIR)
    async with open_provider(replica, oauth_config(settings), cipher,
                             api_keys=verifier.authenticate if verifier else None) as oauth:
        await bootstrap(replica.db, UserStore(replica.db), OrganizationStore(replica.db), oauth.clients, oauth.config,
                        settings.bootstrap_file)
        yield oauth


def http_app(replica: Replica, deps: HasOAuth) -> web.Application:
    """The replica's HTTP listener: OAuth / OIDC endpoints and the ext_authz check.

    The check's refusals (calls no replica's interceptor sees) go to the audit trail through the same
    recorder and outbox as the chassis' records (chassis.audit), as this replica's."""
    app = build_app(deps.oauth)
    recorder = Recorder(replica.service.name, replica.settings.instance_id, lambda: replica.pool)
    app[authz.RECORDER] = recorder

    async def close_recorder(_: web.Application) -> None:
        await recorder.close()

    app.on_cleanup.append(close_recorder)
    return app
