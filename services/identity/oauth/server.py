"""Authlib's AuthorizationServer for aiohttp, as authlib.integrations.flask_oauth2 is for Flask.

aiohttp reads request bodies asynchronously and Authlib is synchronous, so a handler first reads the
request into a `FormRequest` (method, public URL, headers, query and form), then runs the server in a
worker thread on it; the server's answer is an `OAuthResponse` the handler turns into a web.Response.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import JsonRequest, OAuth2Payload, OAuth2Request
from multidict import CIMultiDictProxy, MultiDict, MultiDictProxy

from services.identity.oauth.config import OAuthConfig
from services.identity.oauth.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    DeviceAuthorization,
    DeviceGrant,
    Introspection,
    OpenIDConnect,
    RefreshTokenGrant,
    Revocation,
    S256CodeChallenge,
)
from services.identity.oauth.keys import SigningKeys
from services.identity.oauth.models import Client
from services.identity.oauth.store import OAuthStore
from services.identity.oauth.tokens import TokenIssuer


@dataclass(frozen=True)
class FormRequest:
    """An HTTP request read in full, for Authlib to work on in a worker thread."""

    method: str
    url: str
    """The public URL (under the issuer), which is what Authlib checks the transport of."""
    headers: CIMultiDictProxy[str]
    query: MultiDictProxy[str]
    form: MultiDictProxy[str] = field(default_factory=lambda: MultiDictProxy(MultiDict()))

    def values(self) -> MultiDict[str]:
        """Query and form together (the form's values first), as Flask's request.values."""
        merged: MultiDict[str] = MultiDict(self.form)
        merged.extend(self.query)
        return merged


class _Payload(OAuth2Payload):
    def __init__(self, request: FormRequest) -> None:
        self._values = request.values()

    @property
    def data(self) -> dict[str, str]:
        data: dict[str, str] = {}
        for key, value in self._values.items():
            data.setdefault(key, value)
        return data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        values: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in self._values.items():
            values[key].append(value)
        return values


class AiohttpOAuth2Request(OAuth2Request):
    def __init__(self, request: FormRequest) -> None:
        super().__init__(method=request.method, uri=request.url, headers=request.headers)
        self._request = request
        self.payload = _Payload(request)

    @property
    def args(self) -> MultiDictProxy[str]:
        return self._request.query

    @property
    def form(self) -> MultiDictProxy[str]:
        return self._request.form


@dataclass(frozen=True)
class OAuthResponse:
    """What the server answers: status, body (JSON object or text) and headers."""

    status: int
    body: Any
    headers: list[tuple[str, str]]

    def text(self) -> str:
        return json.dumps(self.body) if isinstance(self.body, dict) else str(self.body or "")

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class OAuthServer(AuthorizationServer):
    """The identity service's authorization server: its grants, endpoints, store, keys and token issuer."""

    def __init__(self, store: OAuthStore, keys: SigningKeys, config: OAuthConfig) -> None:
        # No server-wide scope list: each client's registration says which scopes it may have.
        super().__init__(scopes_supported=None)
        self.store = store
        self.keys = keys
        self.config = config
        self.tokens = TokenIssuer(keys, config)
        self.register_token_generator("default", self.tokens)
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True), OpenIDConnect(self)])
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(RefreshTokenGrant)
        self.register_grant(DeviceGrant)
        self.register_endpoint(DeviceAuthorization(self))
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    def query_client(self, client_id: str) -> Client | None:
        return self.store.client(client_id)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Store the refresh token (if any) in its family: the old token's, or a new one for a new grant."""
        refresh = token.get("refresh_token")
        if not refresh or request.user is None:
            return
        previous = request.refresh_token
        family = self.store.save_refresh(
            refresh, family_id=previous.family_id if previous else None,
            family_created_at=previous.family_created_at if previous else None,
            client_id=request.client.client_id, user=request.user, scope=token.get("scope", ""),
            ttl=self.config.refresh_token_ttl)
        if request.authorization_code is not None:
            self.store.link_code_family(request.payload.data["code"], family)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return AiohttpOAuth2Request(request)

    def create_json_request(self, request: Any) -> JsonRequest:
        raise NotImplementedError("no JSON endpoints (dynamic client registration is not offered)")

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> OAuthResponse:
        return OAuthResponse(status, body, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal receivers: logging of grants is done by the HTTP layer, without any secret."""
