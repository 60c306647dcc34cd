"""What the OAuth provider needs from the identity settings, as one small frozen value."""

from __future__ import annotations

from dataclasses import dataclass

AUDIENCE = "protomesh"
"""The `aud` of every access token (the gateway's jwt_authn provider checks it)."""
ALG = "RS256"
"""Every token (access and ID) is RS256: OIDC Discovery requires RS256 among the ID token algorithms, so
clients that only know the default verify ID tokens, and Envoy's jwt_authn verifies RS256 cheaply."""
SCOPES = ("openid", "profile", "email", "offline_access", "mesh")
"""Scopes the provider knows; `mesh` is the scope of calls into the mesh's services."""


@dataclass(frozen=True)
class OAuthConfig:
    """Lifetimes and limits of the provider, in seconds unless named otherwise."""

    issuer: str
    """The gateway's public URL (IDENTITY_ISSUER): `iss` of tokens, base of every endpoint URL."""
    access_token_ttl: int = 300
    refresh_token_ttl: int = 30 * 86400
    id_token_ttl: int = 300
    code_ttl: int = 120
    device_code_ttl: int = 600
    device_poll_interval: int = 5
    key_publish_lead: float = 60.0
    """A `next` key signs only after it has been in the JWKS this long (gateways refetch every 30 s)."""
    key_reload_interval: float = 3.0
    """How often a replica re-reads the signing keys, so every replica signs with the current one."""
    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 50
    login_failure_window: int = 900
    """Failed logins counted per account and per address over this window; more answer 429."""

    @property
    def issuer_base(self) -> str:
        return self.issuer.rstrip("/")

    def url(self, path: str) -> str:
        """An endpoint's public URL under the issuer."""
        return f"{self.issuer_base}{path}"
