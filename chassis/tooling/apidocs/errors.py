"""The error responses of an operation: HTTP statuses with the google.rpc.Status body.

The contracts do not declare per RPC which codes it returns, so each operation documents:
  - the statuses any call can get from the gateway or the chassis (a malformed or invalid request,
    a full bulkhead or rate limit, no healthy replica or a dependency down, a deadline), and for a
    method that is not public 401 without a valid credential and 403 without its declared permission;
  - NOT_FOUND when the path names a resource; ALREADY_EXISTS/ABORTED for methods with side
    effects (unique names, optimistic concurrency);
  - every gRPC code (or ``HTTP nnn``) its comment mentions, e.g. "fails with UNAVAILABLE (HTTP 503)".
A future contract option declaring the codes per RPC replaces the first two guesses here.
"""

from __future__ import annotations

import re
from typing import Any

from chassis.tooling.apidocs.contracts import Contracts
from chassis.tooling.apidocs.schema import SchemaBuilder
from chassis.tooling.catalog import MeshMethod

Schema = dict[str, Any]

# google/rpc/code.proto's HTTP mapping, the one Envoy's transcoder applies.
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "UNKNOWN": 500, "INTERNAL": 500, "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}
_ALWAYS = ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED")
_WRITES = ("ALREADY_EXISTS", "ABORTED")
_MENTION = re.compile(r"\b(" + "|".join(HTTP_STATUS) + r")\b|\bHTTP (\d{3})\b")
STATUS_SCHEMA = "google.rpc.Status"
_DETAILS_FILE = "google/rpc/error_details.proto"


def error_codes(contracts: Contracts, method: MeshMethod, *, has_path_variables: bool) -> dict[int, list[str]]:
    """HTTP status -> the gRPC codes behind it that this method may return."""
    codes = set(_ALWAYS)
    if not method.public:
        # The gateway refuses a call without a valid credential (the identity service's ext_authz answer), and
        # the chassis one whose principal lacks the declared permission (chassis.authz): docs/authorization.md.
        codes.add("UNAUTHENTICATED")
        if method.permission:
            codes.add("PERMISSION_DENIED")
    if has_path_variables:
        codes.add("NOT_FOUND")
    if method.idempotency_level != "NO_SIDE_EFFECTS":
        codes.update(_WRITES)
    text = " ".join((contracts.comment(f"{method.service}.{method.name}"), contracts.comment(method.input_type)))
    by_http = {status: name for name, status in reversed(HTTP_STATUS.items())}
    for match in _MENTION.finditer(text):
        if match[1]:
            codes.add(match[1])
        elif int(match[2]) in by_http:
            codes.add(by_http[int(match[2])])
    found: dict[int, list[str]] = {}
    for name in sorted(codes, key=lambda c: (HTTP_STATUS[c], c)):
        found.setdefault(HTTP_STATUS[name], []).append(name)
    return found


def status_schema(builder: SchemaBuilder) -> Schema:
    """A reference to google.rpc.Status, whose details are the google.rpc detail messages as JSON Any."""
    ref = builder.ref(STATUS_SCHEMA)
    status = builder.components[STATUS_SCHEMA]
    details = []
    for file in builder.contracts.files:
        if file.name != _DETAILS_FILE:
            continue
        for message in file.message_type:
            name = f"{file.package}.{message.name}"
            details.append({"allOf": [builder.ref(name), {
                "type": "object", "required": ["@type"],
                "properties": {"@type": {"const": f"type.googleapis.com/{name}"}},
            }]})
    if details:
        status["properties"]["details"] = {
            "type": "array", "items": {"anyOf": details},
            "description": "google.rpc detail messages, each with \"@type\": ErrorInfo (reason and domain) on "
                           "every service error, BadRequest naming each invalid field on INVALID_ARGUMENT.",
        }
    status["description"] = ("The error body: the gRPC status code (google.rpc.Code number), a message, "
                             "and google.rpc details.")
    status["required"] = ["code", "message", "details"]
    return ref


def error_response(builder: SchemaBuilder, status: int, codes: list[str]) -> Schema:
    """The response object for one HTTP status: its codes and the Status body."""
    return {
        "description": f"{' or '.join(codes)} (google.rpc.Status)",
        "content": {"application/json": {"schema": status_schema(builder)}},
    }
