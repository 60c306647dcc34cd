"""What a `call` task may name: a mesh gRPC method in the descriptor set, and how its `with` maps onto the request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import descriptor, descriptor_pool

from chassis.contracts import mesh_grpc_services
from services.workflow.dsl.expressions import expression_text

# Messages whose JSON form is free (any object, a string, a number): no field check inside them.
_FREE_JSON = frozenset({
    "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue", "google.protobuf.Any",
    "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask",
    "google.protobuf.StringValue", "google.protobuf.Int64Value", "google.protobuf.Int32Value",
    "google.protobuf.BoolValue", "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
    "google.protobuf.UInt32Value", "google.protobuf.UInt64Value", "google.protobuf.BytesValue",
})
_NUMBERS = frozenset({
    descriptor.FieldDescriptor.TYPE_DOUBLE, descriptor.FieldDescriptor.TYPE_FLOAT,
    descriptor.FieldDescriptor.TYPE_INT32, descriptor.FieldDescriptor.TYPE_INT64,
    descriptor.FieldDescriptor.TYPE_UINT32, descriptor.FieldDescriptor.TYPE_UINT64,
    descriptor.FieldDescriptor.TYPE_SINT32, descriptor.FieldDescriptor.TYPE_SINT64,
    descriptor.FieldDescriptor.TYPE_FIXED32, descriptor.FieldDescriptor.TYPE_FIXED64,
    descriptor.FieldDescriptor.TYPE_SFIXED32, descriptor.FieldDescriptor.TYPE_SFIXED64,
})


def find_method(full_name: str) -> descriptor.MethodDescriptor | None:
    """The method `package.Service/Method` of a mesh contract, or None."""
    service_name, _, method_name = full_name.partition("/")
    if not method_name:
        return None
    mesh_grpc_services()  # imports every generated module, so the default pool holds every contract
    try:
        service = descriptor_pool.Default().FindServiceByName(service_name)
    except KeyError:
        return None
    return service.methods_by_name.get(method_name)


def mesh_service_of(method: descriptor.MethodDescriptor) -> str:
    """The mesh service (registry name) serving a method: `protomesh.<service>.v1...` → `<service>`."""
    return method.containing_service.full_name.split(".")[1]


def check_request(message: descriptor.Descriptor, value: Any, where: str, errors: list[tuple[str, str]]) -> None:
    """Report each key of `value` that is not a field of `message` (and literals of the wrong JSON type)."""
    if expression_text(value) is not None or message.full_name in _FREE_JSON:
        return
    if not isinstance(value, Mapping):
        errors.append((where, f"must be an object (the fields of {message.full_name})"))
        return
    by_json = {f.json_name: f for f in message.fields}
    for key, item in value.items():
        field = message.fields_by_name.get(str(key)) or by_json.get(str(key))
        path = f"{where}.{key}"
        if field is None:
            known = ", ".join(f.name for f in message.fields)
            errors.append((path, f"{message.full_name} has no field {key!r} (fields: {known})"))
            continue
        _check_value(field, item, path, errors)


def _check_value(field: descriptor.FieldDescriptor, value: Any, where: str, errors: list[tuple[str, str]]) -> None:
    if expression_text(value) is not None or value is None:
        return
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        if not isinstance(value, Mapping):
            errors.append((where, "must be an object (a map)"))
        return
    if field.is_repeated:
        if not isinstance(value, list):
            errors.append((where, "must be a list"))
            return
        for index, item in enumerate(value):
            _check_single(field, item, f"{where}[{index}]", errors)
        return
    _check_single(field, value, where, errors)


def _check_single(field: descriptor.FieldDescriptor, value: Any, where: str, errors: list[tuple[str, str]]) -> None:
    if expression_text(value) is not None:
        return
    if field.type == descriptor.FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
        check_request(field.message_type, value, where, errors)
    elif field.type == descriptor.FieldDescriptor.TYPE_BOOL and not isinstance(value, bool):
        errors.append((where, "must be true or false"))
    elif field.type in _NUMBERS and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
        errors.append((where, "must be a number"))
    elif field.type == descriptor.FieldDescriptor.TYPE_STRING and not isinstance(value, str):
        errors.append((where, "must be a string"))
    elif field.type == descriptor.FieldDescriptor.TYPE_ENUM and not isinstance(value, (str, int)):
        errors.append((where, f"must be a value of {field.enum_type.full_name if field.enum_type else 'its enum'}"))
