"""Who may pass the gateway: Envoy's token and API-key filters, and which routes are public (docs/identity.md).

The HTTP filters, in order: `header_mutation` removes any `x-protomesh-claims` a client sent (only
Envoy sets it) → `jwt_authn` verifies `Authorization: Bearer` against the identity service's JWKS
(fetched over the `identity_http` cluster, cached and refetched, so a key rotation needs no restart)
and forwards the verified payload as `x-protomesh-claims`; a missing or bad token passes on →
`ext_authz` asks the identity service (`/internal/authz`) about requests no token was verified for: an
API key becomes `x-protomesh-claims`; a bad token is 401 with `error="invalid_token"`, no credential
401, a bad key 401, a key over its rate 429 with Retry-After, and each of these refusals is recorded
in the audit trail by the identity service (a refusal Envoy answered itself would be in no record).
A valid token never reaches ext_authz: the happy path costs no extra call.

Which routes are public is read from the contracts (chassis.tooling.catalog: the `access` option,
`http_served` services) plus the gateway's own documents; nothing here names a route by hand.
These filters run before the transcoder, so for a REST call they see the route matched on the REST
path the client sent (envoy_config gives every REST binding a route of its own for that), and for a
native gRPC call the route on the gRPC path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chassis.identity import CLAIMS_HEADER
from chassis.tooling.catalog import Catalog, HttpRule, http_cluster

IDENTITY_DEPLOYABLE = "identity"
"""The deployable that issues tokens, serves the JWKS and answers ext_authz checks."""
AUDIENCE = "protomesh"
PROVIDER = "protomesh"
JWKS_PATH = "/oauth2/jwks"
AUTHZ_PATH = "/internal/authz"
"""ext_authz's path prefix on the identity replicas; never routed by the gateway (see http_served_routes)."""
PAYLOAD_METADATA = "jwt_payload"
"""jwt_authn's dynamic metadata key for a verified payload: its absence turns ext_authz on."""
COMPOSE_HTTP_PORT = 8081
"""The identity replicas' HTTP listener port in compose / Kubernetes (IDENTITY_HTTP_PORT there)."""

HEADER_MUTATION = "envoy.filters.http.header_mutation"
JWT_AUTHN = "envoy.filters.http.jwt_authn"
EXT_AUTHZ = "envoy.filters.http.ext_authz"
PUBLIC_REQUIREMENT = "public"
PROTECTED_REQUIREMENT = "protected"


def _any(type_name: str, **fields: Any) -> dict[str, Any]:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


@dataclass(frozen=True)
class GatewayAuth:
    """How the gateway verifies callers."""

    issuer: str
    """The `iss` tokens must carry: the gateway's public URL (`http://127.0.0.1:<port>` on one machine)."""
    audience: str = AUDIENCE
    jwks_cache_seconds: float = 30.0
    """How long a fetched JWKS is used before it is fetched again (the identity service publishes a
    new key at least IDENTITY_KEY_PUBLISH_LEAD before it signs with it)."""
    clock_skew_seconds: int = 30
    """Leeway on exp / nbf for clocks that differ between the identity replica and the gateway."""
    authz_timeout_seconds: float = 1.0
    """How long an API-key check may take; a slower identity service fails the call (no fail-open)."""

    @property
    def cluster(self) -> str:
        """The cluster of the identity replicas' HTTP listeners (JWKS and ext_authz)."""
        return http_cluster(IDENTITY_DEPLOYABLE)


def http_deployables(catalog: Catalog) -> list[str]:
    """Deployables whose replicas' HTTP listeners the gateway reaches: HTTP-served routes, and identity's JWKS/authz."""
    names = {served.deployable for served in catalog.http_served}
    if IDENTITY_DEPLOYABLE in catalog.names:
        names.add(IDENTITY_DEPLOYABLE)
    return sorted(names)


def compose_issuer() -> str:
    """The issuer for compose / Kubernetes: PROTOMESH_ISSUER, else the address compose publishes the gateway on."""
    return os.environ.get("PROTOMESH_ISSUER", "").strip() or "http://127.0.0.1:8080"


def _duration(seconds: float) -> str:
    return f"{seconds:.3f}s"


