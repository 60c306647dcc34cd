"""The OpenAPI document generated from the contracts: valid OpenAPI 3.1, one operation per HTTP binding,
parameters and bodies exactly as Envoy's transcoder binds them, schemas in the gateway's JSON form."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from chassis.tooling.apidocs import build_openapi, dump, load_contracts
from chassis.tooling.apidocs.bindings import openapi_path, path_variables
from chassis.tooling.apidocs.contracts import Contracts
from chassis.tooling.catalog import Catalog
from chassis.tooling.codegen import compile_files

Route = tuple[str, str, str]
"""(verb, OpenAPI path, gRPC path)"""

DEMO_PROTO = """
syntax = "proto3";
package protomesh.demo.v1;
import "google/api/annotations.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "buf/validate/validate.proto";

// DemoService has every binding shape the transcoder knows.
service DemoService {
  // ListThings lists the things on a shelf.
  rpc ListThings(ListThingsRequest) returns (ListThingsResponse) {
    option (google.api.http) = {get: "/v1/shelves/{shelf.id}/things"};
  }
  // PutThing stores the thing given as the body; the other fields are query parameters.
  rpc PutThing(PutThingRequest) returns (Thing) {
    option (google.api.http) = {
      put: "/v1/{name=shelves/*/things/*}" body: "thing" response_body: "payload"
      additional_bindings {post: "/v1/things:put" body: "*"}
    };
  }
  // OldCall is going away.
  rpc OldCall(Thing) returns (Thing) {
    option deprecated = true;
    option (google.api.http) = {delete: "/v1/old/{id}"};
  }
  // NoRest is gRPC only.
  rpc NoRest(Thing) returns (Thing);
}
message Shelf { string id = 1; string owner = 2; Range range = 3; }
message Range { google.protobuf.Timestamp start_time = 1; Range next = 2; }
message ListThingsRequest {
  Shelf shelf = 1;
  repeated string tags = 2;
  int64 min_size = 3 [(buf.validate.field).int64.gte = 1];
  Kind kind = 4;
  map<string, string> labels = 5;
  repeated Shelf shelves = 6;
  google.protobuf.Struct filter = 7;
  // Where to go on.
  optional string cursor = 8 [(buf.validate.field).string = {min_len: 2, max_len: 9, pattern: "^[a-z]+$"}];
}
message ListThingsResponse { repeated Thing things = 1; }
enum Kind { KIND_UNSPECIFIED = 0; KIND_BIG = 1; }
// A thing.
message Thing {
  string id = 1;
  // Its size in bytes.
  uint64 size = 2;
  oneof shape { string round = 3; string square = 4; }
  string legacy = 5 [deprecated = true];
  google.protobuf.Struct payload = 6;
  bytes blob = 7;
  double weight = 8;
}
message PutThingRequest { string name = 1; Thing thing = 2; bool dry_run = 3; }
"""


@pytest.fixture(scope="module")
def contracts() -> Contracts:
    return load_contracts()


@pytest.fixture(scope="module")
def document(contracts: Contracts) -> dict[str, Any]:
    return build_openapi(contracts)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("demo")
    (folder / "demo.proto").write_text(DEMO_PROTO)
    descriptor_set = folder / "demo.binpb"
    descriptor_set.write_bytes(compile_files(["demo.proto"], folder, source_info=True).SerializeToString())
    document = build_openapi(load_contracts(descriptor_set))
    validate(document)
    return document


def spec_routes(document: dict[str, Any]) -> list[Route]:
    return [(verb.upper(), path, operation["x-grpc-method"])
            for path, item in document["paths"].items() for verb, operation in item.items()]


def catalog_routes(catalog: Catalog) -> list[Route]:
    return [(rule.verb, openapi_path(rule.path), method.grpc_path)
            for method in catalog.methods() for rule in method.http_rules]


def operation(document: dict[str, Any], verb: str, path: str) -> dict[str, Any]:
    return document["paths"][path][verb.lower()]


def params(op: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in op.get("parameters", []) if p["in"] == where}


def validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A Draft 2020-12 validator of `schema` whose $refs resolve inside the document."""
    registry: Registry = Registry().with_resource("urn:doc", Resource(document, DRAFT202012))
    return jsonschema.Draft202012Validator({"$ref": "urn:doc#" + schema["$ref"].removeprefix("#")}
                                           if "$ref" in schema else schema, registry=registry)


# -- the real contracts ---------------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any], contracts: Contracts) -> None:
    validate(document)
    assert document["openapi"] == "3.1.0"
    for service in contracts.catalog.names:
        validate(build_openapi(contracts, service))
    print(f"{len(spec_routes(document))} operations, {len(document['components']['schemas'])} schemas")


