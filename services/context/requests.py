"""Request rules of the context service that its contract cannot state.

The contract (context_service.proto's buf.validate rules) has checked every field before a servicer
runs: names, kinds, subjects, tags, ranges, expected_version, ttl and expire_time. What is
left needs the update mask (a path may name a field the request leaves unset, which would clear
it) or turns checked values into what the store keeps. JSON payloads are checked in payload.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.message import Message

from chassis.errors import Violations
from chassis.protos import to_datetime


def check_not_cleared(v: Violations, request: Message, paths: Iterable[str], fields: Iterable[str]) -> None:
    """Fields a context or layer cannot be without, named in the mask but unset (which would clear them)."""
    for field in fields:
        if field in paths and not request.HasField(field):
            v.add(field, "required: this field cannot be cleared")


def expires_at(
    v: Violations, *, expire_time: timestamp_pb2.Timestamp | None, ttl: duration_pb2.Duration | None, now: datetime,
) -> datetime | None:
    """The expiry a request asks for: now + ttl, or expire_time; None means never.

    The contract has refused both at once, a ttl out of range and an expire_time not in the future
    or too far ahead; a Timestamp that Python cannot hold (its nanos out of range) is refused here.
    """
    if ttl is not None:
        return now + ttl.ToTimedelta()
    if expire_time is None:
        return None
    try:
        return to_datetime(expire_time)
    except (ValueError, OverflowError):
        v.add("expire_time", "not a valid time")
        return None


def tags(values: Iterable[str]) -> list[str]:
    """Tags as stored: duplicates dropped, in the order given."""
    return list(dict.fromkeys(values))


def subjects(values: Iterable[str]) -> list[str]:
    """An access list (principals' subjects) as stored: duplicates dropped, sorted."""
    return sorted(set(values))
