"""Domain errors and their gRPC form: a status code plus google.rpc details naming the problem."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from protomesh.common.v1 import errors_pb2

ERROR_DOMAIN = "protomesh"

# Errors often quote what the client sent (an id, a key). Clipped, so a 5 KB id cannot push the status
# past gRPC's 16 KB metadata limit and turn a clear INVALID_ARGUMENT into RESOURCE_EXHAUSTED.
MAX_MESSAGE_CHARS = 1024
MAX_DETAIL_CHARS = 256
MAX_FIELD_CHARS = 512
MAX_VIOLATIONS = 20
"""Violations listed in one answer: 20 clipped ones and the message stay well inside a gRPC client's default
16 KiB metadata limit even base64-encoded in grpc-status-details-bin; the rest are counted, not listed."""


def clip(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """The text, cut to `limit` characters with a mark saying so."""
    return text if len(text) <= limit else f"{text[:limit - 24]}… ({len(text)} characters)"


@dataclass(frozen=True)
class FieldViolation:
    """One bad request field: its path (e.g. "input.expression") and what is wrong with it."""

    field: str
    description: str


class ServiceError(Exception):
    """An error a service raises on purpose; the runtime turns it into a gRPC status."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    reason: int = errors_pb2.ERROR_REASON_UNSPECIFIED

    def __init__(self, message: str, *, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata = metadata or {}

    def details(self) -> list[any_pb2.Any]:
        """google.rpc detail messages carried with the status."""
        info = error_details_pb2.ErrorInfo(
            reason=errors_pb2.ErrorReason.Name(self.reason), domain=ERROR_DOMAIN,
            metadata={k: clip(v) for k, v in self.metadata.items()},
        )
        packed = any_pb2.Any()
        packed.Pack(info)
        return [packed]

    def to_status(self) -> grpc.Status:
        """The rich gRPC status (code, message, details in grpc-status-details-bin)."""
        status = status_pb2.Status(code=self.code.value[0], message=clip(self.message, MAX_MESSAGE_CHARS),
                                   details=self.details())
        return rpc_status.to_status(status)


class InvalidArgument(ServiceError):
    """The request is malformed; every offending field is named."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = errors_pb2.ERROR_REASON_INVALID_ARGUMENT

    def __init__(self, violations: Iterable[FieldViolation]) -> None:
        found = list(violations)
        self.violations = found[:MAX_VIOLATIONS]
        if len(found) > MAX_VIOLATIONS:
            self.violations.append(FieldViolation("request", f"{len(found) - MAX_VIOLATIONS} more problems not listed"))
        summary = "; ".join(f"{clip(v.field, MAX_FIELD_CHARS)}: {clip(v.description)}" for v in self.violations)
        super().__init__(f"invalid request: {summary}")

    def details(self) -> list[any_pb2.Any]:
        """ErrorInfo plus a google.rpc.BadRequest listing the field violations."""
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=clip(v.field, MAX_FIELD_CHARS),
                                                        description=clip(v.description))
                for v in self.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        return [*super().details(), packed]


class NotFound(ServiceError):
    """The named resource does not exist."""

    code = grpc.StatusCode.NOT_FOUND
    reason = errors_pb2.ERROR_REASON_NOT_FOUND

    def __init__(self, resource: str, resource_id: str) -> None:
        super().__init__(f"{resource} {resource_id!r} not found", metadata={"resource": resource, "id": resource_id})


class AlreadyExists(ServiceError):
    """A resource with the same unique key exists."""

    code = grpc.StatusCode.ALREADY_EXISTS
    reason = errors_pb2.ERROR_REASON_ALREADY_EXISTS


class FailedPrecondition(ServiceError):
    """The resource's state does not allow the operation."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = errors_pb2.ERROR_REASON_FAILED_PRECONDITION


class Aborted(ServiceError):
    """A concurrent change won; the caller should re-read and retry."""

    code = grpc.StatusCode.ABORTED
    reason = errors_pb2.ERROR_REASON_ABORTED


class PermissionDenied(ServiceError):
    """The caller may not use this resource (HTTP 403)."""

    code = grpc.StatusCode.PERMISSION_DENIED
    reason = errors_pb2.ERROR_REASON_PERMISSION_DENIED


class Unavailable(ServiceError):
    """A dependency is down; the call may succeed if retried later."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = errors_pb2.ERROR_REASON_DEPENDENCY_UNAVAILABLE


class ResourceExhausted(ServiceError):
    """A limit was hit (bulkhead, rate limit); the caller may retry later."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = errors_pb2.ERROR_REASON_RESOURCE_EXHAUSTED


class DeadlineExceeded(ServiceError):
    """The call's time budget ran out before a dependency answered."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = errors_pb2.ERROR_REASON_DEPENDENCY_UNAVAILABLE


class CircuitOpen(ServiceError):
    """A dependency's circuit breaker is open: failing fast instead of waiting on it."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = errors_pb2.ERROR_REASON_CIRCUIT_OPEN


class DependencyFailed(ServiceError):
    """A call to another service failed; its status code is passed on to our caller."""

    def __init__(self, code: grpc.StatusCode, message: str, *, dependency: str = "") -> None:
        super().__init__(message, metadata={"dependency": dependency} if dependency else None)
        self.code = code
        self.reason = {
            grpc.StatusCode.NOT_FOUND: errors_pb2.ERROR_REASON_NOT_FOUND,
            grpc.StatusCode.INVALID_ARGUMENT: errors_pb2.ERROR_REASON_INVALID_ARGUMENT,
            grpc.StatusCode.PERMISSION_DENIED: errors_pb2.ERROR_REASON_PERMISSION_DENIED,
            grpc.StatusCode.FAILED_PRECONDITION: errors_pb2.ERROR_REASON_FAILED_PRECONDITION,
        }.get(code, errors_pb2.ERROR_REASON_DEPENDENCY_UNAVAILABLE)


@dataclass
class Violations:
    """Collects field violations so one error names every bad field at once."""

    items: list[FieldViolation] = field(default_factory=list)

    def add(self, field_path: str, description: str) -> None:
        """Record a bad field."""
        self.items.append(FieldViolation(field_path, description))

    def check(self, ok: bool, field_path: str, description: str) -> bool:
        """Record a bad field unless ok; return ok."""
        if not ok:
            self.add(field_path, description)
        return ok

    def raise_if_any(self) -> None:
        """Raise InvalidArgument naming every recorded field."""
        if self.items:
            raise InvalidArgument(self.items)


def grpc_code_name(code: int) -> str:
    """Name of a google.rpc code number, e.g. 3 -> INVALID_ARGUMENT."""
    return code_pb2.Code.Name(code)
