"""The gateway's public routes are exactly what the contracts declare (the access / http_served options).

Read twice, independently: once from the descriptor set with plain protobuf (the expectation), once
from the generated Envoy config (the routes whose per-route settings turn the credential checks off).
"""

from __future__ import annotations

from typing import Any

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from chassis.paths import DESCRIPTOR_SET
from chassis.tooling.catalog import load_catalog
from chassis.tooling.envoy_config import build_envoy_config
from chassis.tooling.gateway_auth import EXT_AUTHZ, JWT_AUTHN, PUBLIC_REQUIREMENT, PublicRoute, public_routes
from protomesh.options.v1 import access_pb2


def _declared() -> tuple[set[str], set[str], set[str]]:
    """gRPC paths and REST bindings of public methods, and HTTP-served paths, straight from the descriptors."""
    grpc_paths: set[str] = set()
    rest: set[str] = set()
    http_served: set[str] = set()
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    for file in files:
        if not file.package.startswith("protomesh."):
            continue
        for service in file.service:
            served = service.options.HasExtension(access_pb2.http_served)
            for method in service.method:
                rules = []
                if method.options.HasExtension(annotations_pb2.http):
                    rule = method.options.Extensions[annotations_pb2.http]
                    rules = [rule, *rule.additional_bindings]
                paths = [(r.WhichOneof("pattern"), getattr(r, r.WhichOneof("pattern"))) for r in rules]
                if served:
                    http_served.update(p if "{" not in p else p[:p.index("{")] + "*" for _, p in paths
                                       if not p.startswith("/internal/"))
                elif method.options.Extensions[access_pb2.access].public:
                    grpc_paths.add(f"/{file.package}.{service.name}/{method.name}")
                    rest.update(f"{verb.upper()} {path}" for verb, path in paths)
    return grpc_paths, rest, http_served


def test_every_oidc_endpoint_and_nothing_else_of_identity_is_http_served() -> None:
    _, _, http_served = _declared()
    assert "/oauth2/token" in http_served and "/oauth2/jwks" in http_served
    assert not any(path.startswith("/internal/") for path in http_served)


def test_the_public_route_list_is_what_the_contracts_declare() -> None:
    grpc_paths, rest, http_served = _declared()
    expected = {PublicRoute("grpc", p) for p in {*grpc_paths, "/grpc.health.v1.Health/", "/grpc.reflection."}}
    expected |= {PublicRoute("rest", r) for r in rest} | {PublicRoute("http", p) for p in http_served}
    assert set(public_routes(load_catalog(DESCRIPTOR_SET))) == expected


def _public(route: dict[str, Any]) -> bool:
    configs = route.get("typed_per_filter_config", {})
    jwt = configs.get(JWT_AUTHN, {})
    authz = configs.get(EXT_AUTHZ, {})
    return jwt.get("requirement_name") == PUBLIC_REQUIREMENT and authz.get("disabled") is True


def test_envoy_turns_the_checks_off_on_exactly_the_declared_routes() -> None:
    grpc_paths, rest, http_served = _declared()
    catalog = load_catalog(DESCRIPTOR_SET)
    config = build_envoy_config(catalog, {}, listen_port=1, admin_port=2, descriptor_set=DESCRIPTOR_SET)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    public = [r for r in routes if _public(r)]
    by_grpc_path = {r["match"]["path"] for r in public if "path" in r["match"] and r["match"]["path"] in grpc_paths}
    assert by_grpc_path == grpc_paths
    rest_methods = {r["name"].split(" REST ")[0] for r in public if " REST " in r["name"]}
    assert rest_methods <= grpc_paths
    rest_bindings = {f'{r["match"]["headers"][0]["string_match"]["exact"]} {r["name"]}' for r in public
                     if " REST " in r["name"]}
    assert len(rest_bindings) == len(rest)
    served = {r["match"].get("path") or r["match"]["prefix"] + "*" for r in public if "route" in r
              and r["route"]["cluster"].endswith("_http")}
    assert served == http_served
    reflection = [r for r in public if r["match"].get("prefix") == "/grpc.reflection."]
    assert reflection, "reflection must stay reachable without a credential (grpcurl list/describe)"
    # Nothing else: every route that switches the checks off is one of those.
    for route in public:
        name, match = route["name"], route["match"]
        assert (match.get("path") in grpc_paths or name.split(" REST ")[0] in grpc_paths or route in reflection
                or route.get("route", {}).get("cluster", "").endswith("_http")
                or "direct_response" in route), f"route {name!r} is public but the contracts do not say so"
    # The filters: claims stripped first, then tokens, then API keys, all before the transcoder.
    names = [f["name"] for f in hcm["http_filters"]]
    assert names[:3] == ["envoy.filters.http.header_mutation", JWT_AUTHN, EXT_AUTHZ]
    assert names.index(EXT_AUTHZ) < names.index("envoy.filters.http.grpc_json_transcoder")
