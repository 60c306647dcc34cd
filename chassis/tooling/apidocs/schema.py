"""Messages as JSON Schema 2020-12, following the proto3 JSON mapping as the gateway prints it.

Envoy's transcoder runs with ``preserve_proto_field_names`` and enums printed as names (see
chassis/tooling/envoy_config.py, print_options), so properties carry the .proto field names
(``grpc_services``) and enums are strings. Per the mapping: 64-bit integers are strings, bytes
are base64, floats may be "NaN"/"Infinity"/"-Infinity", and the well-known types have their own
JSON forms (Timestamp: RFC 3339, Duration: "1.5s", FieldMask: "a,b.c", Struct: any object, ...).

Every message and enum becomes one named schema (``components``), referenced with ``$ref``;
well-known types are inlined because their JSON form is a plain value.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2

from chassis.tooling.apidocs.contracts import Contracts, Message
from chassis.tooling.apidocs.rules import field_constraints, message_notes, validate_pb2

Schema = dict[str, Any]
FieldProto = descriptor_pb2.FieldDescriptorProto

_T = FieldProto.Type
_INT32 = {_T.TYPE_INT32, _T.TYPE_SINT32, _T.TYPE_SFIXED32}
_UINT32 = {_T.TYPE_UINT32, _T.TYPE_FIXED32}
_INT64 = {_T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64}
_UINT64 = {_T.TYPE_UINT64, _T.TYPE_FIXED64}
_FLOAT = {_T.TYPE_FLOAT, _T.TYPE_DOUBLE}

_NON_FINITE = {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}
_WRAPPERS = {
    "google.protobuf.DoubleValue": _T.TYPE_DOUBLE, "google.protobuf.FloatValue": _T.TYPE_FLOAT,
    "google.protobuf.Int64Value": _T.TYPE_INT64, "google.protobuf.UInt64Value": _T.TYPE_UINT64,
    "google.protobuf.Int32Value": _T.TYPE_INT32, "google.protobuf.UInt32Value": _T.TYPE_UINT32,
    "google.protobuf.BoolValue": _T.TYPE_BOOL, "google.protobuf.StringValue": _T.TYPE_STRING,
    "google.protobuf.BytesValue": _T.TYPE_BYTES,
}
WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time",
                                  "description": "RFC 3339 time in UTC, e.g. 2024-05-01T12:00:00Z."},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$",
                                 "description": "Seconds with an 's' suffix, e.g. \"1.5s\"."},
    "google.protobuf.FieldMask": {
        "type": "string", "description": "Comma-separated field paths in lowerCamelCase, e.g. \"name,labels\".",
    },
    "google.protobuf.Struct": {"type": "object", "description": "Any JSON object."},
    "google.protobuf.Value": {"description": "Any JSON value."},
    "google.protobuf.ListValue": {"type": "array", "description": "Any JSON array."},
    "google.protobuf.Empty": {"type": "object", "maxProperties": 0},
    "google.protobuf.Any": {
        "type": "object", "required": ["@type"],
        "properties": {"@type": {"type": "string", "description": "type.googleapis.com/<message full name>"}},
        "description": "A message of any type: its fields plus \"@type\" naming it.",
    },
}


def scalar_schema(kind: int) -> Schema:
    """The JSON form of a scalar proto type."""
    if kind in _INT32:
        return {"type": "integer", "format": "int32"}
    if kind in _UINT32:
        return {"type": "integer", "format": "int32", "minimum": 0}
    if kind in _INT64:
        return {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
    if kind in _UINT64:
        return {"type": "string", "format": "int64", "pattern": "^[0-9]+$"}
    if kind in _FLOAT:
        return {"anyOf": [{"type": "number", "format": "float" if kind == _T.TYPE_FLOAT else "double"}, _NON_FINITE]}
    if kind == _T.TYPE_BOOL:
        return {"type": "boolean"}
    if kind == _T.TYPE_BYTES:
        return {"type": "string", "contentEncoding": "base64"}
    return {"type": "string"}


def _rule_kind(field: FieldProto) -> tuple[str, Any]:
    """The field's JSON shape for the rules module, and its JSON zero value."""
    if field.type in _INT64 or field.type in _UINT64:
        return "int64", "0"
    if field.type in _INT32 or field.type in _UINT32:
        return "integer", 0
    if field.type in _FLOAT:
        return "number", 0
    return {_T.TYPE_BOOL: ("boolean", False), _T.TYPE_STRING: ("string", ""), _T.TYPE_BYTES: ("bytes", ""),
            _T.TYPE_ENUM: ("enum", None)}.get(field.type, ("message", None))


