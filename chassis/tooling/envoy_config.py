"""Envoy's configuration, generated from the service catalog (the process that runs it: chassis.tooling.infra.envoy)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pool

from chassis.tls import TRUST_DOMAIN, server_name
from chassis.tooling import gateway_cache, gateway_ratelimit
from chassis.tooling.api_lifecycle import read_deprecations, with_deprecation_headers
from chassis.tooling.apidocs.served import MAX_DOCUMENT_BYTES, ServedDocument
from chassis.tooling.catalog import Catalog, HttpServedService, MeshMethod, MeshService
from chassis.tooling.gateway_auth import (
    COMPOSE_HTTP_PORT,
    GatewayAuth,
    auth_filters,
    compose_issuer,
    http_served_paths,
    is_internal,
    public_route_configs,
)
from chassis.tooling.gateway_faults import fault_filters, runtime_layers
from chassis.tooling.gateway_limits import GATEWAY_LIMITS, GatewayLimits
from chassis.tooling.gateway_ratelimit import RateLimits
from chassis.tooling.gateway_strict_json import (
    body_message,
    load_pool,
    local_reply_passthrough,
    route_metadata,
    strict_json_filter,
)
from chassis.tooling.infra.ports import LOOPBACK

Endpoint = tuple[str, int]
"""A replica address: (host, port)."""

ROUTE_TIMEOUT = "30s"
"""Upper bound for a unary call through the gateway; a gRPC client's own grpc-timeout may only shorten it."""
# Retried whatever the method: the request never reached a replica, so no replica acted on it.
SAFE_RETRY_ON = "connect-failure,refused-stream,reset-before-request"
NUM_RETRIES = 2
# Failover. A replica that hangs (SIGSTOP, a blocked event loop) neither refuses nor resets, so only
# timeouts notice it. Active health checks every 0.25 s with a 0.5 s timeout and one failure take
# it out of rotation within 0.75 s (the next success puts it back); 0.5 s still leaves a busy
# replica time to answer. A read (NO_SIDE_EFFECTS) that got no answer within READ_HEDGE_AFTER is
# sent to another replica as well, without cancelling the first try, so reads already on the hung
# replica are answered by the other one; two such timeouts also eject it (outlier detection).
HEALTH_CHECK_INTERVAL = "0.25s"
HEALTH_CHECK_TIMEOUT = "0.5s"
READ_HEDGE_AFTER = 0.5
OTLP_CLUSTER = "otlp_collector"
ANY_REPLICA_CLUSTER = "any_replica"

_HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_TLS = "envoy.extensions.transport_sockets.tls.v3"
GATEWAY_CERT_SDS = "gateway_cert"
"""The SDS resource naming the gateway's certificate files (a name, not a secret's value)."""
MESH_CA_SDS = "mesh_ca"
"""The SDS resource naming the mesh CA's file."""


@dataclasses.dataclass(frozen=True)
class UpstreamTls:
    """mTLS from the gateway to every replica (docs/authorization.md, "mTLS inside the mesh").

    `cert_dir` holds the gateway's cert.pem, key.pem and ca.pem (chassis.tooling.pki), rewritten in place
    on renewal; `sds_dir` holds the two file-based SDS resources naming them (write_sds), through which
    Envoy reloads the certificate when it rotates: static TLS files would be read once.
    """

    cert_dir: Path
    sds_dir: Path


def sds_documents(tls: UpstreamTls) -> dict[str, str]:
    """The SDS files `tls` names, by file name: the gateway's certificate (watched for renewals) and the CA."""
    secrets = {
        GATEWAY_CERT_SDS: {"tls_certificate": {
            "certificate_chain": {"filename": str(tls.cert_dir / "cert.pem")},
            "private_key": {"filename": str(tls.cert_dir / "key.pem")},
            # The pair is read again when a file is moved into this folder (pki writes by rename).
            "watched_directory": {"path": str(tls.cert_dir)},
        }},
        MESH_CA_SDS: {"validation_context": {
            "trusted_ca": {"filename": str(tls.cert_dir / "ca.pem")},
            "watched_directory": {"path": str(tls.cert_dir)},
        }},
    }
    return {f"{name}.json": json.dumps({"resources": [_any(f"{_TLS}.Secret", name=name, **secret)]}, indent=2) + "\n"
            for name, secret in secrets.items()}


def write_sds(tls: UpstreamTls) -> None:
    """Write the SDS files `tls` names (the local mesh; compose gets them from `protomesh gen`)."""
    tls.sds_dir.mkdir(parents=True, exist_ok=True)
    for name, text in sds_documents(tls).items():
        tmp = tls.sds_dir / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(tls.sds_dir / name)


def _sds(tls: UpstreamTls, name: str) -> dict[str, Any]:
    return {"name": name, "sds_config": {"resource_api_version": "V3",
                                         "path_config_source": {"path": str(tls.sds_dir / f"{name}.json")}}}


def upstream_transport_socket(tls: UpstreamTls, service: str, *, alpn: Sequence[str] = ()) -> dict[str, Any]:
    """The gateway's client certificate towards `service`, whose certificate must name it by SPIFFE id."""
    context: dict[str, Any] = {
        "common_tls_context": {
            "tls_certificate_sds_secret_configs": [_sds(tls, GATEWAY_CERT_SDS)],
            "combined_validation_context": {
                "default_validation_context": {"match_typed_subject_alt_names": [
                    {"san_type": "URI", "matcher": {"exact": f"spiffe://{TRUST_DOMAIN}/{service}"}}]},
                "validation_context_sds_secret_config": _sds(tls, MESH_CA_SDS),
            },
            **({"alpn_protocols": list(alpn)} if alpn else {}),
        },
        "sni": server_name(service),
    }
    return {"name": "envoy.transport_sockets.tls", "typed_config": _any(f"{_TLS}.UpstreamTlsContext", **context)}


