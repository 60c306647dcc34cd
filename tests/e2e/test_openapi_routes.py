"""The generated OpenAPI against the real gateway: documented routes answer with the documented shape,
and Envoy serves no REST route the document lacks (OWASP API9: no undocumented endpoint)."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from chassis.tooling.apidocs import build_openapi, load_contracts
from chassis.tooling.apidocs.bindings import openapi_path
from chassis.tooling.catalog import load_catalog
from chassis.tooling.infra.ports import LOOPBACK
from chassis.tooling.mesh_testing import RestClient, running_mesh
from chassis.tooling.supervisor import Mesh

# Routes of the gateway's route table that are not REST routes, so not in the OpenAPI document:
# gRPC server reflection (grpcurl list/describe) is native gRPC only; the transcoder maps no path to it.
# Routes answered by Envoy itself (direct_response: the API documents once the gateway serves them)
# reach no service and are not operations of the API they describe.
EXCLUDED_ROUTE_PREFIXES = ("/grpc.reflection.",)
_DOC = "urn:protomesh:openapi"


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    with running_mesh(replicas=1) as started:
        yield started


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> RestClient:
    return RestClient.for_mesh(mesh)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_openapi(load_contracts())


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for verb, operation in item.items():
            yield verb.upper(), path, operation


def check(document: dict[str, Any], schema: dict[str, Any], instance: Any, what: str) -> None:
    """Validate with Draft 2020-12, $refs resolved inside the document; fail listing every error."""
    registry: Registry = Registry().with_resource(_DOC, Resource(document, DRAFT202012))
    root = {"$ref": _DOC + schema["$ref"]} if "$ref" in schema else schema
    errors = list(jsonschema.Draft202012Validator(root, registry=registry).iter_errors(instance))
    assert not errors, f"{what}: " + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def json_schema(response: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return schema


def test_every_get_without_path_parameters_answers_the_documented_shape(
        rest: RestClient, document: dict[str, Any]) -> None:
    checked = 0
    for verb, path, operation in operations(document):
        parameters = operation.get("parameters", [])
        if verb != "GET" or any(p["in"] == "path" or p["required"] for p in parameters):
            continue
        reply = rest.get(path)
        assert reply.status == 200, f"GET {path}: {reply.status} {reply.body}"
        check(document, json_schema(operation["responses"]["200"]), reply.body, f"GET {path}")
        checked += 1
    print(f"GET operations answered with their 200 schema: {checked}")
    assert checked >= 10


def test_creates_with_an_empty_body_fail_with_the_documented_error(
        rest: RestClient, document: dict[str, Any]) -> None:
    checked = 0
    for verb, path, operation in operations(document):
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if verb != "POST" or "{" in path or body is None:
            continue
        schema = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]] if "$ref" in body else body
        if not schema.get("required"):
            continue  # nothing is required, so an empty body may be a valid request
        reply = rest.post(path, {})
        assert reply.status == 400, f"POST {path} {{}}: {reply.status} {reply.body}"
        check(document, json_schema(operation["responses"]["400"]), reply.body, f"POST {path} 400")
        assert set(reply.field_violations()) >= set(schema["required"]) - {"config"}, reply.body
        checked += 1
    print(f"POST operations refusing an empty body with the documented 400: {checked}")
    assert checked >= 3


def _config_dump(mesh: Mesh) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{mesh.admin_port}/config_dump", timeout=10) as response:
        dump: dict[str, Any] = json.load(response)
    return dump


def _gateway(dump: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The listener's routes and its grpc_json_transcoder config, as Envoy loaded them."""
    routes: list[dict[str, Any]] = []
    transcoders: list[dict[str, Any]] = []
    for config in dump["configs"]:
        for listener in config.get("static_listeners", []):
            for chain in listener["listener"]["filter_chains"]:
                for network_filter in chain["filters"]:
                    hcm = network_filter["typed_config"]
                    for host in hcm.get("route_config", {}).get("virtual_hosts", []):
                        routes.extend(host["routes"])
                    transcoders.extend(f["typed_config"] for f in hcm.get("http_filters", [])
                                       if f["name"] == "envoy.filters.http.grpc_json_transcoder")
    assert routes and len(transcoders) == 1, "the gateway's listener has no routes or no transcoder"
    return routes, transcoders[0]


