"""The Envoy half of the "bare stack" peer: the mesh gateway's own config cut down to token check, transcoder, router.

The config is not written here: it is the running gateway's (chassis.tooling.envoy_config.build_envoy_config,
as the supervisor generated it for this mesh) with everything the bare stack must not have taken out.
What stays is byte for byte the gateway's:

- the HTTP connection manager's settings (codec, path normalisation, timeouts, header limits);
- `jwt_authn` with the mesh's provider: the same issuer, audience and JWKS, fetched from the same
  identity replicas over the same `identity_http` cluster (endpoints from the mesh's EDS files, mTLS);
- the `grpc_json_transcoder` filter (the project's descriptor set, services and print options);
- the router, and the service cluster's HTTP/2 options and upstream mTLS (the gateway's certificate
  through the mesh's SDS files, the server's checked to name `spiffe://protomesh.local/<service>`).

What goes: access log, tracing, local reply mapping, the other filters (claims stripper, ext_authz
for API keys, body limits, strict JSON, fault toggles, rate limits, cache validators), the routes of
other methods, retries, hedging, health checks, outlier detection, the overload manager. One route
sends every call to the service's cluster, whose endpoints are the bare servers'.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from chassis.tooling.envoy_config import Endpoint, cluster_load_assignment
from chassis.tooling.gateway_auth import JWT_AUTHN, GatewayAuth

TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
ROUTER = "envoy.filters.http.router"
KEPT_FILTERS = (JWT_AUTHN, TRANSCODER, ROUTER)
"""The gateway's HTTP filters the bare stack keeps, in the gateway's order."""
DROPPED_HCM_FIELDS = ("access_log", "tracing", "local_reply_config")
DROPPED_CLUSTER_FIELDS = ("type", "eds_cluster_config", "health_checks", "outlier_detection", "circuit_breakers")
KEPT_ROUTE_FIELDS = ("timeout", "max_stream_duration")


class GatewayShapeError(ValueError):
    """The gateway's config lacks a piece the bare stack takes from it (envoy_config changed shape)."""


def _hcm(config: dict[str, Any]) -> dict[str, Any]:
    listener = config["static_resources"]["listeners"][0]
    for chain_filter in listener["filter_chains"][0]["filters"]:
        if chain_filter["name"] == "envoy.filters.network.http_connection_manager":
            return dict(chain_filter["typed_config"])
    raise GatewayShapeError("the gateway's listener has no HTTP connection manager")


def _route_action(hcm: dict[str, Any], grpc_path: str) -> dict[str, Any]:
    """The timeouts of the gateway's route for `grpc_path` (its retries and hedging are left out)."""
    for host in hcm["route_config"]["virtual_hosts"]:
        for route in host["routes"]:
            if route.get("match") == {"path": grpc_path} and "route" in route:
                return {k: v for k, v in route["route"].items() if k in KEPT_ROUTE_FIELDS}
    raise GatewayShapeError(f"the gateway has no route for {grpc_path}")


def bare_config(gateway: dict[str, Any], *, service: str, grpc_path: str, servers: Sequence[Endpoint],
                listen_port: int, admin_port: int) -> dict[str, Any]:
    """The bare stack's Envoy bootstrap, from the gateway's `gateway` config: `service`'s calls go to `servers`."""
    gateway = copy.deepcopy(gateway)
    hcm = _hcm(gateway)
    filters = {f["name"]: f for f in hcm["http_filters"]}
    missing = [name for name in KEPT_FILTERS if name not in filters]
    if missing:
        raise GatewayShapeError(f"the gateway's config has no {', '.join(missing)} filter")
    clusters = {c["name"]: c for c in gateway["static_resources"]["clusters"]}
    jwks_cluster = GatewayAuth(issuer="").cluster
    if service not in clusters or jwks_cluster not in clusters:
        raise GatewayShapeError(f"the gateway's config has no {service!r} or {jwks_cluster!r} cluster")
    upstream = {k: v for k, v in clusters[service].items() if k not in DROPPED_CLUSTER_FIELDS}
    upstream.update(type="STATIC", load_assignment=cluster_load_assignment(service, servers))
    for field in DROPPED_HCM_FIELDS:
        hcm.pop(field, None)
    hcm["route_config"] = {"name": "bare", "virtual_hosts": [{
        "name": "bare", "domains": ["*"],
        # The transcoder rewrites a REST call to its gRPC path; every path goes to the one cluster, and
        # a REST path the descriptor set does not bind is refused by the transcoder (reject_unknown_method).
        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": service, **_route_action(hcm, grpc_path)}}]}]}
    hcm["http_filters"] = [filters[name] for name in KEPT_FILTERS]
    listener = gateway["static_resources"]["listeners"][0]
    address = listener["address"]["socket_address"]
    return {
        "node": gateway["node"],
        "admin": {"address": {"socket_address": {"address": address["address"], "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{
                "name": "bare",
                "address": {"socket_address": {"address": address["address"], "port_value": listen_port}},
                "per_connection_buffer_limit_bytes": listener["per_connection_buffer_limit_bytes"],
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                "typed_config": hcm}]}],
            }],
            "clusters": [upstream, clusters[jwks_cluster]],
        },
    }
