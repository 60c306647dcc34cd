"""What the identity service's lifespan opens and its servicers (and the OAuth provider) use."""

from __future__ import annotations

from dataclasses import dataclass

from services.identity.apikeys import ApiKeyVerifier
from services.identity.oauth.provider import OAuthProvider
from services.identity.settings import IdentitySettings
from services.identity.store import ApiKeyStore, OrganizationStore, UserStore


@dataclass(frozen=True)
class IdentityDeps:
    """The identity replica's dependencies, typed: no string-keyed state."""

    settings: IdentitySettings
    users: UserStore
    organizations: OrganizationStore
    api_keys: ApiKeyStore
    pepper: bytes
    """The API-key HMAC pepper (never logged)."""
    verifier: ApiKeyVerifier
    """Checks presented API keys (the ext_authz handler calls verifier.authenticate)."""
    oauth: OAuthProvider
    """The OAuth 2.1 / OIDC provider: its store, signing keys, Authlib server (services.identity.oauth)."""

    def __repr__(self) -> str:  # the pepper must never reach a log line through a repr
        return "IdentityDeps(...)"