def test_yaml_and_json_forms_hold_the_same_document(document: dict[str, Any]) -> None:
    import json

    import yaml

    assert yaml.safe_load(dump(document, "yaml")) == json.loads(dump(document))


def test_every_http_binding_is_exactly_one_operation(document: dict[str, Any], contracts: Contracts) -> None:
    spec = spec_routes(document)
    expected = catalog_routes(contracts.catalog)
    assert len(spec) == len(set(spec)), "an operation appears twice"
    assert sorted(spec) == sorted(expected)
    assert all(m.http_rules for m in contracts.catalog.methods()), "a method without REST route: check it is meant"


def test_one_service_document_holds_its_routes_only(contracts: Contracts) -> None:
    for service in contracts.catalog:
        routes = spec_routes(build_openapi(contracts, service.name))
        assert {grpc for _, _, grpc in routes} == {m.grpc_path for m in service.methods if m.http_rules}


def test_path_query_and_body_parameters_follow_the_rules(document: dict[str, Any], contracts: Contracts) -> None:
    for method in contracts.catalog.methods():
        request = contracts.message(method.input_type)
        for rule in method.http_rules:
            op = operation(document, rule.verb, openapi_path(rule.path))
            variables = [v.field_path for v in path_variables(rule.path)]
            assert list(params(op, "path")) == variables, method.grpc_path
            assert all(p["required"] for p in params(op, "path").values())
            if rule.body == "*":
                assert not params(op, "query"), f"{method.grpc_path}: body '*' leaves no query parameters"
                body = op["requestBody"]["content"]["application/json"]["schema"]
                if "$ref" in body:
                    body = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
                assert set(body["properties"]) == {f.name for f in request.proto.field} - set(variables)
            else:
                assert "requestBody" not in op
                # Our contracts' GET/DELETE requests are flat: every non-path field is a query parameter.
                bindable = {f.name for f in request.proto.field if f.name not in variables}
                assert set(params(op, "query")) == bindable, method.grpc_path


