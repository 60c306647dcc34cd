"""Envoy's ext_authz (HTTP) check: an API key becomes the caller's principal claims; every refusal is audited.

Envoy calls `/internal/authz/<original path>` with the original request's method and some of its headers,
only for calls on protected routes for which jwt_authn verified no token (docs/identity.md): no token, or
one that failed (jwt_authn's protected requirement is `allow_missing_or_failed`, so a bad token ends here,
not in Envoy, and its refusal is recorded). The answer:

- `Authorization: Bearer <anything>`: the token failed jwt_authn (expired, another issuer or audience, a
  bad signature, `alg: none`, not a JWT...): 401 with `WWW-Authenticate: Bearer realm="protomesh",
  error="invalid_token"` (RFC 6750), whatever else the call carries;
- a valid key (`Authorization: ApiKey <key>` or `x-api-key: <key>`): 200 with `x-protomesh-claims`, the
  claims as base64url JSON without padding (the encoding of jwt_authn's forwarded payload), which Envoy
  copies onto the upstream request;
- an unknown, wrong, revoked or expired key: 401 with `WWW-Authenticate: ApiKey realm="protomesh",
  error="invalid_key"`;
- a valid key over its rate: 429 with Retry-After;
- no credential: 401 with `WWW-Authenticate: Bearer realm="protomesh"` and a small JSON body.

Every refusal is one audit record (chassis.audit.Recorder.record_refusal, through identity's outbox like
the chassis' own records): the principal when known (the key's id and organization for a key over its
rate, a revoked or an expired one), else anonymous; the action is the RPC the path binds to (the gRPC path
of a native gRPC call; `<METHOD> <path>` for a path no contract binds); the source is the last
X-Forwarded-For entry (Envoy appends it: `use_remote_address`); the trace id is the traceparent's. Never
the key or the token: neither is logged nor recorded, only the outcome.

The route is never exposed by the gateway (only Envoy's identity_http cluster reaches it).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import grpc
from aiohttp import web

from chassis.audit import Recorder, rest_binding
from chassis.identity import InvalidClaims, Principal, encode_claims
from services.identity.oauth.provider import PROVIDER

logger = logging.getLogger(__name__)

CLAIMS_HEADER = "x-protomesh-claims"
AUTHZ_PREFIX = "/internal/authz"
RECORDER: web.AppKey[Recorder] = web.AppKey("audit_recorder", Recorder)
"""The replica's audit recorder for the check's refusals (set by services.identity.oauth.wiring)."""
NO_CREDENTIAL = {"code": 16, "message": "this call needs a bearer token (Authorization: Bearer ...) or an API key "
                                        "(x-api-key)"}
INVALID_TOKEN = {"code": 16, "message": "the bearer token is not valid: expired or not yet valid, not signed by "
                                        "this mesh's current keys, or for another issuer or audience"}
BEARER_CHALLENGE = 'Bearer realm="protomesh"'
BAD_BEARER_CHALLENGE = 'Bearer realm="protomesh", error="invalid_token"'
MAX_ACTION_CHARS = 256
_AUDITED_HEADERS = ("x-forwarded-for", "traceparent")
"""The only headers of the check that reach the audit record (never Authorization or x-api-key)."""


def presented_key(headers: Any) -> str | None:
    """The API key of a request: `Authorization: ApiKey <key>`, else `x-api-key`."""
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "apikey" and value.strip():
        return str(value.strip())
    key = headers.get("x-api-key", "").strip()
    return str(key) if key else None


def presents_bearer(headers: Any) -> bool:
    """Whether the request carries `Authorization: Bearer ...`: here it is a token jwt_authn did not verify."""
    scheme, _, _ = headers.get("Authorization", "").strip().partition(" ")
    return scheme.lower() == "bearer"


def original_call(request: web.Request) -> tuple[str, str]:
    """(action, resource) of the call Envoy asks about: the RPC its path binds to and the id in the path."""
    path = request.rel_url.raw_path[len(AUTHZ_PREFIX):] or "/"
    if request.headers.get("content-type", "").startswith("application/grpc"):
        return path[:MAX_ACTION_CHARS], ""  # a native gRPC call's path is the RPC (no body is read: no resource)
    bound = rest_binding(request.method, path)
    return bound if bound else (f"{request.method} {path}"[:MAX_ACTION_CHARS], "")


async def _refused(request: web.Request, code: grpc.StatusCode, principal: Principal | None) -> None:
    """Record the refusal (the answer does not wait on PostgreSQL being up: the recorder keeps and retries)."""
    recorder = request.app.get(RECORDER)
    if recorder is None:
        return
    action, resource = original_call(request)
    metadata: Mapping[str, str] = {name: request.headers[name] for name in _AUDITED_HEADERS if name in request.headers}
    await recorder.record_refusal(action, code, principal, metadata, resource=resource, peer=request.remote or "")


def _principal(claims: Mapping[str, Any] | None) -> Principal | None:
    if not claims:
        return None
    try:
        return Principal.from_claims(claims)
    except InvalidClaims:
        return None


async def check(request: web.Request) -> web.Response:
    provider = request.app[PROVIDER]
    if presents_bearer(request.headers):
        # jwt_authn would have verified a good token (and ext_authz would not run): this one is bad. Its
        # claims are not read, unverified they name no one.
        await _refused(request, grpc.StatusCode.UNAUTHENTICATED, None)
        return web.json_response(INVALID_TOKEN, status=401, headers={"WWW-Authenticate": BAD_BEARER_CHALLENGE})
    key = presented_key(request.headers)
    if key is None:
        await _refused(request, grpc.StatusCode.UNAUTHENTICATED, None)
        return web.json_response(NO_CREDENTIAL, status=401, headers={"WWW-Authenticate": BEARER_CHALLENGE})
    if provider.api_keys is None:
        raise web.HTTPServiceUnavailable(text="API keys are not served by this replica")
    result = await provider.api_keys(key)
    if result.claims is None:
        logger.info("api key refused", extra={"reason": result.reason})
        await _refused(request, grpc.StatusCode.UNAUTHENTICATED, _principal(result.refused))
        return web.json_response({"code": 16, "message": "the API key is not valid"}, status=401,
                                 headers={"WWW-Authenticate": 'ApiKey realm="protomesh", error="invalid_key"'})
    if result.retry_after > 0:
        await _refused(request, grpc.StatusCode.RESOURCE_EXHAUSTED, _principal(result.claims))
        return web.json_response({"code": 8, "message": "the API key is over its rate limit"}, status=429,
                                 headers={"Retry-After": str(max(1, math.ceil(result.retry_after)))})
    return web.Response(status=200, headers={CLAIMS_HEADER: encode_claims(result.claims)})
