"""What the identity tests read from a failed call: the field its ErrorInfo names."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2

from tests.support.errors import status_of


def named_field(error: grpc.RpcError) -> str:
    """The `field` an error's google.rpc.ErrorInfo metadata names (e.g. a duplicate email), or ""."""
    for detail in status_of(error).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.metadata.get("field", "")
    return ""