class SchemaBuilder:
    """Builds named schemas on demand; ``components`` holds every one referenced so far."""

    def __init__(self, contracts: Contracts, ref_prefix: str = "#/components/schemas/") -> None:
        self.contracts = contracts
        self.ref_prefix = ref_prefix
        self.components: dict[str, Schema] = {}

    def ref(self, full_name: str) -> Schema:
        """A reference to a message or enum (its schema is added to ``components``), or a well-known type inline."""
        name = full_name.lstrip(".")
        if name in WELL_KNOWN:
            return dict(WELL_KNOWN[name])
        if name in _WRAPPERS:
            return {**scalar_schema(_WRAPPERS[name]), "description": f"{name}: the wrapped value, or absent."}
        if name == "google.protobuf.NullValue":
            return {"type": "null"}
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursive messages refer to themselves
            if name in self.contracts.enums:
                self.components[name] = self._enum(name)
            else:
                self.components[name] = self.message_schema(name)
        return {"$ref": f"{self.ref_prefix}{name}"}

    def message_schema(self, full_name: str, exclude: Collection[str] = ()) -> Schema:
        """A message's object schema, without the fields in `exclude` (those bound to the path)."""
        message = self.contracts.message(full_name)
        properties: dict[str, Schema] = {}
        required: list[str] = []
        for field in message.proto.field:
            if field.name in exclude:
                continue
            properties[field.name], needed = self.field_schema(message, field)
            if needed:
                required.append(field.name)
        schema: Schema = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        schema.update(self._oneofs(message, exclude))
        description = self._message_description(message)
        if description:
            schema["description"] = description
        if message.proto.options.deprecated:
            schema["deprecated"] = True
        schema["x-proto-type"] = message.full_name
        return schema

    def field_schema(self, message: Message, field: FieldProto) -> tuple[Schema, bool]:
        """A field's schema, and whether the field is required (a field rule or field_behavior says so)."""
        schema = self._value_schema(field)
        notes: list[str] = []
        rules = field.options.Extensions[validate_pb2.field] if field.options.HasExtension(validate_pb2.field) else None
        required = False
        if rules is not None:
            kind, zero = self._rules_kind(field)
            constraints = field_constraints(rules, kind=kind, enum_values=self._enum_values(field),
                                            comments=self.contracts.comments, zero=zero)
            _merge(schema, constraints.keywords)
            notes = constraints.notes
            required = constraints.required
            if required and kind == "string":
                schema.setdefault("minLength", 1)  # a required proto3 string must not be empty
        behaviors = set(field.options.Extensions[field_behavior_pb2.field_behavior])
        required = required or field_behavior_pb2.REQUIRED in behaviors
        if field_behavior_pb2.OUTPUT_ONLY in behaviors:
            schema["readOnly"] = True
        if field.options.deprecated:
            schema["deprecated"] = True
        description = self.contracts.comment(f"{message.full_name}.{field.name}")
        if field_behavior_pb2.INPUT_ONLY in behaviors:
            # Not writeOnly: the gateway prints every field, so answers carry an input-only field too,
            # always empty, and a document forbidding it in answers would be wrong about the gateway.
            description = _join(description, "Input only: answers carry it empty.")
        if field.proto3_optional:
            description = _join(description, "Optional: absent when not set.")
        if notes:
            schema["x-validate"] = notes
            description = _join(description, _rules_text(notes))
        if field_behavior_pb2.INPUT_ONLY in behaviors and schema.get("type") == "string":
            # The field's rules bind what a client sends; an answer carries it empty.
            schema = {"anyOf": [schema, {"const": ""}]}
        if description:
            schema["description"] = description
        return schema, required

    def _value_schema(self, field: FieldProto) -> Schema:
        entry = self._map_entry(field)
        if entry is not None:
            key, value = entry.proto.field[0], entry.proto.field[1]
            schema: Schema = {"type": "object", "additionalProperties": self._single(value)}
            if key.type != _T.TYPE_STRING:
                # Map keys are always JSON strings; non-string keys are their decimal or bool text.
                schema["propertyNames"] = {"enum": ["true", "false"]} if key.type == _T.TYPE_BOOL \
                    else {"pattern": "^-?[0-9]+$"}
            return schema
        if field.label == FieldProto.Label.LABEL_REPEATED:
            return {"type": "array", "items": self._single(field)}
        return self._single(field)

    def _single(self, field: FieldProto) -> Schema:
        if field.type in (_T.TYPE_MESSAGE, _T.TYPE_ENUM, _T.TYPE_GROUP):
            return self.ref(field.type_name)
        return scalar_schema(field.type)

    def _map_entry(self, field: FieldProto) -> Message | None:
        if field.type != _T.TYPE_MESSAGE or field.label != FieldProto.Label.LABEL_REPEATED:
            return None
        entry = self.contracts.messages.get(field.type_name.lstrip("."))
        return entry if entry is not None and entry.is_map_entry else None

    def _rules_kind(self, field: FieldProto) -> tuple[str, Any]:
        if self._map_entry(field) is not None:
            return "map", None
        if field.label == FieldProto.Label.LABEL_REPEATED:
            return "repeated", None
        kind, zero = _rule_kind(field)
        if kind == "enum":
            values = self.contracts.enum(field.type_name).proto.value
            zero = next((v.name for v in values if v.number == 0), None)
        return kind, zero

    def _enum_values(self, field: FieldProto) -> dict[int, str]:
        if field.type != _T.TYPE_ENUM:
            return {}
        return {v.number: v.name for v in self.contracts.enum(field.type_name).proto.value}

    def _enum(self, full_name: str) -> Schema:
        enum = self.contracts.enum(full_name)
        lines = [self.contracts.comment(full_name)]
        for value in enum.proto.value:
            text = " ".join(self.contracts.comment(f"{full_name}.{value.name}").split())
            deprecated = " (deprecated)" if value.options.deprecated else ""
            lines.append(f"- {value.name}{deprecated}{': ' + text if text else ''}")
        schema: Schema = {"type": "string", "enum": [v.name for v in enum.proto.value],
                          "description": "\n".join(line for line in lines if line), "x-proto-type": full_name}
        if enum.proto.options.deprecated:
            schema["deprecated"] = True
        return schema

    def _oneofs(self, message: Message, exclude: Collection[str]) -> Schema:
        """At most one member of each real oneof (exactly one when buf.validate requires it)."""
        clauses: list[Schema] = []
        for index, oneof in enumerate(message.proto.oneof_decl):
            members = [f.name for f in message.proto.field
                       if f.HasField("oneof_index") and f.oneof_index == index and not f.proto3_optional
                       and f.name not in exclude]
            if not members:
                continue  # a proto3 `optional` field's synthetic oneof: presence, not a choice
            required = oneof.options.HasExtension(validate_pb2.oneof) and \
                oneof.options.Extensions[validate_pb2.oneof].required
            choices: list[Schema] = [{"required": [name]} for name in members]
            if not required:
                choices.append({"not": {"anyOf": [{"required": [name]} for name in members]}})
            clauses.append({"oneOf": choices, "x-oneof": oneof.name})
        if not clauses:
            return {}
        return {"allOf": clauses}

    def _message_description(self, message: Message) -> str:
        description = self.contracts.comment(message.full_name)
        if message.proto.options.HasExtension(validate_pb2.message):
            notes = message_notes(message.proto.options.Extensions[validate_pb2.message])
            if notes:
                description = _join(description, _rules_text(notes))
        return description


def _merge(schema: Schema, keywords: Schema) -> None:
    """Add rule keywords to a type's schema; partial item/key/value schemas merge into the existing ones."""
    for key, value in keywords.items():
        if key in ("items", "additionalProperties") and isinstance(schema.get(key), dict):
            target = schema[key]
            if "$ref" in target:
                schema[key] = {"allOf": [target, value]} if value else target
            else:
                _merge(target, value)
        elif key in schema:
            schema.setdefault("allOf", []).append({key: value})
        else:
            schema[key] = value


def _rules_text(notes: list[str]) -> str:
    return "Rules: " + "; ".join(note.rstrip(".") for note in notes) + "."


def _join(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part)