def test_schemas_use_the_gateways_json_names_and_enum_names(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    info = schemas["protomesh.common.v1.ServiceInfo"]["properties"]
    assert "grpc_services" in info and "grpcServices" not in info
    status = schemas["protomesh.agent.v1.AgentStatus"]
    assert status["type"] == "string" and "AGENT_STATUS_IDLE" in status["enum"]
    assert schemas["protomesh.agent.v1.Agent"]["properties"]["create_time"]["format"] == "date-time"


def test_field_rules_become_constraints(document: dict[str, Any]) -> None:
    # A request body is its message's schema inline, closed: the gateway refuses fields it does not know.
    register = operation(document, "POST", "/v1/agents")["requestBody"]["content"]["application/json"]["schema"]
    assert register["required"] == ["name", "type"] and register["additionalProperties"] is False
    check = validator(document, {"$ref": "#/paths/~1v1~1agents/post/requestBody/content/application~1json/schema"})
    assert check.is_valid({"name": "calc 1", "type": "calculator", "labels": {"team": "a"}})
    for bad in ({"type": "calculator"}, {"name": "x", "type": "calculator", "nmae": "typo"},
                {"name": " x", "type": "calculator"}, {"name": "x", "type": "nope"},
                {"name": "x", "type": "calculator", "labels": {"Bad Key": "v"}},
                {"name": "x", "type": "calculator", "labels": {f"k{i}": "v" for i in range(33)}},
                {"name": "x", "type": "calculator", "capabilities": ["UPPER"]}):
        assert not check.is_valid(bad), bad
    page_size = params(operation(document, "GET", "/v1/agents"), "query")["page_size"]["schema"]
    assert (page_size["minimum"], page_size["maximum"]) == (0, 1000)


def test_error_responses_carry_the_status_body(document: dict[str, Any]) -> None:
    get_agent = operation(document, "GET", "/v1/agents/{agent_id}")["responses"]
    assert {"200", "400", "404", "503", "default"} <= set(get_agent)
    register = operation(document, "POST", "/v1/agents")["responses"]
    assert "409" in register and "404" not in register
    status = validator(document, register["400"]["content"]["application/json"]["schema"])
    assert status.is_valid({"code": 3, "message": "bad", "details": [{
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "field_violations": [{"field": "name", "description": "required"}]}]})
    assert not status.is_valid({"code": 3, "message": "bad", "details": [{"@type": "type.googleapis.com/x.Y"}]})


def test_a_method_removed_from_the_catalog_is_a_missing_route(contracts: Contracts) -> None:
    """What the e2e comparison relies on: a route in the gateway but not in the spec is detected."""
    service = contracts.catalog.services[0]
    dropped = service.methods[0]
    smaller = dataclasses.replace(service, methods=service.methods[1:])
    catalog = dataclasses.replace(contracts.catalog,
                                  services=[smaller if s is service else s for s in contracts.catalog.services])
    spec = spec_routes(build_openapi(Contracts(contracts.files, catalog)))
    missing = set(catalog_routes(contracts.catalog)) - set(spec)
    assert missing == {(r.verb, openapi_path(r.path), dropped.grpc_path) for r in dropped.http_rules}


# -- every binding shape, on a contract made for it ---------------------------------------------


def test_nested_path_variables_and_dotted_query_parameters(demo: dict[str, Any]) -> None:
    op = operation(demo, "GET", "/v1/shelves/{shelf.id}/things")
    assert list(params(op, "path")) == ["shelf.id"]
    # Maps, repeated messages and Struct cannot be query parameters; cycles stop (range.next).
    assert list(params(op, "query")) == ["shelf.owner", "shelf.range.start_time", "tags", "min_size", "kind",
                                         "cursor"]
    query = params(op, "query")
    assert query["tags"]["schema"]["type"] == "array" and query["tags"]["explode"] is True
    assert query["shelf.range.start_time"]["schema"]["format"] == "date-time"
    assert query["min_size"]["schema"]["type"] == "string"  # int64 is a JSON string
    assert "minimum" not in query["min_size"]["schema"] and "gte: 1" in query["min_size"]["description"]
    cursor = query["cursor"]["schema"]
    assert (cursor["minLength"], cursor["maxLength"], cursor["pattern"]) == (2, 9, "^[a-z]+$")
    assert "Optional" in query["cursor"]["description"]


def test_sub_field_body_response_body_and_additional_bindings(demo: dict[str, Any]) -> None:
    put = operation(demo, "PUT", "/v1/{name}")
    assert put["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/protomesh.demo.v1.Thing"}
    assert list(params(put, "query")) == ["dry_run"]
    assert "shelves/*/things/*" in params(put, "path")["name"]["description"]
    assert put["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "object"  # payload: Struct
    post = operation(demo, "POST", "/v1/things:put")
    assert post["x-grpc-method"] == put["x-grpc-method"] and post["operationId"].endswith(".1")
    assert not params(post, "query")
    assert sorted(spec_routes(demo)) == sorted([
        ("DELETE", "/v1/old/{id}", "/protomesh.demo.v1.DemoService/OldCall"),
        ("GET", "/v1/shelves/{shelf.id}/things", "/protomesh.demo.v1.DemoService/ListThings"),
        ("POST", "/v1/things:put", "/protomesh.demo.v1.DemoService/PutThing"),
        ("PUT", "/v1/{name}", "/protomesh.demo.v1.DemoService/PutThing"),
    ])


def test_oneofs_deprecation_and_scalar_forms(demo: dict[str, Any]) -> None:
    assert operation(demo, "DELETE", "/v1/old/{id}")["deprecated"] is True
    thing = demo["components"]["schemas"]["protomesh.demo.v1.Thing"]
    assert thing["properties"]["legacy"]["deprecated"] is True
    assert thing["properties"]["size"]["description"] == "Its size in bytes."
    check = validator(demo, {"$ref": "#/components/schemas/protomesh.demo.v1.Thing"})
    assert check.is_valid({"id": "a", "round": "r", "size": "18446744073709551615", "weight": "NaN", "blob": "AA=="})
    assert check.is_valid({"id": "a"})
    assert not check.is_valid({"round": "r", "square": "s"}), "two members of one oneof"
    assert not check.is_valid({"size": 5}), "uint64 is a string"


def test_descriptor_path_is_the_default(contracts: Contracts) -> None:
    assert Path(contracts.catalog.descriptor_set).name == "protomesh.binpb"


def test_access_caching_and_rate_limits_show_in_the_responses(document: dict[str, Any]) -> None:
    """401/403 from the access declaration, 304 and validators from the cache option, 429's quota headers."""
    cached = operation(document, "get", "/v1/agents/{agent_id}")  # agents.read, cached (GetAgent's options)
    assert {"401", "403", "304", "429"} <= set(cached["responses"])
    assert {"ETag", "Cache-Control"} <= set(cached["responses"]["200"]["headers"])
    assert "content" not in cached["responses"]["304"] and "ETag" in cached["responses"]["304"]["headers"]
    assert {"Retry-After", "RateLimit-Policy", "RateLimit"} <= set(cached["responses"]["429"]["headers"])
    public = operation(document, "get", "/health")  # public: no credential, so neither 401 nor 403
    assert not {"401", "403", "304"} & set(public["responses"])
    written = operation(document, "post", "/v1/agents")  # a write: never cached
    assert {"401", "403"} <= set(written["responses"]) and "304" not in written["responses"]
