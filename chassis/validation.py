"""Field rules declared in the contracts (buf.validate options), checked before a servicer runs.

A request that breaks any rule fails as INVALID_ARGUMENT with a google.rpc.BadRequest naming every
bad field (chassis.errors.InvalidArgument), the same answer the hand-written checks give. Rules that
need the database stay in the servicers. The rules themselves live in the .proto files; shared ones
(resource names, display text, labels) in proto/protomesh/common/v1/rules.proto.

Field paths are the proto field names joined the way the services' own checks name them:
`config.base_url`, `layers[0].name`, `labels.team`, and `labels["Bad Key"]` for a map key that is
not a plain identifier (the convention services/context/sanitize.py follows for JSON keys).
A message-level CEL rule has no field of its own; it names one by starting its `id` with the
field's name (`id: "ttl.not_with_expire_time"` names `ttl`); otherwise it is reported as `request`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
import protovalidate
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from chassis.errors import FieldViolation, InvalidArgument, Violations

if TYPE_CHECKING:
    from google._upb._message import Descriptor as UpbDescriptor

    # What a message's DESCRIPTOR is typed as: the pure-Python class or the upb one actually used.
    MessageDescriptor: TypeAlias = Descriptor | UpbDescriptor

Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]

# buf.validate.message, .oneof and .field share the number 1159 on their options messages. Looking
# for its tag in the serialized options works whichever descriptor pool the message comes from and
# whether or not validate_pb2 is loaded; a false hit (those two bytes inside some other option's
# value) only costs a validation that finds nothing.
logger = logging.getLogger(__name__)

_RULES_TAG = b"\xba\x48"  # the varint (1159 << 3) | 2: field 1159, length-delimited
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_WHOLE_REQUEST = "request"
"""The field named by a message-level rule that does not name one itself (as for undecodable requests)."""

_validator = protovalidate.Validator()
"""One validator for the process: it compiles each message type's rules once and keeps them."""
_ruled: dict[type, bool] = {}
"""Per message class: whether it or any message it can contain declares a rule."""


def _declares_rules(item: Any) -> bool:
    return bool(item.has_options) and _RULES_TAG in item.GetOptions().SerializeToString()


def _has_rules(descriptor: MessageDescriptor, seen: set[str]) -> bool:
    if descriptor.full_name in seen:
        return False  # already being looked at further up (recursive types)
    seen.add(descriptor.full_name)
    if _declares_rules(descriptor) or any(_declares_rules(oneof) for oneof in descriptor.oneofs):
        return True
    for field in descriptor.fields:
        if _declares_rules(field):
            return True
        # Map fields are messages too (their entry type), so map values are searched as well.
        if field.message_type is not None and _has_rules(field.message_type, seen):
            return True
    return False


_JSON_TYPES = frozenset({"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"})
_json_holders: dict[str, bool] = {}
"""Per message type (full name): whether it or any message it can contain is a JSON payload type."""
_NUL_TEXT = "contains a NUL character (\\u0000); remove it"
"""The answer chassis.interceptors gives when PostgreSQL text refuses a NUL; JSON payloads get the same."""


def _reaches_json(descriptor: MessageDescriptor, seen: set[str]) -> bool:
    name = descriptor.full_name
    if name in _JSON_TYPES:
        return True
    if name in seen:
        return False  # already being looked at further up (recursive types)
    seen.add(name)
    return any(f.message_type is not None and _reaches_json(f.message_type, seen) for f in descriptor.fields)


def _holds_json(descriptor: MessageDescriptor) -> bool:
    # Cached per type only from a search started at that type: a result found part-way through
    # another type's search may have been cut short by the recursion guard.
    holds = _json_holders.get(descriptor.full_name)
    if holds is None:
        holds = _json_holders[descriptor.full_name] = _reaches_json(descriptor, set())
    return holds


def _nul_in_json(value: Any, path: str) -> list[str]:
    """Paths inside a Struct, Value or ListValue whose key or string contains a NUL."""
    name = value.DESCRIPTOR.full_name
    if name == "google.protobuf.Struct":
        found: list[str] = []
        for key, item in value.fields.items():
            found += [path + _key(key)] if "\x00" in key else _nul_in_json(item, path + _key(key))
        return found
    if name == "google.protobuf.ListValue":
        return [p for i, item in enumerate(value.values) for p in _nul_in_json(item, f"{path}[{i}]")]
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return [path] if "\x00" in value.string_value else []
    if kind in ("struct_value", "list_value"):
        return _nul_in_json(getattr(value, kind), path)
    return []


def _nul_paths(message: Message, prefix: str = "") -> list[str]:
    found: list[str] = []
    for field, value in message.ListFields():
        entry = field.message_type
        if entry is None or not _holds_json(entry):
            continue
        path = prefix + field.name
        if entry.GetOptions().map_entry:
            items = [(path + _key(key), item) for key, item in value.items()] \
                if entry.fields_by_name["value"].message_type is not None else []
        elif field.is_repeated:
            items = [(f"{path}[{i}]", item) for i, item in enumerate(value)]
        else:
            items = [(path, value)]
        for item_path, item in items:
            if item.DESCRIPTOR.full_name in _JSON_TYPES:
                found += _nul_in_json(item, item_path)
            else:
                found += _nul_paths(item, item_path + ".")
    return found


