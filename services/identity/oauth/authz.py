"""Envoy's ext_authz (HTTP) check: an API key becomes the caller's principal claims.

Envoy calls `/internal/authz/<original path>` with the original request's headers, only for calls on
protected routes that carried no verified JWT (docs/identity.md). The answer:

- a valid key (`Authorization: ApiKey <key>` or `x-api-key: <key>`): 200 with `x-protomesh-claims`, the
  claims as base64url JSON without padding (the encoding of jwt_authn's forwarded payload), which Envoy
  copies onto the upstream request;
- an unknown, wrong, revoked or expired key: 401 with `WWW-Authenticate: ApiKey realm="protomesh",
  error="invalid_key"`;
- a valid key over its rate: 429 with Retry-After;
- no credential: 401 with `WWW-Authenticate: Bearer realm="protomesh"` and a small JSON body.

The route is never exposed by the gateway (only Envoy's identity_http cluster reaches it); the key is
never logged, only its outcome.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from aiohttp import web

from chassis.identity import encode_claims
from services.identity.oauth.provider import PROVIDER

logger = logging.getLogger(__name__)

CLAIMS_HEADER = "x-protomesh-claims"
NO_CREDENTIAL = {"code": 16, "message": "this call needs a bearer token (Authorization: Bearer ...) or an API key "
                                        "(x-api-key)"}


def presented_key(headers: Any) -> str | None:
    """The API key of a request: `Authorization: ApiKey <key>`, else `x-api-key`."""
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "apikey" and value.strip():
        return str(value.strip())
    key = headers.get("x-api-key", "").strip()
    return str(key) if key else None


async def check(request: web.Request) -> web.Response:
    provider = request.app[PROVIDER]
    key = presented_key(request.headers)
    if key is None:
        return web.json_response(NO_CREDENTIAL, status=401,
                                 headers={"WWW-Authenticate": 'Bearer realm="protomesh"'})
    if provider.api_keys is None:
        raise web.HTTPServiceUnavailable(text="API keys are not served by this replica")
    result = await provider.api_keys(key)
    if result.claims is None:
        logger.info("api key refused", extra={"reason": result.reason})
        return web.json_response({"code": 16, "message": "the API key is not valid"}, status=401,
                                 headers={"WWW-Authenticate": 'ApiKey realm="protomesh", error="invalid_key"'})
    if result.retry_after > 0:
        return web.json_response({"code": 8, "message": "the API key is over its rate limit"}, status=429,
                                 headers={"Retry-After": str(max(1, math.ceil(result.retry_after)))})
    return web.Response(status=200, headers={CLAIMS_HEADER: encode_claims(result.claims)})
