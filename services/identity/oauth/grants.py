"""Authlib's grants and endpoints, bound to the provider's store: what each RFC leaves to the server.

- authorization code + PKCE (S256 only, required for every client) + OpenID Connect ID tokens;
- client credentials (scopes limited to the client's registration);
- refresh token: rotation on every use, reuse of a rotated token revokes the family, refused at once
  for a disabled user or a family older than the user's sessions_valid_after;
- device code (RFC 8628) with slow_down;
- revocation (RFC 7009) and introspection (RFC 7662) of access and refresh tokens.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError, UnauthorizedClientError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode

from services.identity.oauth.config import ALG
from services.identity.oauth.models import AccessToken, AuthorizationCode, Client, DeviceCredential, RefreshToken, User

if TYPE_CHECKING:
    from services.identity.oauth.server import OAuthServer

CONFIDENTIAL_OR_PUBLIC = ["client_secret_basic", "client_secret_post", "none"]


def _server(grant: Any) -> OAuthServer:
    server: OAuthServer = grant.server
    return server


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    """Codes stored as hashes, single use (claimed at the first exchange; a replay revokes its family)."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_OR_PUBLIC

    def save_authorization_code(self, code: str, request: Any) -> None:
        user: User = request.user
        data = request.payload.data
        server = _server(self)
        server.store.save_code(code, AuthorizationCode(
            client_id=request.client.client_id, user_id=user.user_id, organization_id=user.organization_id,
            redirect_uri=request.payload.redirect_uri, scope=request.scope or "", nonce=data.get("nonce"),
            code_challenge=data["code_challenge"], code_challenge_method=data["code_challenge_method"],
            auth_time=datetime.fromtimestamp(user.auth_time or time.time(), UTC)), server.config.code_ttl)

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        return _server(self).store.claim_code(code, client.client_id)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing to do: query_authorization_code claimed it (marked used) already."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        user = _server(self).store.user(authorization_code.user_id)
        if user is None or not user.active:
            return None
        return user.in_organization(authorization_code.organization_id, authorization_code.get_auth_time())


class S256CodeChallenge(CodeChallenge):
    """PKCE for every client, S256 only (OAuth 2.1): no challenge or `plain` is invalid_request."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("'code_challenge' is required: use PKCE with code_challenge_method=S256")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256 (plain is not allowed)")
        super().validate_code_challenge(grant, redirect_uri)


class OpenIDConnect(OpenIDCode):
    """ID tokens (RS256, the current key) for code grants that asked for the `openid` scope."""

    def __init__(self, server: OAuthServer) -> None:
        super().__init__(require_nonce=False)
        self._srv = server

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return False  # a nonce binds the ID token to the client's session; the client checks it

    def resolve_client_private_key(self, client: Client) -> Any:
        return self._srv.keys.signing_key()

    def get_client_algorithm(self, client: Client) -> str:
        return ALG

    def get_encode_header(self, client: Client) -> dict[str, Any]:
        return {"alg": ALG, "typ": "JWT", "kid": self._srv.keys.signing_key().kid}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        return {"iss": self._srv.config.issuer_base, "aud": client.client_id,
                "exp": int(time.time()) + self._srv.config.id_token_ttl}

    def generate_user_info(self, user: User, scope: str) -> UserInfo:
        return user_info(user, scope)


def user_info(user: User, scope: str) -> UserInfo:
    """The OIDC claims of a user that the scopes allow (sub always; name with profile; email with email)."""
    return UserInfo(sub=user.user_id, name=user.display_name, email=user.email, email_verified=False,
                    ).filter(f"openid {scope}")


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """A confidential client for itself: scopes within its registration (none asked: all of them)."""

    def validate_requested_scope(self) -> None:
        allowed = self.request.client.get_allowed_scope(self.request.payload.scope)
        if allowed is None:
            raise InvalidScopeError()
        self.request.scope = allowed

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Rotation on every use; reuse revokes the family; a disabled user or an invalidated session is refused."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_OR_PUBLIC
    INCLUDE_NEW_REFRESH_TOKEN = True
    _user: User | None = None

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        store = _server(self).store
        token = store.claim_refresh(refresh_token, self.request.client.client_id)
        if token is None:
            return None
        user = store.user(token.user_id)
        stale = user is not None and user.sessions_valid_after is not None \
            and token.family_created_at < user.sessions_valid_after
        if user is None or not user.active or stale:
            store.revoke_family(token.family_id)
            return None
        self._user = user.in_organization(token.organization_id, int(token.auth_time.timestamp()))
        return token

    def authenticate_user(self, refresh_token: RefreshToken) -> User | None:
        return self._user

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        """Nothing to do: authenticate_refresh_token rotated it (marked it used) already."""


class DeviceGrant(DeviceCodeGrant):
    """RFC 8628 polling: pending, slow_down (polled sooner than the interval), denied, or the tokens once."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_OR_PUBLIC
    _credential: DeviceCredential | None = None

    def query_device_credential(self, device_code: str) -> DeviceCredential | None:
        self._credential = _server(self).store.poll_device(device_code)
        return self._credential

    def query_user_grant(self, user_code: str) -> tuple[User | None, bool] | None:
        credential = self._credential
        if credential is None or credential.approved is None:
            return None
        if not credential.approved:
            return None, False
        store = _server(self).store
        user = store.user(credential.user_id) if credential.user_id else None
        if user is None or not user.active:
            return None, False
        if not store.claim_device_approval(user_code):
            return None  # another poll took the tokens a moment ago
        return user.in_organization(credential.organization_id, int(time.time())), True

    def should_slow_down(self, credential: DeviceCredential) -> bool:
        return credential.too_fast