def json_nul_violations(message: Message) -> list[FieldViolation]:
    """A NUL in any key or string of the request's JSON payloads (Struct, Value, ListValue fields).

    The services keep JSON payloads in PostgreSQL jsonb, which cannot hold \\u0000 in a key or a
    string: without this check such a request reached the database and failed there as INTERNAL (500;
    found by fuzzing: POST /v1/agents with {"config": {"a\\u0000": 1}}). It is the client's mistake,
    so it is INVALID_ARGUMENT naming where the NUL is, e.g. `config["a\\u0000"]` or `layers[0].data.note`.
    """
    if not _holds_json(message.DESCRIPTOR):
        return []
    return [FieldViolation(path, _NUL_TEXT) for path in _nul_paths(message)]


def has_rules(message_type: type[Message]) -> bool:
    """Whether messages of this type can break any buf.validate rule; computed once per type."""
    ruled = _ruled.get(message_type)
    if ruled is None:
        ruled = _ruled[message_type] = _has_rules(message_type.DESCRIPTOR, set())
    return ruled


def _key(value: object) -> str:
    if isinstance(value, str):
        return f".{value}" if _PLAIN_KEY.match(value) else f"[{json.dumps(value)}]"
    return f"[{json.dumps(value)}]"  # bool, int and uint keys: labels[true], by_id[42]


def _message_at(root: MessageDescriptor, elements: Iterable[Any]) -> MessageDescriptor | None:
    """The message type a violation's field path ends at (the root for an empty path)."""
    descriptor: MessageDescriptor | None = root
    for element in elements:
        field = descriptor.fields_by_name.get(element.field_name) if descriptor else None
        descriptor = field.message_type if field is not None else None
        if descriptor is not None and descriptor.GetOptions().map_entry and element.subscript is not None:
            descriptor = descriptor.fields_by_name["value"].message_type
    return descriptor


def field_path(root: MessageDescriptor, violation: protovalidate.Violation) -> str:
    """A violation's field as the services name fields: `layers[0].name`, `labels.team`, `request`."""
    proto = violation.proto
    elements = list(proto.field.elements) if proto.field is not None else []
    path = ""
    for element in elements:
        path += f".{element.field_name}" if path else element.field_name
        if element.subscript is not None:
            subscript = element.subscript
            path += f"[{subscript.value}]" if subscript.field == "index" else _key(subscript.value)
    is_message_rule = proto.rule is None or not proto.rule.elements
    named = proto.rule_id.split(".", 1)[0]
    if is_message_rule and not proto.rule_id.startswith("message."):
        target = _message_at(root, elements)
        if target is not None and named in target.fields_by_name:
            path = f"{path}.{named}" if path else named
    return path or _WHOLE_REQUEST


def _description(violation: protovalidate.Violation) -> str:
    proto = violation.proto
    text = proto.message or proto.rule_id
    return f"key: {text}" if proto.for_key else text


def violations(message: Message) -> list[FieldViolation]:
    """Every rule the message breaks, with the field it is about; [] for a valid message."""
    if not has_rules(type(message)):
        return []
    found = _validator.collect_violations(message)
    return [FieldViolation(field_path(message.DESCRIPTOR, v), _description(v)) for v in found]


def check_request(message: Message) -> None:
    """Raise InvalidArgument naming every field of the request that breaks a declared rule.

    A rule that does not compile (a contract mistake, e.g. string rules on an int field) raises
    protovalidate.CompilationError: the call fails as INTERNAL; tests/contract/test_field_rules.py
    compiles every request's rules so such a contract never ships.
    """
    found = violations(message)
    if found:
        raise InvalidArgument(found)


CodeCheck = Callable[[Any, Violations], None]
"""A servicer's `check_<Method>(request, v)`: the request rules the contract cannot state (JSON payloads,
kind-dependent settings). It must not need the database, and it may assume nothing about the request."""


def _code_check(handler: Handler) -> CodeCheck | None:
    servicer, name = getattr(handler, "__self__", None), getattr(handler, "__name__", "")
    check = getattr(servicer, f"check_{name}", None) if servicer is not None else None
    return check if callable(check) else None


def _with_code_rules(found: list[FieldViolation], check: CodeCheck, request: Message) -> list[FieldViolation]:
    """The contract's violations plus the servicer's own, so one answer names every bad field."""
    v = Violations()
    try:
        check(request, v)
    except Exception:  # a check written for contract-valid requests may trip on this one; the contract's answer stands
        logger.debug("code check failed on a request the contract refused", exc_info=True)
        return found
    named = {f.field for f in found}
    return found + [f for f in v.items if f.field not in named]


def validate_before(handler: Handler) -> Handler:
    """The handler, preceded by check_request on its request (for the chassis' call interceptor).

    When the contract refuses a request and the servicer has a `check_<Method>(request, v)`, its
    violations join the contract's: a client learns every bad field from one answer, as it did when
    all of them were checked in code. A request the contract accepts goes to the servicer, which runs
    its own checks where it needs their results.
    """
    code_check = _code_check(handler)

    async def validated(request: Any, context: grpc.aio.ServicerContext) -> Any:
        # Both checks answer [] from a per-type lookup for a type without rules or JSON payloads;
        # the merging below runs only for a refused request.
        found = violations(request)
        nul = json_nul_violations(request)
        if found or nul:
            named = {f.field for f in found}
            found += [f for f in nul if f.field not in named]
            raise InvalidArgument(_with_code_rules(found, code_check, request) if code_check else found)
        return await handler(request, context)

    return validated
