"""Conversions between protobuf well-known types and Python values, used by every service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

# Ids moved to the resource toolkit (issue 9); importable from here until every service imports them there.
from chassis.resources.ids import parse_uuid, resource_id

__all__ = ["from_struct", "parse_uuid", "resource_id", "timestamp", "to_datetime", "to_struct"]


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
