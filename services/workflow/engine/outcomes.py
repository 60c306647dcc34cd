"""How a task ends other than with an output: a workflow error, a suspension, a lost lease, a cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc

ERRORS = "https://serverlessworkflow.io/spec/1.0.0/errors/"
"""The DSL's standard error types are this prefix plus configuration, validation, expression,
authentication, authorization, timeout, communication or runtime."""

_HTTP_OF_GRPC = {
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501, grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


class WorkflowError(Exception):
    """An error in the DSL's shape (RFC 7807): raised by a task, caught by a `try`, or failing the workflow."""

    def __init__(self, type_: str, status: int, title: str, detail: str = "", instance: str = "") -> None:
        super().__init__(f"{title}: {detail}" if detail else title)
        self.type, self.status, self.title, self.detail, self.instance = type_, status, title, detail, instance

    def as_json(self) -> dict[str, Any]:
        return {"type": self.type, "status": self.status, "title": self.title, "detail": self.detail,
                "instance": self.instance}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkflowError:
        return cls(str(data.get("type", ERRORS + "runtime")), int(data.get("status", 500)),
                   str(data.get("title", "error")), str(data.get("detail", "")), str(data.get("instance", "")))

    @classmethod
    def of_rpc(cls, error: grpc.aio.AioRpcError, method: str, instance: str) -> WorkflowError:
        code = error.code()
        kind = {grpc.StatusCode.UNAUTHENTICATED: "authentication", grpc.StatusCode.PERMISSION_DENIED:
                "authorization", grpc.StatusCode.DEADLINE_EXCEEDED: "timeout",
                grpc.StatusCode.INVALID_ARGUMENT: "validation"}.get(code, "communication")
        return cls(ERRORS + kind, _HTTP_OF_GRPC.get(code, 500), f"{method} answered {code.name}",
                   error.details() or "", instance)


class Suspend(Exception):
    """The execution waits: until `wake_at` (a timer), or a signal of `signal_type`, or both (a timeout)."""

    def __init__(self, wake_at: datetime | None, waiting: str, signal_type: str | None = None) -> None:
        super().__init__(waiting)
        self.wake_at, self.waiting, self.signal_type = wake_at, waiting, signal_type


class LeaseLost(Exception):
    """This replica no longer holds the execution: stop without writing anything more."""


class Cancelled(Exception):
    """A cancel was requested: the run stops and the completed tasks are compensated."""
