"""google.api.http rules as the gateway binds them: path variables, the body, and query parameters.

Envoy's grpc_json_transcoder follows google/api/http.proto: path variables fill the named
(possibly nested, dotted) fields; ``body: "*"`` maps every field not bound by the path to the
JSON body (no query parameters then); ``body: "<field>"`` maps that one top-level field to the
body; every other field may be given as a query parameter. Query parameters reach primitive
fields only — scalars, enums, repeated scalars (``?x=a&x=b``) and fields of non-repeated nested
messages as dotted names (``?range.start_time=...``) — never maps or repeated messages. The
well-known types whose JSON form is a string (Timestamp, Duration, FieldMask, wrappers) take
one value like a scalar.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf import descriptor_pb2

from chassis.tooling.apidocs.contracts import Contracts, Message
from chassis.tooling.catalog import HttpRule, MeshMethod

FieldProto = descriptor_pb2.FieldDescriptorProto

_VARIABLE = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")
_STRING_LIKE = {
    "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask",
    "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue",
}


@dataclass(frozen=True)
class PathVariable:
    """One ``{field.path=segments}`` of a path template."""

    field_path: str
    """Dotted field path in the request message, e.g. ``agent_id`` or ``parent.name``."""
    segments: str
    """What it matches: ``*`` (one segment, the default), ``**`` or a pattern like ``agents/*``."""


@dataclass(frozen=True)
class QueryField:
    """A request field a query parameter sets."""

    name: str
    """The parameter's name: the dotted field path, e.g. ``page_size`` or ``range.start_time``."""
    message: Message
    """The message that declares the field (the request or a nested message)."""
    field: FieldProto


@dataclass(frozen=True)
class Binding:
    """One REST route of a method."""

    method: MeshMethod
    rule: HttpRule
    path: str
    """OpenAPI path: the template with ``{var=pattern}`` shortened to ``{var}``."""
    variables: list[PathVariable]
    query: list[QueryField]

    @property
    def verb(self) -> str:
        """Lower-case HTTP method, as OpenAPI's path item keys."""
        return self.rule.verb.lower()


def openapi_path(template: str) -> str:
    """``/v1/{name=agents/*}:run`` -> ``/v1/{name}:run``."""
    return _VARIABLE.sub(lambda m: "{" + m[1] + "}", template)


def path_variables(template: str) -> list[PathVariable]:
    """The variables of a path template, in order."""
    return [PathVariable(m[1], m[2] or "*") for m in _VARIABLE.finditer(template)]


def bindings(contracts: Contracts, method: MeshMethod) -> list[Binding]:
    """Every REST route of a method (the primary rule first), with its query parameters."""
    request = contracts.message(method.input_type)
    found = []
    for rule in method.http_rules:
        variables = path_variables(rule.path)
        query = [] if rule.body == "*" else list(_query_fields(
            contracts, request, prefix="", bound={v.field_path for v in variables},
            body=rule.body, seen=frozenset({request.full_name})))
        found.append(Binding(method, rule, openapi_path(rule.path), variables, query))
    return found


def _query_fields(contracts: Contracts, message: Message, *, prefix: str, bound: set[str], body: str,
                  seen: frozenset[str]) -> Iterator[QueryField]:
    for field in message.proto.field:
        name = f"{prefix}{field.name}"
        if name in bound or (not prefix and field.name == body):
            continue
        if field.type not in (FieldProto.Type.TYPE_MESSAGE, FieldProto.Type.TYPE_GROUP):
            yield QueryField(name, message, field)
            continue
        type_name = field.type_name.lstrip(".")
        if type_name in _STRING_LIKE:
            yield QueryField(name, message, field)
            continue
        nested = contracts.messages.get(type_name)
        repeated = field.label == FieldProto.Label.LABEL_REPEATED
        if nested is None or repeated or nested.is_map_entry or type_name in seen:
            continue  # maps, repeated messages, Struct/Any and cycles cannot be query parameters
        if type_name.startswith("google.protobuf."):
            continue
        yield from _query_fields(contracts, nested, prefix=f"{name}.", bound=bound, body=body,
                                 seen=seen | {type_name})


def field_at(contracts: Contracts, message: Message, dotted: str) -> tuple[Message, FieldProto]:
    """The field a dotted path names, with the message that declares it."""
    *parents, last = dotted.split(".")
    for part in parents:
        message = contracts.message(message.field(part).type_name)
    return message, message.field(last)