def _transcoded_routes(transcoder: dict[str, Any]) -> set[tuple[str, str, str]]:
    """Every REST route the transcoder serves: the HTTP rules of its services in the descriptor it loaded."""
    files = descriptor_pb2.FileDescriptorSet.FromString(Path(transcoder["proto_descriptor"]).read_bytes()).file
    served = set(transcoder["services"])
    found = set()
    for file in files:
        for service in file.service:
            name = f"{file.package}.{service.name}"
            if name not in served:
                continue
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                for binding in (rule, *rule.additional_bindings):
                    verb = binding.WhichOneof("pattern")
                    path = binding.custom.path if verb == "custom" else getattr(binding, verb)
                    found.add((verb.upper(), openapi_path(path), f"/{name}/{method.name}"))
    return found


def _covers(route: dict[str, Any], operation: tuple[str, str, str]) -> bool:
    """Whether a route of Envoy's table takes this operation's calls.

    Routes on the gRPC path (exact or a package prefix) take the transcoded call; routes on a REST path
    (a regex and a :method header, e.g. for a larger body limit) take the call as the client sent it.
    """
    verb, path, grpc_path = operation
    match = route["match"]
    if "path" in match:
        return bool(match["path"] == grpc_path)
    if "prefix" in match:
        return grpc_path.startswith(match["prefix"])
    if "safe_regex" in match and path:
        methods = [h["string_match"]["exact"] for h in match.get("headers", []) if h["name"] == ":method"]
        sample = re.sub(r"\{[^}]+\}", "sample", path)
        return re.fullmatch(match["safe_regex"]["regex"], sample) is not None and methods in ([], [verb])
    return False


def test_the_gateway_route_table_and_the_document_match(mesh: Mesh, rest: RestClient,
                                                        document: dict[str, Any]) -> None:
    routes, transcoder = _gateway(_config_dump(mesh))
    documented = {(verb, path, op["x-grpc-method"]) for verb, path, op in operations(document)}
    transcoded = _transcoded_routes(transcoder)
    assert transcoded - documented == set(), "REST routes the gateway serves but the document lacks"
    assert documented - transcoded == set(), "documented routes the gateway does not serve"

    # The OAuth / OIDC endpoints a replica serves itself over HTTP (`http_served`, not transcoded) are
    # described by OIDC discovery, not by the OpenAPI document: they must be exactly the declared paths.
    served = load_catalog().http_served
    http_clusters = {s.cluster for s in served}
    to_http = [r for r in routes if r.get("route", {}).get("cluster") in http_clusters]
    declared = {rule.path for s in served for m in s.methods for rule in m.http_rules}
    assert {r["match"].get("path") for r in to_http} == declared
    kept = [r for r in routes if not r["match"].get("prefix", "").startswith(EXCLUDED_ROUTE_PREFIXES)
            and "direct_response" not in r and r not in to_http]
    excluded = len(routes) - len(kept)

    grpc_paths = {grpc for _, _, grpc in documented}
    unrouted = sorted(g for g in grpc_paths if not any(_covers(r, ("", "", g)) for r in kept))
    assert not unrouted, f"documented operations no route sends anywhere: {unrouted}"
    undocumented = [r.get("name", r["match"]) for r in kept if not any(_covers(r, op) for op in documented)]
    assert not undocumented, f"gateway routes with no documented operation: {undocumented}"
    rest_routes = sum(1 for r in kept if "safe_regex" in r["match"])

    # A path the document lacks is refused by the gateway itself, not passed on.
    assert rest.get("/v1/undocumented").status == 404
    print(f"gateway: {len(routes)} routes ({excluded} excluded: gRPC reflection, direct responses, "
          f"{len(to_http)} HTTP-served OAuth routes; "
          f"{rest_routes} on REST paths), {len(transcoded)} transcoded REST routes; "
          f"document: {len(documented)} operations; differences: 0")


def test_the_gateway_serves_the_documents_generated_from_the_contracts(mesh: Mesh, document: dict[str, Any]) -> None:
    from chassis.tooling.apidocs import build_asyncapi

    def fetch(path: str) -> tuple[str, bytes]:
        with urllib.request.urlopen(f"http://{mesh.gateway}{path}", timeout=10) as reply:
            return reply.headers["content-type"], reply.read()

    kind, body = fetch("/openapi.json")
    assert kind == "application/json" and json.loads(body) == document
    kind, body = fetch("/asyncapi.json")
    assert kind == "application/json" and json.loads(body) == build_asyncapi(load_contracts())
    kind, body = fetch("/openapi/agent.yaml")
    agent = build_openapi(load_contracts(), "agent")
    text = body.decode()
    assert kind == "application/yaml" and text.startswith("openapi: ") and agent["info"]["title"] in text
    # Only GET: the documents are not an RPC, and another method on their path is unknown to the gateway.
    assert RestClient.for_mesh(mesh).post("/openapi.json", {}).status == 404
