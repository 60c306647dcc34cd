"""The provider as one object the identity lifespan opens: store, keys, server, sign-in guard, API keys."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from psycopg_pool import ConnectionPool

from chassis.crypto import Cipher
from chassis.replica import Replica
from services.identity.oauth.clients import ClientStore
from services.identity.oauth.config import OAuthConfig
from services.identity.oauth.keys import SigningKeys
from services.identity.oauth.logins import LoginGuard
from services.identity.oauth.server import OAuthServer
from services.identity.oauth.store import OAuthStore

if TYPE_CHECKING:
    from services.identity.apikeys import KeyCheck

logger = logging.getLogger(__name__)

ApiKeyCheck = Callable[[str], Awaitable["KeyCheck"]]
"""Checks an API key and takes from its rate (services.identity.apikeys.ApiKeyVerifier.authenticate)."""


@dataclass
class OAuthProvider:
    """Everything the HTTP endpoints, the ClientService and the SigningKeyService use."""

    config: OAuthConfig
    store: OAuthStore
    keys: SigningKeys
    server: OAuthServer
    logins: LoginGuard
    clients: ClientStore
    api_keys: ApiKeyCheck | None = None


PROVIDER = web.AppKey("provider", OAuthProvider)
"""Where the HTTP application keeps the provider."""


def _quiet_authlib() -> None:
    # Authlib logs whole token responses and clients at DEBUG ("Issue token %r to %r"): with LOG_LEVEL=DEBUG
    # access and refresh tokens would reach the logs. Its messages stop at INFO whatever the replica's level.
    logging.getLogger("authlib").setLevel(max(logging.INFO, logging.getLogger("authlib").level))


def _allow_http_issuer(issuer: str) -> None:
    # Authlib refuses OAuth over plain HTTP unless told otherwise. The local mesh's gateway is
    # http://127.0.0.1:<port>; anything else should be https (TLS at the gateway).
    parts = urllib.parse.urlsplit(issuer)
    if parts.scheme == "http":
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            logger.warning("IDENTITY_ISSUER is plain http on a non-loopback host: use https outside a local mesh",
                           extra={"issuer": issuer})
        os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")


@contextlib.asynccontextmanager
async def open_provider(replica: Replica, config: OAuthConfig, cipher: Cipher,
                        api_keys: ApiKeyCheck | None = None) -> AsyncIterator[OAuthProvider]:
    """Open the synchronous pool Authlib's threads use, make sure a signing key exists, reload keys while open."""
    _allow_http_issuer(config.issuer)
    _quiet_authlib()
    url = replica.settings.database_url
    if not url:
        raise RuntimeError("the identity service needs DATABASE_URL")
    pool = ConnectionPool(url, min_size=1, max_size=4, open=False, name="identity-oauth",
                          kwargs={"options": f"-c search_path={replica.service.name}", "autocommit": True,
                                  "connect_timeout": 3},
                          timeout=replica.settings.db_acquire_timeout_seconds)
    await asyncio.to_thread(pool.open, False)
    keys = SigningKeys(replica.db, cipher, config)
    await keys.ensure()
    store = OAuthStore(pool)
    provider = OAuthProvider(config, store, keys, OAuthServer(store, keys, config), LoginGuard(store, config),
                             ClientStore(replica.db), api_keys)
    tasks = [asyncio.create_task(keys.run_reload(), name="identity-signing-key-reload"),
             asyncio.create_task(_sweep(store, config), name="identity-oauth-sweep")]
    try:
        yield provider
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(pool.close)


SWEEP_INTERVAL = 600.0


async def _sweep(store: OAuthStore, config: OAuthConfig) -> None:
    """Delete what can no longer be used: expired codes, device codes, refresh tokens, failure windows."""
    while True:
        await asyncio.sleep(SWEEP_INTERVAL)
        try:
            await asyncio.to_thread(store.sweep, config.login_failure_window)
        except Exception:
            logger.warning("the OAuth sweep failed; it runs again later", exc_info=True)
