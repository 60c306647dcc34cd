"""What a failed call says: its gRPC status, the fields a BadRequest names, the ErrorInfo reason.

For blocking stubs (the e2e tests through Envoy) and grpc.aio stubs (in-process servicer tests) alike:
both errors carry the `google.rpc.Status` in their trailing metadata, which is all these read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from chassis.tooling.mesh_testing import Reply

TIMEOUT = 10.0
"""Seconds a call under test may take before it counts as hanging."""


def failure(call: Callable[..., Any], request: Any, timeout: float = TIMEOUT) -> grpc.RpcError:
    """The error a blocking call fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=timeout)
    return caught.value


async def async_failure(call: Callable[..., Awaitable[Any]], request: Any,
                        timeout: float = TIMEOUT) -> grpc.aio.AioRpcError:
    """The error a grpc.aio call fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(request, timeout=timeout)
    return caught.value


def code_of(call: Callable[..., Any], request: Any, timeout: float = TIMEOUT) -> grpc.StatusCode:
    """The status code a blocking call fails with."""
    return failure(call, request, timeout).code()


def status_of(error: grpc.RpcError) -> status_pb2.Status:
    """The google.rpc.Status the error carries; the test fails if it carries none."""
    status = rpc_status.from_call(error)
    assert status is not None, f"the error carries no google.rpc.Status details: {error}"
    return status


def bad_fields(error: grpc.RpcError) -> set[str]:
    """The fields an INVALID_ARGUMENT error's BadRequest names."""
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    fields: set[str] = set()
    for detail in status_of(error).details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields |= {v.field for v in bad.field_violations}
    return fields


def reason(error: grpc.RpcError) -> str:
    """The ErrorInfo reason of the error (e.g. a stale version), or "" when it has none."""
    for detail in status_of(error).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


def violations(reply: Reply, status: int = 400) -> dict[str, str]:
    """The field violations of a REST error reply through Envoy, by field; the status is checked first."""
    assert reply.status == status, (reply.status, reply.body)
    return reply.field_violations()
