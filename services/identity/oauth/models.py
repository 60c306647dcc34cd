"""The rows the OAuth provider works with, each implementing the Authlib mixin its grants call."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin, scope_to_list
from authlib.oidc.core import AuthorizationCodeMixin

_HASHER = PasswordHasher()  # argon2id with the library's current parameters

CLIENT_GRANTS = ("authorization_code", "client_credentials", "refresh_token",
                 "urn:ietf:params:oauth:grant-type:device_code")
"""Grant types a client may be registered for (no password grant: OAuth 2.1 removed it)."""


def hash_secret(secret: str) -> str:
    """An argon2id hash of a client secret (the only form it is stored in)."""
    return _HASHER.hash(secret)


def _epoch(moment: datetime | None) -> int:
    return int(moment.timestamp()) if moment else 0


@dataclass(frozen=True)
class Client(ClientMixin):
    """A registered OAuth client."""

    client_id: str
    name: str
    organization_id: str | None
    grant_types: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    roles: tuple[str, ...]
    public: bool
    secret_hash: str | None = field(repr=False)
    created_by: str = ""
    created_at: datetime | None = None
    disabled_at: datetime | None = None

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Never a default: the request names its redirect URI, matched exactly against the registered ones.
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scopes when all are allowed; None (invalid_scope) when any is not. No scope asked
        means every scope the client may have."""
        if not scope:
            return " ".join(self.scopes)
        requested = scope_to_list(scope)
        if not set(requested) <= set(self.scopes):
            return None
        return " ".join(dict.fromkeys(requested))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact string match, as OAuth 2.1 requires

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_hash is None:
            return False
        try:
            return bool(_HASHER.verify(self.secret_hash, client_secret))
        except (VerificationError, InvalidHashError):
            return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass(frozen=True)
class Membership:
    organization_id: str
    organization_name: str
    role: str


@dataclass(frozen=True)
class User:
    """A user as the provider sees them, with the organization this sign-in acts in."""

    user_id: str
    email: str
    display_name: str
    active: bool
    platform_admin: bool
    sessions_valid_after: datetime | None
    memberships: tuple[Membership, ...] = ()
    organization_id: str | None = None
    """The organization of this grant (the `org` claim); None for a user in no organization."""
    auth_time: int = 0

    def get_user_id(self) -> str:
        return self.user_id

    @property
    def roles(self) -> list[str]:
        """The user's roles in the grant's organization."""
        return [m.role for m in self.memberships if m.organization_id == self.organization_id]

    def in_organization(self, organization_id: str | None, auth_time: int | None = None) -> User:
        """This user acting in `organization_id` (kept only if they are a member), signed in at auth_time."""
        member = organization_id is not None and any(m.organization_id == organization_id for m in self.memberships)
        return User(self.user_id, self.email, self.display_name, self.active, self.platform_admin,
                    self.sessions_valid_after, self.memberships, organization_id if member else None,
                    auth_time if auth_time is not None else self.auth_time)

    def choose_organization(self, wanted: str | None) -> str | None:
        """The organization a sign-in acts in: the one asked for (id or name) if a member, else the first
        membership; ValueError when asked for one the user is not a member of."""
        if wanted:
            for m in self.memberships:
                if wanted in (m.organization_id, m.organization_name):
                    return m.organization_id
            raise ValueError("not a member of that organization")
        return self.memberships[0].organization_id if self.memberships else None


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    """A stored authorization code (the code itself is known only by its hash)."""

    client_id: str
    user_id: str
    organization_id: str | None
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    auth_time: datetime

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return _epoch(self.auth_time)

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str] | None:
        return ["pwd"]


@dataclass
class RefreshToken(TokenMixin):
    """A refresh token row: one link of a rotation family."""

    token_hash: bytes = field(repr=False)
    family_id: str
    family_created_at: datetime
    client_id: str
    user_id: str
    organization_id: str | None
    scope: str
    auth_time: datetime
    expires_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None

    def check_client(self, client: Client) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, _epoch(self.expires_at) - int(time.time()))

    def is_expired(self) -> bool:
        return self.expires_at.timestamp() <= time.time()

    def is_revoked(self) -> bool:
        return self.revoked_at is not None or self.rotated_at is not None


@dataclass
class AccessToken(TokenMixin):
    """A verified access token (a JWT this service signed), for revocation and introspection."""

    claims: dict[str, Any]
    revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return bool(self.claims.get("client_id") == client.get_client_id())

    def get_scope(self) -> str:
        return str(self.claims.get("scope", ""))

    def get_expires_in(self) -> int:
        return max(0, int(self.claims.get("exp", 0)) - int(time.time()))

    def is_expired(self) -> bool:
        return int(self.claims.get("exp", 0)) <= time.time()

    def is_revoked(self) -> bool:
        return self.revoked


@dataclass
class DeviceCredential:
    """A device authorization (RFC 8628) as a poll sees it."""

    client_id: str
    user_code: str
    scope: str
    expires_at: datetime
    interval_seconds: int
    too_fast: bool = False
    """This poll came sooner than the interval allows: answer slow_down (the interval grew by 5 s)."""
    user_id: str | None = None
    organization_id: str | None = None
    approved: bool | None = None
    used: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def get_client_id(self) -> str:
        return self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_user_code(self) -> str:
        return self.user_code

    def is_expired(self) -> bool:
        return self.expires_at.timestamp() <= time.time()