class DeviceAuthorization(DeviceAuthorizationEndpoint):
    """The device authorization endpoint: codes for clients registered for the device grant."""

    def __init__(self, server: OAuthServer) -> None:
        super().__init__(server)
        self.EXPIRES_IN = server.config.device_code_ttl
        self.INTERVAL = server.config.device_poll_interval

    def authenticate_client(self, request: Any) -> Client:
        client: Client = super().authenticate_client(request)
        if not client.check_grant_type(DeviceGrant.GRANT_TYPE):
            raise UnauthorizedClientError("the client is not registered for the device code grant")
        allowed = client.get_allowed_scope(request.payload.scope)
        if allowed is None:
            raise InvalidScopeError()
        request.scope = allowed
        return client

    def get_verification_uri(self) -> str:
        return str(self.server.config.url("/oauth2/device"))

    def save_device_credential(self, client_id: str, scope: str | None, data: dict[str, Any]) -> None:
        server: OAuthServer = self.server
        client = server.query_client(client_id)
        allowed = client.get_allowed_scope(scope) if client else ""
        server.store.save_device(data["device_code"], data["user_code"], client_id, allowed or "",
                                 interval=self.INTERVAL, ttl=self.EXPIRES_IN)


def _find_token(server: OAuthServer, token: str, hint: str | None) -> AccessToken | RefreshToken | None:
    """An access token (a JWT we signed) or a refresh token (by its hash), whatever the hint says."""
    if token.count(".") == 2:
        claims = server.tokens.verify(token)
        if claims is None:
            return None
        return AccessToken(claims, revoked=server.store.access_token_revoked(str(claims.get("jti", ""))))
    return server.store.refresh_token(token)


class Revocation(RevocationEndpoint):
    """RFC 7009: a refresh token revokes its whole family; an access token is listed until it expires."""

    CLIENT_AUTH_METHODS = CONFIDENTIAL_OR_PUBLIC

    def query_token(self, token_string: str, token_type_hint: str | None) -> AccessToken | RefreshToken | None:
        return _find_token(self.server, token_string, token_type_hint)

    def revoke_token(self, token: AccessToken | RefreshToken, request: Any) -> None:
        server: OAuthServer = self.server
        if isinstance(token, AccessToken):
            server.store.revoke_access_token(str(token.claims["jti"]), int(token.claims["exp"]))
        else:
            server.store.revoke_family(token.family_id)


class Introspection(IntrospectionEndpoint):
    """RFC 7662, for confidential clients (resource servers): access tokens of anyone, refresh tokens of
    the asking client only."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> AccessToken | RefreshToken | None:
        return _find_token(self.server, token_string, token_type_hint)

    def check_permission(self, token: AccessToken | RefreshToken, client: Client, request: Any) -> bool:
        return isinstance(token, AccessToken) or token.check_client(client)

    def introspect_token(self, token: AccessToken | RefreshToken) -> dict[str, Any]:
        server: OAuthServer = self.server
        if isinstance(token, AccessToken):
            keep = ("scope", "client_id", "sub", "exp", "iat", "nbf", "jti", "iss", "aud", "org", "roles", "kind",
                    "admin")
            return {"active": True, "token_type": "Bearer", **{k: token.claims[k] for k in keep if k in token.claims}}
        return {"active": True, "token_type": "refresh_token", "scope": token.scope, "client_id": token.client_id,
                "sub": token.user_id, "exp": int(token.expires_at.timestamp()), "iss": server.config.issuer_base}
