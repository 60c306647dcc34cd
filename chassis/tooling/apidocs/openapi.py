"""OpenAPI 3.1 of the gateway's REST routes, generated from the contracts' descriptor set.

One operation per google.api.http binding, as Envoy's transcoder serves it: parameters and
bodies from chassis.tooling.apidocs.bindings, schemas from .schema (proto3 JSON as the gateway
prints it), error responses from .errors. Nothing here is written by hand per service.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from chassis.caching import method_rule
from chassis.tooling.api_lifecycle import deprecations, openapi_fields, openapi_headers
from chassis.tooling.apidocs.bindings import Binding, bindings, field_at
from chassis.tooling.apidocs.contracts import Contracts
from chassis.tooling.apidocs.errors import error_codes, error_response
from chassis.tooling.apidocs.rules import first_sentence
from chassis.tooling.apidocs.schema import SchemaBuilder
from chassis.tooling.apidocs.security import SECURITY_SCHEMES, security_requirements
from chassis.tooling.catalog import MeshMethod, MeshService

Document = dict[str, Any]
OPENAPI_VERSION = "3.1.0"
JSON_SCHEMA_DIALECT = "https://spec.openapis.org/oas/3.1/dialect/base"
"""OpenAPI 3.1's own dialect: JSON Schema 2020-12 with the OpenAPI vocabulary, said explicitly. Swagger UI (the
page at /docs) refuses any other value with a warning over the whole document."""
_VERBS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def build_openapi(contracts: Contracts, service: str | None = None) -> Document:
    """The OpenAPI document of the whole mesh, or of one service (its short name, e.g. ``agent``)."""
    services = [contracts.catalog.service(service)] if service else list(contracts.catalog)
    builder = SchemaBuilder(contracts)
    paths: dict[str, dict[str, Any]] = {}
    tags = []
    for mesh_service in services:
        for grpc_service in mesh_service.grpc_services:
            tags.append({"name": grpc_service, "description": contracts.service_comment(grpc_service)})
        for method in mesh_service.methods:
            for index, binding in enumerate(bindings(contracts, method)):
                if binding.verb not in _VERBS:
                    raise ValueError(f"{method.grpc_path}: HTTP method {binding.rule.verb} has no OpenAPI form")
                item = paths.setdefault(binding.path, {})
                if binding.verb in item:
                    other = item[binding.verb]["x-grpc-method"]
                    raise ValueError(f"{binding.verb.upper()} {binding.path} is bound twice: {other} and "
                                     f"{method.grpc_path}")
                item[binding.verb] = _operation(builder, mesh_service, binding, index)
    document: Document = {
        "openapi": OPENAPI_VERSION,
        "jsonSchemaDialect": JSON_SCHEMA_DIALECT,
        "info": _info(service),
        # Served by the gateway itself, so its own origin is the server.
        "servers": [{"url": "/", "description": "the protomesh gateway (Envoy) that serves this document"}],
        "tags": tags,
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(builder.components.items()))},
    }
    if SECURITY_SCHEMES:
        document["components"]["securitySchemes"] = SECURITY_SCHEMES
    return document


def _info(service: str | None) -> dict[str, Any]:
    try:
        version = metadata.version("protomesh")
    except metadata.PackageNotFoundError:
        version = "0"
    title = f"protomesh {service} service" if service else "protomesh"
    return {
        "title": title,
        "version": version,
        "description": "REST/JSON routes of the protomesh gateway, transcoded to gRPC by Envoy. Generated from "
                       "the contracts (gen/protomesh.binpb); field names are the .proto names, enums are names, "
                       "64-bit integers are strings.",
    }


def _operation(builder: SchemaBuilder, service: MeshService, binding: Binding, index: int) -> dict[str, Any]:
    contracts = builder.contracts
    method = binding.method
    comment = contracts.comment(f"{method.service}.{method.name}")
    operation: dict[str, Any] = {
        "operationId": f"{method.service}.{method.name}" + (f".{index}" if index else ""),
        "tags": [method.service],
    }
    if comment:
        operation["summary"] = first_sentence(comment)
        if operation["summary"] != " ".join(comment.split()):
            operation["description"] = comment
    parameters = _path_parameters(builder, binding) + _query_parameters(builder, binding)
    if parameters:
        operation["parameters"] = parameters
    if binding.rule.body:
        operation["requestBody"] = _request_body(builder, binding)
    operation["responses"] = _responses(builder, binding)
    security = security_requirements(method)
    if security is not None:
        operation["security"] = security
    if _deprecated(contracts, method):
        operation["deprecated"] = True
    lifecycle = deprecations(contracts.files).get(method.grpc_path)  # docs/versions.md
    if lifecycle is not None:
        operation.update(openapi_fields(lifecycle))
        operation["responses"]["200"].setdefault("headers", {}).update(openapi_headers(lifecycle))
    operation["x-grpc-method"] = method.grpc_path
    operation["x-grpc-service"] = service.name
    operation["x-idempotency-level"] = method.idempotency_level
    return operation


def _deprecated(contracts: Contracts, method: MeshMethod) -> bool:
    package, _, service_name = method.service.rpartition(".")
    for file in contracts.files:
        if file.package != package:
            continue
        for service in file.service:
            if service.name != service_name:
                continue
            if service.options.deprecated:
                return True
            return any(m.name == method.name and m.options.deprecated for m in service.method)
    return False


def _path_parameters(builder: SchemaBuilder, binding: Binding) -> list[dict[str, Any]]:
    request = builder.contracts.message(binding.method.input_type)
    parameters = []
    for variable in binding.variables:
        message, field = field_at(builder.contracts, request, variable.field_path)
        schema, _ = builder.field_schema(message, field)
        description = schema.pop("description", "")
        if variable.segments != "*":
            # A multi-segment variable such as {name=agents/*}: the whole matched text is the value.
            description = f"{description}\n\nMatches the path segments `{variable.segments}`.".strip()
        parameter = {"name": variable.field_path, "in": "path", "required": True, "schema": schema}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _query_parameters(builder: SchemaBuilder, binding: Binding) -> list[dict[str, Any]]:
    parameters = []
    for query in binding.query:
        schema, required = builder.field_schema(query.message, query.field)
        description = schema.pop("description", "")
        parameter: dict[str, Any] = {"name": query.name, "in": "query", "required": required, "schema": schema}
        if schema.get("type") == "array":
            parameter.update(style="form", explode=True)  # ?x=a&x=b, as the transcoder reads repeated fields
        if schema.get("deprecated"):
            parameter["deprecated"] = True
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _request_body(builder: SchemaBuilder, binding: Binding) -> dict[str, Any]:
    contracts = builder.contracts
    request = contracts.message(binding.method.input_type)
    if binding.rule.body == "*":
        top_level = {v.field_path for v in binding.variables if "." not in v.field_path}
        schema = builder.message_schema(request.full_name, exclude=top_level)
        # The gateway refuses a body field the contract does not know (its strict-JSON filter): the document
        # says so for the body's own fields (nested messages stay shared components, open for composition).
        schema["additionalProperties"] = False
        required = bool(schema.get("required"))
    else:
        schema, required = builder.field_schema(request, request.field(binding.rule.body))
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _responses(builder: SchemaBuilder, binding: Binding) -> dict[str, Any]:
    contracts = builder.contracts
    method = binding.method
    response = contracts.message(method.output_type)
    if binding.rule.response_body:
        schema, _ = builder.field_schema(response, response.field(binding.rule.response_body))
    else:
        schema = builder.ref(response.full_name)
    if method.server_streaming:
        # The transcoder streams server messages as the elements of one JSON array.
        schema = {"type": "array", "items": schema}
    responses: dict[str, Any] = {"200": {
        "description": contracts.comment(response.full_name) or "OK",
        "content": {"application/json": {"schema": schema}},
    }}
    for status, codes in error_codes(contracts, method, has_path_variables=bool(binding.variables)).items():
        responses[str(status)] = error_response(builder, status, codes)
    responses["default"] = error_response(builder, 500, ["INTERNAL", "UNKNOWN", "any other code"])
    responses["429"].setdefault("headers", {}).update(RATE_LIMIT_HEADERS)
    rule = method_rule(method.grpc_path)
    if rule is not None and binding.verb == "get":
        # A cached read (its contract's cache option, docs/caching.md): validators on the answer, and 304 when
        # If-None-Match names the current one.
        responses["200"].setdefault("headers", {}).update(_cache_headers(rule.cache_control))
        responses["304"] = {"description": "Not modified: If-None-Match named the current ETag; no body.",
                            "headers": _cache_headers(rule.cache_control)}
    return responses


RATE_LIMIT_HEADERS = {
    "Retry-After": {"description": "Seconds until the caller's quota refills.", "schema": {"type": "integer"}},
    "RateLimit-Policy": {"description": "The route class's quota and window (draft-ietf-httpapi-ratelimit-headers).",
                         "schema": {"type": "string"}},
    "RateLimit": {"description": "What is left of the quota now.", "schema": {"type": "string"}},
}
"""The headers of the gateway's 429 (chassis.tooling.gateway_ratelimit)."""


def _cache_headers(cache_control: str) -> dict[str, Any]:
    return {
        "ETag": {"description": "The answer's validator: send it back as If-None-Match.", "schema": {"type": "string"}},
        "Cache-Control": {"description": "How long a client may reuse the answer (always private).",
                          "schema": {"type": "string", "examples": [cache_control]}},
    }