def _any(type_name: str, **fields: Any) -> dict[str, Any]:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


def build_envoy_config(
    catalog: Catalog,
    upstreams: Mapping[str, Sequence[Endpoint]],
    *,
    listen_port: int,
    admin_port: int,
    descriptor_set: Path,
    listen_host: str = LOOPBACK,
    admin_host: str = LOOPBACK,
    eds_dir: Path | None = None,
    dns_upstreams: bool = False,
    otlp: Endpoint | None = None,
    limits: GatewayLimits = GATEWAY_LIMITS,
    api_documents: Sequence[ServedDocument] = (),
    issuer: str | None = None,
    verify_callers: bool = True,
    jwks_cache_seconds: float = 30.0,
    upstream_tls: UpstreamTls | None = None,
    rate_limits: RateLimits | None = None,
) -> dict[str, Any]:
    """The whole Envoy bootstrap (as a JSON-able dict) for the catalog's services.

    One listener on listen_host:listen_port serves REST/JSON (transcoded to gRPC) and native
    gRPC, over HTTP/1.1 or h2c. Every catalog service gets a cluster, so a service without
    replicas answers UNAVAILABLE/503 rather than 404. Its endpoints come from one of:
    `eds_dir` (files rewritten from the registry, see chassis.tooling.eds: the local mesh), DNS names
    (`dns_upstreams`, compose/Kubernetes service names), or the fixed `upstreams` map. `limits`
    (chassis.tooling.gateway_limits) bounds what a client may send and how long it may take;
    `rate_limits` (chassis.tooling.gateway_ratelimit; default: its classes, PROTOMESH_RATE_LIMITS applied)
    how often each caller may call each route class.
    `api_documents` (chassis.tooling.apidocs.served) are answered by Envoy itself at their paths.

    Callers are verified (chassis.tooling.gateway_auth): tokens issued by `issuer` (default
    `http://<listen_host>:<listen_port>`, the local mesh's gateway URL) or API keys, except on the
    routes the contracts declare public. `verify_callers=False` leaves only the removal of a
    client-sent claims header, for gateway tests of routing alone.

    `upstream_tls`: every service cluster and HTTP cluster (and so their health checks, the JWKS
    fetch and ext_authz) reaches replicas over mTLS with the gateway's certificate, and checks each
    replica's certificate names its service (`spiffe://protomesh.local/<service>`). Without it
    (gateway tests of routing alone, against plaintext backends) upstreams are plaintext.
    """
    auth = GatewayAuth(issuer=issuer or f"http://{LOOPBACK if listen_host == '0.0.0.0' else listen_host}:{listen_port}",  # noqa: S104 compares with the wildcard address, binds nothing
                       jwks_cache_seconds=jwks_cache_seconds) if verify_callers else None
    http_clusters = _http_clusters(catalog, auth)
    unknown = sorted(set(upstreams) - set(catalog.names) - set(http_clusters))
    if unknown:
        raise ValueError(f"upstreams for services not in the catalog: {unknown}; known: {catalog.names}")
    _check_limits(catalog, limits)
    config: dict[str, Any] = {
        # File-based EDS needs a node identity.
        "node": {"id": "protomesh-gateway", "cluster": "protomesh"},
        "admin": {"address": _socket_address(admin_host, admin_port)},
        "layered_runtime": runtime_layers(),  # failure toggles are set in its admin layer (gateway_faults)
        "static_resources": {
            "listeners": [_listener(catalog, listen_host, listen_port, Path(descriptor_set), limits,
                                    tracing=otlp is not None, api_documents=api_documents, auth=auth)],
            "clusters": [
                *(
                    _secured(_cluster(service, _endpoint_source(service.name, upstreams.get(service.name, ()), eds_dir,
                                                                dns_upstreams), limits),
                             upstream_tls, service.name, alpn=("h2",))
                    for service in catalog
                ),
                *(
                    _secured(_http_cluster(name, _endpoint_source(name, upstreams.get(name, ()), eds_dir,
                                                                  dns_upstreams, dns_name=deployable,
                                                                  dns_port=COMPOSE_HTTP_PORT)),
                             upstream_tls, deployable)
                    for name, deployable in http_clusters.items()
                ),
                *([_any_replica_cluster(catalog)] if catalog.services else []),
                *([_otlp_cluster(otlp)] if otlp else []),
            ],
        },
        # The connection limit: beyond it Envoy closes new connections as it accepts them.
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": _any(
                        "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                        max_active_downstream_connections=limits.max_connections,
                    ),
                }
            ]
        },
    }
    # Rate limits per route class and the 304 of cached reads, read from the contracts (docs/caching.md).
    methods = {method.grpc_path: method for method in catalog.methods()}
    gateway_ratelimit.apply(config, methods, rate_limits or gateway_ratelimit.configured())
    gateway_cache.apply(config, methods)
    return config


def route_timeout(method: MeshMethod | None) -> dict[str, Any]:
    """Timeouts of a route, from the method's contract policy (the same value the runtime's clients use)."""
    if method is not None and (method.server_streaming or method.client_streaming):
        # Streams live as long as the client wants; 0s disables the route timeout.
        return {"timeout": "0s"}
    timeout = _duration(method.policy.timeout) if method is not None else ROUTE_TIMEOUT
    return {"timeout": timeout, "max_stream_duration": {"grpc_timeout_header_max": timeout}}