def auth_filters(auth: GatewayAuth) -> list[dict[str, Any]]:
    """The three filters, in the order they must run (before body limits and the transcoder)."""
    return [
        {"name": HEADER_MUTATION, "typed_config": _any(
            "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            mutations={"request_mutations": [{"remove": CLAIMS_HEADER}]})},
        {"name": JWT_AUTHN, "typed_config": _jwt_authn(auth)},
        {"name": EXT_AUTHZ, "typed_config": _ext_authz(auth)},
    ]


def _jwt_authn(auth: GatewayAuth) -> dict[str, Any]:
    provider = {
        "issuer": auth.issuer,
        "audiences": [auth.audience],
        "remote_jwks": {
            "http_uri": {"uri": f"http://{IDENTITY_DEPLOYABLE}{JWKS_PATH}", "cluster": auth.cluster, "timeout": "2s"},
            "cache_duration": _duration(auth.jwks_cache_seconds),
            # Fetched in the background: Envoy starts (and serves public routes) before the identity
            # service is up, and a failed fetch is retried after a second rather than on the next call.
            "async_fetch": {"fast_listener": True, "failed_refetch_duration": "1s"},
            "retry_policy": {"num_retries": 2},
        },
        "from_headers": [{"name": "Authorization", "value_prefix": "Bearer "}],
        # The token stays on the request (the OIDC userinfo endpoint reads it itself).
        "forward": True,
        "forward_payload_header": CLAIMS_HEADER,
        "payload_in_metadata": PAYLOAD_METADATA,
        "clock_skew_seconds": auth.clock_skew_seconds,
        # Envoy accepts a token without `exp` unless told otherwise: every token the identity service
        # signs has one, so one without it was not made by it as issued (a forged or replayed-forever token).
        "require_expiration": True,
    }
    verified = {"provider_name": PROVIDER}
    return _any(
        "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        providers={PROVIDER: provider},
        requirement_map={
            # A valid token is verified and forwarded (ext_authz is then off); without one, or with one that
            # failed, ext_authz decides: the identity service answers a bad token's 401 itself so that the
            # refusal is audited (jwt_authn's own 401 reached no one who records).
            PROTECTED_REQUIREMENT: {"requires_any": {"requirements": [verified, {"allow_missing_or_failed": {}}]}},
            # Public routes: a valid token is still forwarded; a missing or bad one is no reason to refuse.
            PUBLIC_REQUIREMENT: {"requires_any": {"requirements": [verified, {"allow_missing_or_failed": {}}]}},
        },
        # Every route without a per-route setting (public ones have one) is protected.
        rules=[{"match": {"prefix": "/"}, "requirement_name": PROTECTED_REQUIREMENT}],
    )


def _ext_authz(auth: GatewayAuth) -> dict[str, Any]:
    return _any(
        "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
        transport_api_version="V3",
        http_service={
            "server_uri": {"uri": f"http://{IDENTITY_DEPLOYABLE}", "cluster": auth.cluster,
                           "timeout": _duration(auth.authz_timeout_seconds)},
            "path_prefix": AUTHZ_PATH,
            "authorization_response": {
                "allowed_upstream_headers": {"patterns": [{"exact": CLAIMS_HEADER}]},
                "allowed_client_headers": {"patterns": [{"exact": "www-authenticate"}, {"exact": "retry-after"},
                                                        {"prefix": "ratelimit"}]},
                # The verified key's claims, as the gateway's rate limits key a caller (gateway_ratelimit).
                "dynamic_metadata_from_headers": {"patterns": [{"exact": CLAIMS_HEADER}]},
            },
        },
        # The key travels to the identity service in one of these (Authorization is sent anyway); the
        # others are for the audit record of a refusal: the caller's address (the X-Forwarded-For entry
        # Envoy appended), the trace, and content-type to tell a native gRPC call from a REST one.
        allowed_headers={"patterns": [{"exact": "authorization"}, {"exact": "x-api-key"},
                                      {"exact": "x-forwarded-for"}, {"exact": "traceparent"},
                                      {"exact": "content-type"}]},
        # The identity service unreachable: the call fails (503), it is never let through unchecked.
        failure_mode_allow=False,
        status_on_error={"code": "ServiceUnavailable"},
        # Only when jwt_authn verified no token (it leaves the payload in metadata when it did).
        filter_enabled_metadata={
            "filter": JWT_AUTHN,
            "path": [{"key": PAYLOAD_METADATA}],
            "value": {"present_match": True},
            "invert": True,
        },
    )


def public_route_configs() -> dict[str, Any]:
    """typed_per_filter_config of a public route: a token is optional, ext_authz is off."""
    return {
        JWT_AUTHN: _any("envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig",
                        requirement_name=PUBLIC_REQUIREMENT),
        EXT_AUTHZ: _any("envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute", disabled=True),
    }


# -- public routes, from the contracts --------------------------------------------------------------


STANDARD_PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
"""gRPC paths of the standard RPCs every replica serves (chassis.interceptors treats them alike)."""


def http_served_paths(rule: HttpRule) -> tuple[str, str]:
    """How an HTTP-served google.api.http path is matched: ("path", exact) or ("prefix", up to its first variable)."""
    if "{" in rule.path:
        return "prefix", rule.path[:rule.path.index("{")]
    return "path", rule.path


def is_internal(path: str) -> bool:
    """Paths the gateway never routes (the identity service's ext_authz endpoint)."""
    return path == AUTHZ_PATH or path.startswith(AUTHZ_PATH + "/")


@dataclass(frozen=True, order=True)
class PublicRoute:
    """One route the gateway lets through without a credential."""

    kind: str
    """`grpc` (a gRPC path or prefix), `rest` (a transcoded REST binding), `http` (an HTTP-served path),
    `document` (an API document Envoy answers itself)."""
    match: str
    """What it matches, e.g. ``/protomesh.x.v1.S/M``, ``GET /v1/x/{id}``, ``/oauth2/token``."""


def public_routes(catalog: Catalog, documents: Sequence[str] = ()) -> list[PublicRoute]:
    """Every public route, from the contracts (and the document paths): what the gateway must let through."""
    routes = {PublicRoute("grpc", prefix) for prefix in STANDARD_PUBLIC_PREFIXES}
    for method in catalog.public_methods():
        routes.add(PublicRoute("grpc", method.grpc_path))
        routes.update(PublicRoute("rest", f"{rule.verb} {rule.path}") for rule in method.http_rules)
    for served in catalog.http_served:
        for method in served.methods:
            for rule in method.http_rules:
                kind, path = http_served_paths(rule)
                if not is_internal(path):
                    routes.add(PublicRoute("http", path if kind == "path" else path + "*"))
    routes.update(PublicRoute("document", path) for path in documents)
    return sorted(routes)
