"""Conversions between protobuf well-known types and Python values, used by every service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A protobuf Timestamp, or None for a missing time."""
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def to_datetime(ts: timestamp_pb2.Timestamp) -> datetime:
    """An aware UTC datetime from a Timestamp."""
    return ts.ToDatetime(tzinfo=UTC)


def to_struct(data: dict[str, Any] | None) -> struct_pb2.Struct | None:
    """A Struct from a JSON-like dict."""
    if data is None:
        return None
    struct = struct_pb2.Struct()
    struct.update(data)
    return struct


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A JSON-like dict from a Struct."""
    return json_format.MessageToDict(struct)


def parse_uuid(value: str) -> uuid.UUID | None:
    """The UUID in value, or None when value cannot be an id (so the caller answers NOT_FOUND)."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError):
        return None


def resource_id(resource: str, value: str) -> uuid.UUID:
    """The UUID of a resource named in a request; an id that cannot exist is simply NOT_FOUND."""
    parsed = parse_uuid(value)
    if parsed is None:
        from chassis.errors import NotFound

        raise NotFound(resource, value)
    return parsed