_RETRY_ON_CODE = {
    grpc.StatusCode.UNAVAILABLE: "unavailable",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "resource-exhausted",
    grpc.StatusCode.DEADLINE_EXCEEDED: "deadline-exceeded",
}


def retry_policy(method: MeshMethod | None) -> dict[str, Any]:
    """Retries from the contract: idempotent methods on its retry codes and resets, others only when safe."""
    idempotent = method is not None and method.idempotent
    retry_on = SAFE_RETRY_ON
    num_retries = NUM_RETRIES
    back_off = {"base_interval": "0.025s", "max_interval": "0.25s"}
    if idempotent and method is not None:
        codes = sorted(_RETRY_ON_CODE[c] for c in method.policy.retry.codes if c in _RETRY_ON_CODE)
        retry_on = ",".join([SAFE_RETRY_ON, "reset", "cancelled", *codes])
        num_retries = max(method.policy.attempts - 1, 0)
        back_off = {"base_interval": _duration(method.policy.retry.initial_backoff),
                    "max_interval": _duration(method.policy.retry.max_backoff)}
    policy: dict[str, Any] = {
        "retry_on": retry_on,
        "num_retries": num_retries,
        # Try another replica than the one that just failed.
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": _any("envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"),
            }
        ],
        "host_selection_retry_max_attempts": 3,
        "retry_back_off": back_off,
    }
    if idempotent and method is not None:
        policy["per_try_timeout"] = _duration(method.policy.timeout)
    if _hedged(method):
        policy["per_try_timeout"] = _duration(READ_HEDGE_AFTER)
    return policy


def _hedged(method: MeshMethod | None) -> bool:
    # Only reads: a hedge runs the call twice at once, which a write marked IDEMPOTENT may not
    # survive (two concurrent updates with one expected version: one of them answers 409).
    return (method is not None and method.idempotency_level == "NO_SIDE_EFFECTS"
            and not (method.server_streaming or method.client_streaming)
            and method.policy.timeout > READ_HEDGE_AFTER)


def _duration(seconds: float) -> str:
    return f"{seconds:.3f}s"


def cluster_load_assignment(service_name: str, endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """The endpoints of one service's cluster (later served by EDS from the registry)."""
    return {
        "cluster_name": service_name,
        "endpoints": [
            {"lb_endpoints": [{"endpoint": {"address": _socket_address(host, port)}} for host, port in endpoints]}
        ],
    }


# -- pieces ------------------------------------------------------------------------------------


def _socket_address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _otlp_cluster(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "name": OTLP_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": cluster_load_assignment(OTLP_CLUSTER, [endpoint]),
        "typed_extension_protocol_options": {
            _HTTP_PROTOCOL_OPTIONS: _any(_HTTP_PROTOCOL_OPTIONS, explicit_http_config={"http2_protocol_options": {}})
        },
    }


def _tracing() -> dict[str, Any]:
    # Envoy starts the trace (or continues the client's traceparent) and passes it to the replica,
    # sampling new traces at the same ratio the services use.
    from chassis.telemetry import sampling_ratio

    return {
        "random_sampling": {"value": round(sampling_ratio() * 100, 3)},
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": _any(
                "envoy.config.trace.v3.OpenTelemetryConfig",
                grpc_service={"envoy_grpc": {"cluster_name": OTLP_CLUSTER}, "timeout": "1s"},
                service_name="gateway",
            ),
        },
    }


def _listener(catalog: Catalog, host: str, port: int, descriptor_set: Path, limits: GatewayLimits, *,
              tracing: bool = False, api_documents: Sequence[ServedDocument] = (),
              auth: GatewayAuth | None = None) -> dict[str, Any]:
    hcm = _any(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix="ingress",
        codec_type="AUTO",
        # The client's address is appended to X-Forwarded-For (whatever the client sent stays before it), so
        # a replica takes the last entry as the caller's address (the audit trail's source, chassis.audit).
        use_remote_address=True,
        normalize_path=True,
        merge_slashes=True,
        access_log=_access_logs(),
        local_reply_config=_local_reply_config(limits),
        **({"tracing": _tracing()} if tracing else {}),
        # Slow clients: headers, then the whole request, must arrive in time; a stalled request and
        # an idle connection are closed; no connection lives forever.
        request_headers_timeout=_duration(limits.request_headers_timeout),
        request_timeout=_duration(limits.request_timeout),
        stream_idle_timeout=_duration(limits.stream_idle_timeout),
        drain_timeout=_duration(limits.drain_timeout),
        common_http_protocol_options={
            "idle_timeout": _duration(limits.idle_timeout),
            "max_connection_duration": _duration(limits.max_connection_duration),
        },
        max_request_headers_kb=limits.max_request_headers_kb,
        # HTTP/1.0 may come without a Host header; every host reaches the same routes anyway.
        http_protocol_options={"accept_http_10": limits.accept_http_10, "default_host_for_http_10": "protomesh"},
        route_config={
            "name": "mesh",
            **({"max_direct_response_body_size_bytes": MAX_DOCUMENT_BYTES} if api_documents else {}),
            "virtual_hosts": [{"name": "mesh", "domains": ["*"],
                               "routes": [*_document_routes(api_documents, auth),
                                          *_http_served_routes(catalog, auth), *_routes(catalog, limits, auth)]}],
        },
        http_filters=[
            # Who is calling, first: a caller without a valid credential costs no body reading or transcoding.
            *(auth_filters(auth) if auth else [_claims_stripper()]),
            *_body_limit_filters(limits),
            # After the body limits (it buffers the body, which they have bounded), before the transcoder
            # (which would drop a field it does not know): chassis.tooling.gateway_strict_json.
            strict_json_filter(catalog),
            {"name": "envoy.filters.http.grpc_json_transcoder",
             "typed_config": _transcoder(catalog, descriptor_set, limits)},
            *fault_filters(),  # failure toggles, per method on the gRPC path (chassis.tooling.gateway_faults)
            {
                "name": "envoy.filters.http.router",
                "typed_config": _any("envoy.extensions.filters.http.router.v3.Router"),
            },
        ],
    )
    return {
        "name": "mesh",
        "address": _socket_address(host, port),
        # Flow control: Envoy reads no more from a client than this ahead of what it passed on.
        "per_connection_buffer_limit_bytes": limits.connection_buffer_bytes,
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
        ],
    }


