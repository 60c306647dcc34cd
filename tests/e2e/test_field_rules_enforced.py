"""Every field rule the contracts declare is enforced, over REST and over gRPC, through the gateway.

No rule is listed here: for each request field that carries a buf.validate rule, the test tries
generic bad values (empty, too long, odd characters, out-of-range numbers, undefined enums, too many
items or labels) until the contract's own validator refuses one for that field, then sends that
request through Envoy both ways and expects 400 / INVALID_ARGUMENT naming the field. A rule added to
a proto tomorrow is covered without touching this file; a rule the services stopped enforcing fails.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from chassis import validation
from chassis.contracts import mesh_grpc_services
from chassis.tooling.catalog import MeshMethod, load_catalog
from chassis.tooling.mesh_testing import RestClient, mesh_channel, running_mesh
from chassis.tooling.supervisor import Mesh

_STRINGS = ("", "x" * 5000, " padded ", "Not A Valid Value!", "ctl\u0001", "a" * 300, "-", "x")
_NUMBERS = (-1, 10**6, -(2**31), 2**31 - 1, 0)
_FLOATS = (-1.0, 1e12, 0.0)


@dataclass(frozen=True)
class Case:
    """One request that breaks one field's rule, as the contract's validator says."""

    method: MeshMethod
    field: str
    request: Message

    def __str__(self) -> str:
        return f"{self.method.name}.{self.field}"


def _request_class(method: MeshMethod) -> type[Message]:
    mesh_grpc_services()  # every contract loaded into the default pool
    return message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(method.input_type))


def _candidates(field: FieldDescriptor) -> Iterator[Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
        if key.type == FieldDescriptor.TYPE_STRING and value.type == FieldDescriptor.TYPE_STRING:
            yield {"Bad Key!": "v"}
            yield {f"k{i}": "v" for i in range(40)}
            yield {"k": "ctl\u0001"}
            yield {"k": "x" * 5000}
        return
    repeated = field.is_repeated
    if field.type == FieldDescriptor.TYPE_STRING:
        values: Iterator[Any] = iter(_STRINGS)
        if repeated:
            yield []
            yield ["x"] * 1001
            yield from ([s] for s in _STRINGS)
            return
        yield from values
    elif field.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT32,
                        FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64):
        unsigned = field.type in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64)
        yield from ([n] if repeated else n for n in _NUMBERS if not (unsigned and n < 0))
    elif field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        yield from ([n] if repeated else n for n in _FLOATS)
    elif field.type == FieldDescriptor.TYPE_ENUM:
        yield from ([n] if repeated else n for n in (999, 0))
    elif field.type == FieldDescriptor.TYPE_MESSAGE and not repeated:
        yield None  # unset: breaks `required`


def _with(request_class: type[Message], field: FieldDescriptor, value: Any) -> Message:
    request = request_class()
    if value is None:
        return request
    target = getattr(request, field.name)
    if isinstance(value, dict):
        target.update(value)
    elif isinstance(value, list):
        target.extend(value)
    else:
        setattr(request, field.name, value)
    return request


def _breaks(request: Message, field: str) -> bool:
    return any(v.field == field or v.field.startswith((f"{field}.", f"{field}[")) for v in
               validation.violations(request))


def _cases() -> tuple[list[Case], list[str]]:
    cases, unbroken = [], []
    for method in load_catalog().methods():
        if method.http is None or method.client_streaming or method.server_streaming:
            continue
        request_class = _request_class(method)
        if not validation.has_rules(request_class):
            continue
        for field in request_class.DESCRIPTOR.fields:
            broken = next((r for r in (_with(request_class, field, v) for v in _candidates(field))
                           if _breaks(r, field.name)), None)
            if broken is not None:
                cases.append(Case(method, field.name, broken))
            elif _declares_rule(field):
                unbroken.append(f"{method.name}.{field.name}")
    return cases, unbroken


def _declares_rule(field: FieldDescriptor) -> bool:
    return bool(field.has_options) and b"\xba\x48" in field.GetOptions().SerializeToString()


CASES, UNBROKEN = _cases()


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    with running_mesh(replicas=1) as started:
        yield started


def _rest_path(case: Case, values: dict[str, Any]) -> tuple[str, set[str]]:
    assert case.method.http is not None
    path, used = case.method.http.path, set()
    for name in [part[1:-1].split("=")[0] for part in path.split("/") if part.startswith("{")]:
        value = values.get(name) or "placeholder"
        path = path.replace(f"{{{name}}}", urllib.parse.quote(str(value), safe=""))
        used.add(name)
    return path, used


def _rest_call(rest: RestClient, case: Case) -> tuple[int, set[str], str] | None:
    """The REST status and the fields its BadRequest names; None when the value has no REST form."""
    http = case.method.http
    assert http is not None
    values = json_format.MessageToDict(case.request, preserving_proto_field_name=True)
    path, used = _rest_path(case, values)
    if case.field in used and not values.get(case.field):
        return None  # an empty path segment is a different URL, not an empty field
    rest_values = {k: v for k, v in values.items() if k not in used}
    if http.body == "*":
        reply = rest.call(http.verb, path, rest_values)
    elif http.body:
        if case.field != http.body and case.field in rest_values:
            return None  # a field outside the body sub-message rides in the query string: covered by gRPC
        reply = rest.call(http.verb, path, rest_values.get(http.body, {}))
    else:
        if any(isinstance(v, dict) for v in rest_values.values()):
            return None  # maps and messages have no query-string form
        query = urllib.parse.urlencode(rest_values, doseq=True)
        reply = rest.call(http.verb, path + (f"?{query}" if query else ""))
    # Envoy's transcoder refuses a query value it cannot parse (an undefined enum) itself: 400 with a
    # message that starts with the parameter's name, but no BadRequest detail.
    message = reply.body.get("message", "") if isinstance(reply.body, dict) else ""
    return reply.status, set(reply.field_violations()), message


def _grpc_call(channel: grpc.Channel, case: Case) -> tuple[grpc.StatusCode, set[str]]:
    call = channel.unary_unary(case.method.grpc_path, request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=lambda b: b)
    try:
        call(case.request, timeout=10)
    except grpc.RpcError as error:
        try:
            status = rpc_status.from_call(error)  # type: ignore[arg-type]
        except ValueError:  # the status details disagree with the code: report the code alone
            return error.code(), set()  # type: ignore[attr-defined]
        fields: set[str] = set()
        for detail in status.details if status else []:
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad):
                fields |= {v.field for v in bad.field_violations}
        return error.code(), fields  # type: ignore[attr-defined]
    return grpc.StatusCode.OK, set()


def _names(field: str, named: set[str]) -> bool:
    return any(n == field or n.startswith((f"{field}.", f"{field}[")) for n in named)


def test_the_contracts_declare_enough_rules_to_test() -> None:
    # The sweep below must not pass by finding nothing to break.
    assert len(CASES) >= 40, [str(c) for c in CASES]
    print(f"\n{len(CASES)} rule cases; fields with rules no generic value breaks: {UNBROKEN}")


def test_every_declared_rule_is_enforced_over_rest_and_grpc(mesh: Mesh) -> None:
    rest = RestClient.for_mesh(mesh)
    failures, rest_checked = [], 0
    with mesh_channel(mesh) as channel:
        for case in CASES:
            code, named = _grpc_call(channel, case)
            if code != grpc.StatusCode.INVALID_ARGUMENT or not _names(case.field, named):
                failures.append(f"gRPC {case}: {code.name} {sorted(named)}")
            answered = _rest_call(rest, case)
            if answered is None:
                continue
            rest_checked += 1
            status, named, message = answered
            if status != 400 or not (_names(case.field, named) or f"{case.field}:" in message):
                failures.append(f"REST {case}: {status} {sorted(named)} "
                                f"{json.dumps(json_format.MessageToDict(case.request))[:200]}")
    print(f"\n{len(CASES)} cases over gRPC, {rest_checked} over REST")
    assert failures == [], "\n".join(failures)
