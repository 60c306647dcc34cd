"""Access tokens (RFC 9068 JWTs, RS256) with the claims of docs/identity.md, and their verification."""

from __future__ import annotations

import time
import uuid
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from services.identity.oauth.config import ALG, AUDIENCE, OAuthConfig
from services.identity.oauth.keys import SigningKeys
from services.identity.oauth.models import Client, User


class TokenIssuer:
    """Signs access tokens with the current key; an Authlib token generator (register it as "default")."""

    def __init__(self, keys: SigningKeys, config: OAuthConfig) -> None:
        self._keys = keys
        self._config = config

    def claims(self, client: Client, user: User | None, scope: str) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self._config.issuer_base, "aud": AUDIENCE, "client_id": client.client_id,
            "iat": now, "nbf": now, "exp": now + self._config.access_token_ttl, "jti": str(uuid.uuid4()),
            "scope": scope or "",
        }
        if user is None:
            # client_credentials: the client acts for itself, in the organization it was registered for.
            claims.update(sub=f"client:{client.client_id}", kind="service", roles=list(client.roles))
            if client.organization_id:
                claims["org"] = client.organization_id
        else:
            claims.update(sub=user.user_id, kind="user", roles=user.roles)
            if user.organization_id:
                claims["org"] = user.organization_id
            if user.platform_admin:
                claims["admin"] = True
        return claims

    def sign(self, claims: dict[str, Any], typ: str = "at+jwt") -> str:
        key = self._keys.signing_key()
        return str(jwt.encode({"alg": ALG, "typ": typ, "kid": key.kid}, claims, key, algorithms=[ALG]))

    def __call__(self, grant_type: str, client: Client, user: User | None = None, scope: str | None = None,
                 expires_in: int | None = None, include_refresh_token: bool = True) -> dict[str, Any]:
        """The token response body (Authlib's generator signature); the refresh token is added by save_token's
        caller (grants.RefreshTokens) since it needs the family."""
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": self.sign(self.claims(client, user, scope or "")),
            "expires_in": self._config.access_token_ttl,
            "scope": scope or "",
        }
        if include_refresh_token and user is not None:
            from authlib.common.security import generate_token

            token["refresh_token"] = generate_token(48)
        return token

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of an access token this service signed and that is still valid, or None."""
        try:
            decoded = jwt.decode(token, self._keys.published_keys(), algorithms=[ALG])
            if decoded.header.get("typ") != "at+jwt":
                return None
            JWTClaimsRegistry(iss={"essential": True, "value": self._config.issuer_base},
                              aud={"essential": True, "value": AUDIENCE},
                              exp={"essential": True}, sub={"essential": True}).validate(decoded.claims)
        except (JoseError, ValueError):
            return None
        return dict(decoded.claims)