def _body_limit_filters(limits: GatewayLimits) -> list[dict[str, Any]]:
    """One streaming body-size filter per distinct limit, smallest first, all before the transcoder.

    They count bytes as they arrive (and reject a Content-Length over the limit at once), so an
    oversized body is refused with 413 before the transcoder buffers it. Every route runs all of
    them except those below its own class's limit (see _route_filter_configs).
    """
    return [
        {
            "name": _body_limit_filter_name(size),
            "typed_config": _any("envoy.extensions.filters.http.body_size_limit.v3.BodySizeLimit",
                                 max_request_bytes=size),
        }
        for size in _body_limits(limits)
    ]


def _body_limits(limits: GatewayLimits) -> list[int]:
    return sorted({limits.max_request_bytes, *(c.max_request_bytes for c in limits.body_classes)})


def _body_limit_filter_name(size: int) -> str:
    return f"protomesh.body_limit.{size}"


def _route_filter_configs(limit: int, limits: GatewayLimits) -> dict[str, Any]:
    """Per-route filter settings that lift the body limit of a route to `limit`."""
    return {
        _body_limit_filter_name(size): _any("envoy.config.route.v3.FilterConfig", disabled=True)
        for size in _body_limits(limits) if size < limit
    }


def _check_limits(catalog: Catalog, limits: GatewayLimits) -> None:
    # A renamed method must not silently fall back to the default limit; a class may name methods
    # of a service this gateway does not carry (a catalog with fewer services).
    known = {method.grpc_path for method in catalog.methods()}
    served = set(catalog.grpc_services)
    for body_class in limits.body_classes:
        unknown = sorted(path for path in body_class.methods
                         if path not in known and path.strip("/").split("/")[0] in served)
        if unknown:
            raise ValueError(f"body class {body_class.name!r} names methods not in the contracts: {unknown}")
    slowest = max((m.policy.timeout for m in catalog.methods() if not (m.server_streaming or m.client_streaming)),
                  default=0.0)
    if limits.stream_idle_timeout <= slowest:
        raise ValueError(f"stream_idle_timeout {limits.stream_idle_timeout}s would cut calls the contracts allow "
                         f"{slowest}s; make it longer")


def _transcoder(catalog: Catalog, descriptor_set: Path, limits: GatewayLimits) -> dict[str, Any]:
    return _any(
        "envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
        proto_descriptor=str(descriptor_set.resolve()),
        services=catalog.grpc_services,
        # Errors reach REST clients as the mapped HTTP status with a JSON google.rpc.Status body
        # (details such as BadRequest field violations included: their types are in the descriptor set).
        convert_grpc_status=True,
        print_options={
            # Zero values (0, false, "", empty lists) are printed, so REST clients see every
            # field of the contract instead of guessing whether a missing one means zero.
            "always_print_primitive_fields": True,
            # snake_case as in the .proto files: the same names REST clients already use in
            # path templates ({agent_id}), query parameters and BadRequest field violations.
            # Requests are accepted in either spelling.
            "preserve_proto_field_names": True,
            "always_print_enums_as_ints": False,
            "add_whitespace": False,
        },
        request_validation_options={
            # An unknown REST path is a 404 here instead of reaching the router as a gRPC path.
            "reject_unknown_method": True,
            # A misspelt query parameter is a 400, not silently ignored.
            "reject_unknown_query_parameters": True,
        },
        case_insensitive_enum_parsing=True,
        # A backstop behind the body-limit filters (which see the bytes first), and a bound on the
        # response it buffers to turn into JSON.
        max_request_body_size=limits.largest_request_bytes,
        max_response_body_size=limits.max_response_bytes,
    )


def _claims_stripper() -> dict[str, Any]:
    # Without verification (routing tests) a client still may not claim to be someone.
    return auth_filters(GatewayAuth(issuer="unused"))[0]


def _public(auth: GatewayAuth | None) -> dict[str, Any]:
    return public_route_configs() if auth else {}


