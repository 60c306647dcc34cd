"""The identity service's own settings (IDENTITY_*), read once at start by chassis.load_settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from chassis import setting


@dataclass(frozen=True)
class IdentitySettings:
    """The issuer, token lifetimes, key rotation lead, the HTTP listener and API-key limits."""

    issuer: str = "http://127.0.0.1:8080"
    """The gateway's public URL: `iss` of every token and base of every OAuth endpoint URL
    (IDENTITY_ISSUER; the supervisor sets http://127.0.0.1:<gateway port>)."""
    bootstrap_file: Path | None = None
    """Where the first replica writes the bootstrap credentials (IDENTITY_BOOTSTRAP_FILE, mode 0600);
    unset: nothing is written."""
    access_token_ttl: timedelta = setting(timedelta(minutes=5), low=10, high=86400)
    """Lifetime of access tokens; also how long a disabled user's last token may still be used
    (IDENTITY_ACCESS_TOKEN_TTL)."""
    refresh_token_ttl: timedelta = setting(timedelta(days=30), low=60, high=365 * 86400)
    """Lifetime of a refresh token family from its first issue (IDENTITY_REFRESH_TOKEN_TTL)."""
    key_publish_lead: timedelta = setting(timedelta(seconds=60), low=0, high=86400)
    """How long a `next` signing key is published before a rotation may make it sign; longer than
    Envoy's JWKS refetch (30 s) so no gateway sees a kid it has not fetched (IDENTITY_KEY_PUBLISH_LEAD)."""
    login_max_failures_per_account: int = setting(5, low=1, high=1000)
    """Failed sign-ins an account may have in 15 minutes before the login pages answer 429 for it
    (IDENTITY_LOGIN_MAX_FAILURES_PER_ACCOUNT)."""
    login_max_failures_per_address: int = setting(50, low=1, high=100000)
    """Failed sign-ins an address may have in 15 minutes before the login pages answer 429 for it
    (IDENTITY_LOGIN_MAX_FAILURES_PER_ADDRESS)."""
    http_host: str = "127.0.0.1"
    """Address of the HTTP listener (OAuth endpoints, ext_authz) (IDENTITY_HTTP_HOST); loopback until mTLS."""
    http_port: int = setting(0, low=0, high=65535)
    """Port of the HTTP listener; 0 picks a free one, registered for the gateway (IDENTITY_HTTP_PORT)."""
    apikey_cache_seconds: float = setting(1.0, low=0.0, high=2.0)
    """How long a verified API key is trusted without reading the database again; bounds how late a
    revocation takes effect at the edge (IDENTITY_APIKEY_CACHE_SECONDS, at most 2 s)."""
    apikey_rate_per_second: float = setting(20.0, low=0.01, high=10000)
    """Calls per second a key may make when it sets no limit of its own (IDENTITY_APIKEY_RATE_PER_SECOND)."""
    apikey_burst: int = setting(40, low=1, high=100000)
    """Calls a key may make in a burst when it sets no limit of its own (IDENTITY_APIKEY_BURST)."""
    apikey_last_used_interval: float = setting(60.0, low=1.0, high=86400)
    """A key's last_used_at is written at most this often, per key and replica, so a busy key does not
    write on every call (IDENTITY_APIKEY_LAST_USED_INTERVAL)."""
    apikey_rotation_overlap: timedelta = setting(timedelta(hours=24), low=0, high=30 * 86400)
    """How long a rotated key stays accepted when the rotation names no overlap (IDENTITY_APIKEY_ROTATION_OVERLAP)."""
    invitation_ttl: timedelta = setting(timedelta(days=7), low=60, high=30 * 86400)
    """How long an invitation may be accepted when the invite names no ttl (IDENTITY_INVITATION_TTL)."""