def _document_routes(documents: Sequence[ServedDocument], auth: GatewayAuth | None = None) -> list[dict[str, Any]]:
    """GET routes Envoy answers from the generated API documents; no transcoder on them (no RPC has these paths)."""
    return [{
        "name": f"apidoc {doc.path}",
        "match": {"path": doc.path, "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
        "direct_response": {"status": doc.status, "body": {"filename": str(doc.file)}},
        "response_headers_to_add": [{"header": {"key": key, "value": value},
                                     "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
                                    for key, value in (("content-type", doc.content_type), *doc.headers)],
        "typed_per_filter_config": {"envoy.filters.http.grpc_json_transcoder": _any(
            "envoy.config.route.v3.FilterConfig", disabled=True), **_public(auth)},
    } for doc in documents]


def _http_served_routes(catalog: Catalog, auth: GatewayAuth | None) -> list[dict[str, Any]]:
    """Routes of the HTTP-served services (the OIDC endpoints) to their deployable's HTTP listeners.

    Not transcoded: the replica answers the protocol itself (form bodies, redirects, its own error
    JSON). Matched on the path alone (the replica answers a wrong verb), exactly or, where the path
    has a variable, by the prefix before it. Public: the endpoints authenticate their callers
    themselves (client credentials, the login form, a bearer token on userinfo).
    """
    routes: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for served in catalog.http_served:
        for method in served.methods:
            for rule in method.http_rules:
                kind, path = http_served_paths(rule)
                if (kind, path) in seen or is_internal(path):
                    continue
                seen.add((kind, path))
                routes.append(_http_served_route(served, kind, path, auth))
    # Exact paths first, then longer prefixes before shorter ones, so no prefix shadows a path.
    return sorted(routes, key=lambda r: ("prefix" in r["match"], -len(next(iter(r["match"].values())))))


def _http_served_route(served: HttpServedService, kind: str, path: str, auth: GatewayAuth | None) -> dict[str, Any]:
    return {
        "name": f"{served.cluster} {path}",
        "match": {kind: path},
        "route": {"cluster": served.cluster, "timeout": ROUTE_TIMEOUT,
                  "retry_policy": {"retry_on": SAFE_RETRY_ON, "num_retries": NUM_RETRIES}},
        "typed_per_filter_config": {"envoy.filters.http.grpc_json_transcoder": _any(
            "envoy.config.route.v3.FilterConfig", disabled=True), **_public(auth)},
    }


def _routes(catalog: Catalog, limits: GatewayLimits, auth: GatewayAuth | None = None) -> list[dict[str, Any]]:
    """Routes on the gRPC path (the transcoder rewrites REST paths to it before routing), then on REST paths.

    Literal path segments beat variables without help from the routes: the transcoder's path
    matcher tries a literal child before a ``{variable}`` one, so ``GET /v1/agents/discover``
    is DiscoverAgents, not GetAgent(agent_id="discover") (tests/infra prove it on Envoy 1.40).
    Idempotent methods get an exact route each, carrying the wider retry policy; so do public ones
    (their route turns the credential check off for native gRPC calls); every other method falls
    through to its package's prefix route, which retries only when safe.

    Every REST binding also gets a route on its REST path (_rest_routes): Envoy picks a route, and
    so what the filters before the transcoder do (credential checks, body limits), from the path the
    client sent; after transcoding the route is chosen again on the gRPC path, so those routes never
    route a call themselves. The last route answers 404 for any other path, so even an unknown path
    has a route, and with it the credential check.
    """
    routes: list[dict[str, Any]] = []
    for service in catalog:
        for method in service.methods:
            limit = limits.body_limit(method.grpc_path)
            filter_configs = {**_route_filter_configs(limit, limits), **(_public(auth) if method.public else {})}
            if _keyable(method):
                routes.append(_keyed_route(service, method, filter_configs))
            if method.idempotent or method.public or limit != limits.max_request_bytes:
                routes.append(_route(method.grpc_path, {"path": method.grpc_path}, service,
                                     method if method.idempotent else None, filter_configs))
        for package in service.packages:
            routes.append(_route(package, {"prefix": f"/{package}."}, service, None))
    if catalog.services:
        # Every replica's reflection describes the whole mesh's contracts, so any replica of any
        # service can answer grpcurl's list/describe through the gateway.
        routes.append(_route("reflection", {"prefix": "/grpc.reflection."}, ANY_REPLICA_CLUSTER, None,
                             _public(auth)))
    routes += _rest_routes(catalog, limits, auth)
    routes.append({"name": "unknown path", "match": {"prefix": "/"},
                   "direct_response": {"status": 404, "body": {"inline_string": (
                       "no API of this mesh has this path; GET /openapi.json lists them")}}})
    return with_deprecation_headers(routes, read_deprecations(catalog.descriptor_set.read_bytes()))


def _rest_routes(catalog: Catalog, limits: GatewayLimits, auth: GatewayAuth | None) -> list[dict[str, Any]]:
    """A route per REST binding, on its path and verb, ordered as the transcoder matches (literals first)."""
    bindings = []
    pool = load_pool(catalog.descriptor_set)
    for service in catalog:
        for method in service.methods:
            limit = limits.body_limit(method.grpc_path)
            filter_configs = {**_route_filter_configs(limit, limits), **(_public(auth) if method.public else {})}
            for index, rule in enumerate(method.http_rules):
                match = {"safe_regex": {"regex": _rest_path_regex(rule.path)},
                         "headers": [{"name": ":method", "string_match": {"exact": rule.verb}}]}
                route = _route(f"{method.grpc_path} REST {index}", match, service, method, filter_configs)
                message = body_message(pool, method, rule)
                if message is not None:
                    # The strict-JSON filter checks this body against `message`; it buffers the body, up to
                    # the route's limit (the connection's 32 KiB buffer would otherwise cap it with a 413).
                    route["metadata"] = route_metadata(message)
                    route["per_request_buffer_limit_bytes"] = limit
                bindings.append((_specificity(rule.path), route))
    return [route for _, route in sorted(bindings, key=lambda binding: binding[0])]


def _specificity(template: str) -> tuple[int, ...]:
    """Sort key of a path template: at the first segment where two differ, a literal before a variable."""
    kinds = []
    for segment in template.strip("/").split("/"):
        kinds.append(0 if "{" not in segment else 2 if "**" in segment else 1)
    return tuple(kinds)


IDEMPOTENCY_KEY_HEADER = "idempotency-key"
"""Header of a keyed write (chassis.idempotency.METADATA_KEY); Envoy passes it on as gRPC metadata."""


def _keyable(method: MeshMethod) -> bool:
    """A write with side effects that accepts an idempotency key (a request_id field, AIP-155)."""
    if method.idempotent:
        return False
    try:
        request = descriptor_pool.Default().FindMessageTypeByName(method.input_type)
    except KeyError:
        return False
    return "request_id" in request.fields_by_name


def _keyed_route(service: MeshService, method: MeshMethod, filter_configs: dict[str, Any]) -> dict[str, Any]:
    """The method's route when the request carries an Idempotency-Key: retried like an idempotent call.

    The replica applies a keyed write once and answers repeats with the first result, so a write on
    a replica that dies or hangs may go to another one. Envoy sees the header only: a gRPC client
    that puts the key in request_id is retried by its own (resilient) client, not by the gateway.
    Each try gets half the deadline, so a hung replica leaves time for a second one.
    """
    keyed = dataclasses.replace(method, idempotency_level="IDEMPOTENT")
    route = _route(f"{method.grpc_path} keyed",
                   {"path": method.grpc_path, "headers": [{"name": IDEMPOTENCY_KEY_HEADER, "present_match": True}]},
                   service, keyed, filter_configs)
    route["route"]["retry_policy"]["per_try_timeout"] = _duration(method.policy.timeout / 2)
    return route


def _route(name: str, match: dict[str, Any], service: MeshService | str, method: MeshMethod | None,
           filter_configs: dict[str, Any] | None = None) -> dict[str, Any]:
    cluster = service if isinstance(service, str) else service.name
    action: dict[str, Any] = {"cluster": cluster, **route_timeout(method), "retry_policy": retry_policy(method)}
    if _hedged(method):
        action["hedge_policy"] = {"hedge_on_per_try_timeout": True}
    route: dict[str, Any] = {"name": name, "match": match, "route": action}
    if filter_configs:
        route["typed_per_filter_config"] = filter_configs
    return route


_TEMPLATE_PART = re.compile(r"\{([a-z_][a-z0-9_.]*)(?:=([^}]*))?\}|[^{]+")


def _rest_path_regex(template: str) -> str:
    """A RE2 pattern for a google.api.http path template (``/v1/a/{id}/b``, ``{name=**}``, ``:verb``)."""
    pattern, position = "", 0
    for part in _TEMPLATE_PART.finditer(template):
        if part.start() != position:
            break
        position = part.end()
        if part.group(1) is None:
            pattern += re.escape(part.group(0))
        elif part.group(2) in (None, "*"):
            pattern += "[^/]+"
        elif part.group(2) == "**":
            pattern += ".+"
        else:
            raise ValueError(f"path template {template!r}: variable pattern {part.group(2)!r} is not supported")
    if position != len(template):
        raise ValueError(f"path template {template!r} is not understood")
    return pattern


def _secured(cluster: dict[str, Any], tls: UpstreamTls | None, service: str,
             alpn: Sequence[str] = ()) -> dict[str, Any]:
    return {**cluster, "transport_socket": upstream_transport_socket(tls, service, alpn=alpn)} if tls else cluster


def _any_replica_cluster(catalog: Catalog) -> dict[str, Any]:
    """An aggregate of every service's cluster: the first one with healthy replicas takes the call."""
    return {
        "name": ANY_REPLICA_CLUSTER,
        "connect_timeout": "1s",
        "lb_policy": "CLUSTER_PROVIDED",
        "cluster_type": {
            "name": "envoy.clusters.aggregate",
            "typed_config": _any("envoy.extensions.clusters.aggregate.v3.ClusterConfig", clusters=catalog.names),
        },
    }


def _endpoint_source(name: str, endpoints: Sequence[Endpoint], eds_dir: Path | None,
                     dns: bool, *, dns_name: str | None = None, dns_port: int = 50051) -> dict[str, Any]:
    if eds_dir is not None:
        return {
            "type": "EDS",
            "eds_cluster_config": {
                "service_name": name,
                "eds_config": {
                    "resource_api_version": "V3",
                    "path_config_source": {
                        "path": str((eds_dir / f"{name}.json").resolve()),
                        # Envoy reloads the file when a rename lands in this folder (atomic writes).
                        "watched_directory": {"path": str(eds_dir.resolve())},
                    },
                },
            },
        }
    if dns:
        return {"type": "STRICT_DNS", "dns_lookup_family": "V4_ONLY",
                "load_assignment": cluster_load_assignment(name, endpoints or [(dns_name or name, dns_port)])}
    return {"type": "STATIC", "load_assignment": cluster_load_assignment(name, endpoints)}


def _http_clusters(catalog: Catalog, auth: GatewayAuth | None) -> dict[str, str]:
    """Cluster name -> deployable of every HTTP listener the gateway reaches (HTTP-served routes, JWKS, ext_authz)."""
    clusters = {served.cluster: served.deployable for served in catalog.http_served}
    if auth is not None:
        clusters.setdefault(auth.cluster, auth.cluster.removesuffix("_http"))
    return dict(sorted(clusters.items()))


def _http_cluster(name: str, source: dict[str, Any]) -> dict[str, Any]:
    """A deployable's HTTP/1.1 listeners (chassis http= apps): endpoints from the registry's `http_port`."""
    return {
        "name": name,
        **source,
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "outlier_detection": {"split_external_local_origin_errors": True, "consecutive_local_origin_failure": 2,
                              "interval": "1s", "base_ejection_time": "5s", "max_ejection_percent": 50},
    }


def _cluster(service: MeshService, source: dict[str, Any], limits: GatewayLimits) -> dict[str, Any]:
    return {
        "name": service.name,
        **source,
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "per_connection_buffer_limit_bytes": limits.upstream_buffer_bytes,
        "typed_extension_protocol_options": {
            _HTTP_PROTOCOL_OPTIONS: _any(
                _HTTP_PROTOCOL_OPTIONS,
                explicit_http_config={
                    "http2_protocol_options": {
                        # Finds a replica that vanished without closing its connections.
                        "connection_keepalive": {"interval": "10s", "timeout": "2s"}
                    }
                },
            )
        },
        "health_checks": [
            {
                "timeout": HEALTH_CHECK_TIMEOUT,
                "interval": HEALTH_CHECK_INTERVAL,
                "no_traffic_interval": HEALTH_CHECK_INTERVAL,
                "unhealthy_threshold": 1,
                "healthy_threshold": 1,
                "grpc_health_check": {"service_name": service.grpc_services[0]},
            }
        ],
        "outlier_detection": {
            # What Envoy itself saw go wrong with a replica (connect failures, resets, timeouts)
            # ejects it; what a replica answers does not. A gRPC UNAVAILABLE counts as a 503, the
            # "gateway failure" Envoy would otherwise eject for, but a replica answers it on
            # purpose when PostgreSQL is down, which every replica sees alike; ejecting for it
            # would keep half the replicas out for base_ejection_time after the outage ends.
            "split_external_local_origin_errors": True,
            "consecutive_local_origin_failure": 2,
            "enforcing_consecutive_local_origin_failure": 100,
            "consecutive_5xx": 5,
            "enforcing_consecutive_5xx": 0,
            "consecutive_gateway_failure": 2,
            "enforcing_consecutive_gateway_failure": 0,
            "interval": "1s",
            # A passing active health check returns an ejected replica at once (Envoy's default).
            "base_ejection_time": "5s",
            "max_ejection_time": "30s",
            "max_ejection_percent": 50,
        },
        "circuit_breakers": {
            # The default allows only 3 concurrent retries per cluster; when a replica dies under
            # load, more than that are in flight at once. A budget scales with the traffic instead.
            "thresholds": [{"retry_budget": {"budget_percent": {"value": 25.0}, "min_retry_concurrency": 16}}]
        },
    }


# Google's HTTP mapping of gRPC codes (google/rpc/code.proto), inverted for Envoy's own replies.
_GRPC_CODE_FOR_HTTP = {
    400: 3,
    401: 16,
    403: 7,
    404: 5,
    409: 10,
    413: 8,
    429: 8,
    499: 1,
    500: 13,
    501: 12,
    502: 14,
    503: 14,
    504: 4,
}
_UNKNOWN = 2


def _header(name: str, **match: Any) -> dict[str, Any]:
    return {"header_filter": {"header": {"name": name, **match}}}


# A REST call: either the transcoder turned it into a gRPC call (and left its original method
# behind in x-envoy-original-method) or it is not gRPC at all (it failed before transcoding).
_REST_CALL = {
    "or_filter": {
        "filters": [
            _header("x-envoy-original-method", present_match=True),
            _header(
                "content-type",
                string_match={"prefix": "application/grpc"},
                invert_match=True,
                treat_missing_header_as_empty=True,
            ),
        ]
    }
}
_NATIVE_GRPC_CALL = {
    "and_filter": {
        "filters": [
            _header("content-type", string_match={"prefix": "application/grpc"}),
            _header("x-envoy-original-method", present_match=False),
        ]
    }
}


def _local_reply_config(limits: GatewayLimits) -> dict[str, Any]:
    """Envoy's own errors (unknown path, bad query value, no healthy replica) as google.rpc.Status JSON.

    The transcoder converts errors that come from a service, but replies Envoy makes itself
    would otherwise reach REST clients as text/plain; this gives them the same JSON shape.
    Native gRPC calls keep Envoy's gRPC local replies (grpc-status trailers).
    """
    too_large = {
        "filter": {"and_filter": {"filters": [_REST_CALL, _status_filter(413)]}},
        "body_format_override": _status_json(
            _GRPC_CODE_FOR_HTTP[413],
            f"request body too large (%LOCAL_REPLY_BODY%): the gateway accepts {limits.describe_body_limits()}"),
    }
    # Envoy refuses an escaped NUL in the URL itself, with an empty body: say what is wrong.
    nul_in_url = {
        "filter": {"and_filter": {"filters": [
            _REST_CALL, _status_filter(400),
            {"header_filter": {"header": {"name": ":path",
                                          "string_match": {"contains": "%00", "ignore_case": True}}}},
        ]}},
        "body_format_override": _status_json(
            _GRPC_CODE_FOR_HTTP[400], "the URL contains an escaped NUL byte, which no id or query value may contain; "
                                      "remove it"),
    }
    # No mapper for jwt_authn's refusals: it refuses none (a failed token goes on to ext_authz, and the identity
    # service answers its 401 with the invalid_token challenge, audited; chassis.tooling.gateway_auth).
    # The strict-JSON filter's refusals are google.rpc.Status JSON already.
    mappers = [local_reply_passthrough(), gateway_ratelimit.grpc_resource_exhausted(), too_large, nul_in_url] + [
        {
            "filter": {
                "and_filter": {
                    "filters": [
                        _REST_CALL,
                        _status_filter(http),
                    ]
                }
            },
            "body_format_override": _status_json(code, _LOCAL_MESSAGES.get(http, "%LOCAL_REPLY_BODY%")),
        }
        for http, code in _GRPC_CODE_FOR_HTTP.items()
    ]
    # Any other error status; a 2xx local reply (the API documents Envoy serves) keeps its own body.
    any_error = {"status_code_filter": {"comparison": {
        "op": "GE", "value": {"default_value": 400, "runtime_key": "protomesh.local_reply.error"}}}}
    mappers.append({"filter": {"and_filter": {"filters": [_REST_CALL, any_error]}},
                    "body_format_override": _status_json(_UNKNOWN)})
    return {"mappers": mappers}


def _status_filter(http: int) -> dict[str, Any]:
    return {
        "status_code_filter": {
            "comparison": {
                "op": "EQ",
                "value": {"default_value": http, "runtime_key": f"protomesh.local_reply.{http}"},
            }
        }
    }


_LOCAL_MESSAGES = {
    # The 401s of the ext_authz check (no credential, a bad token or API key: the identity service's reason in
    # the parentheses); the challenge is in WWW-Authenticate.
    401: "the call needs a valid credential (%LOCAL_REPLY_BODY%): send 'Authorization: Bearer <access token>' "
         "(e.g. from `protomesh token`) or an API key in 'Authorization: ApiKey <key>' or 'x-api-key'",
    # Envoy's own 400s come from the transcoder reading the body or the query string (malformed JSON, a
    # value of the wrong type, an unknown query parameter): its text, with what to do about it.
    400: "the request does not fit the API (%LOCAL_REPLY_BODY%); send JSON with the fields and types that "
         "GET /openapi.json lists for this operation",
    # The gateway's rate limits (chassis.tooling.gateway_ratelimit) and an API key over its own rate.
    429: "too many requests (%LOCAL_REPLY_BODY%): wait the Retry-After seconds; RateLimit-Policy gives the quota",
}


def _status_json(code: int, message: str = "%LOCAL_REPLY_BODY%") -> dict[str, Any]:
    return {
        "json_format": {"code": code, "message": message, "details": []},
        "content_type": "application/json",
    }


def _access_logs() -> list[dict[str, Any]]:
    """One JSON line per request on stdout.

    REST and native gRPC calls log through separate filters because the transcoder removes
    grpc-status when it converts an error to an HTTP status, and Envoy would then infer a
    gRPC status from the HTTP code (400 → INTERNAL), which is wrong; REST lines carry the
    HTTP code, which is the service's status already mapped.
    """
    fields = {
        "time": "%START_TIME%",
        "method": "%REQ(X-ENVOY-ORIGINAL-METHOD?:METHOD)%",
        # The path the client sent; the transcoder rewrites :path to the gRPC method's path.
        "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
        "route": "%ROUTE_NAME%",
        "code": "%RESPONSE_CODE%",
        "flags": "%RESPONSE_FLAGS%",
        "duration_ms": "%DURATION%",
        "upstream": "%UPSTREAM_HOST%",
        "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
        "request_id": "%REQ(X-REQUEST-ID)%",
    }
    grpc_fields = {**fields, "protocol": "grpc", "grpc_status": "%GRPC_STATUS%"}
    return [
        _stdout_log({**fields, "protocol": "rest"}, _REST_CALL),
        _stdout_log(grpc_fields, _NATIVE_GRPC_CALL),
    ]


def _stdout_log(fields: dict[str, Any], log_filter: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "envoy.access_loggers.stdout",
        "filter": log_filter,
        "typed_config": _any(
            "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog", log_format={"json_format": fields}
        ),
    }


# -- the process -------------------------------------------------------------------------------


COMPOSE_DESCRIPTOR_PATH = Path("/etc/envoy/protomesh.binpb")
"""Where compose and Kubernetes mount gen/protomesh.binpb into the Envoy container."""


COMPOSE_UPSTREAM_TLS = UpstreamTls(cert_dir=Path("/etc/protomesh/tls/gateway"), sds_dir=Path("/etc/protomesh/sds"))
"""In containers: the gateway's certificate at /etc/protomesh/tls/gateway (compose: the mesh-pki volume's
`gateway` folder; Kubernetes: its certificate sidecar's volume), the SDS files (envoy/compose/sds, generated)
at /etc/protomesh/sds."""


def compose_envoy_config(*, listen_port: int = 8080, admin_port: int = 9901, catalog: Catalog | None = None,
                         descriptor_path: Path = COMPOSE_DESCRIPTOR_PATH, issuer: str | None = None) -> dict[str, Any]:
    """Envoy's config for containers: services reached by their DNS names on port 50051.

    Listens on 0.0.0.0 inside the container (the compose file publishes it on the host's loopback).
    The token issuer is `issuer`, else PROTOMESH_ISSUER, else the gateway's published address; the
    JWKS and API-key checks reach the identity service's HTTP listener by its DNS name.
    """
    from chassis.tooling.catalog import load_catalog

    catalog = catalog or load_catalog()
    return build_envoy_config(catalog, {}, listen_port=listen_port, admin_port=admin_port,
                              descriptor_set=descriptor_path, listen_host="0.0.0.0", admin_host="0.0.0.0",  # noqa: S104 inside a container: Docker forwards published ports to its interfaces (compose publishes the admin on the host's loopback only)
                              dns_upstreams=True, issuer=issuer or compose_issuer(), upstream_tls=COMPOSE_UPSTREAM_TLS)
