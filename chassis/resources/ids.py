"""Resource ids: UUIDs in requests, and the one NOT_FOUND for an id that names nothing.

An id in a resource's path (GET /v1/agents/{agent_id}) that is not a UUID cannot name a resource,
so it is NOT_FOUND like any other unknown id: the caller learns one thing, "no such agent", whatever
the id looked like. An empty one is a missing field (INVALID_ARGUMENT) when the field is named. An
id given as a filter or a reference (ListNotifications' subscription_id) is a request field like
any other: a malformed one is INVALID_ARGUMENT naming it.
"""

from __future__ import annotations

import uuid
from typing import TypeVar

from chassis.errors import FieldViolation, InvalidArgument, NotFound, Violations

T = TypeVar("T")


def parse_uuid(value: str) -> uuid.UUID | None:
    """The UUID in value, or None when value cannot be an id."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None


def resource_id(resource: str, value: str, *, field: str = "") -> uuid.UUID:
    """The UUID of the resource a request names; NOT_FOUND when it cannot be one.

    With `field` (e.g. "agent_id"), an empty value is INVALID_ARGUMENT "required" naming it.
    """
    if field and not value:
        raise InvalidArgument([FieldViolation(field, f"required: the {resource}'s id")])
    parsed = parse_uuid(value)
    if parsed is None:
        raise NotFound(resource, value)
    return parsed


def found(row: T | None, resource: str, resource_id_: object) -> T:
    """The row a lookup returned; NOT_FOUND for the resource when there was none."""
    if row is None:
        raise NotFound(resource, str(resource_id_))
    return row


def optional_id(v: Violations, value: str, field: str, resource: str) -> uuid.UUID | None:
    """An optional id in a filter: None when empty; a malformed one is a violation naming `field`."""
    if not value:
        return None
    parsed = parse_uuid(value)
    v.check(parsed is not None, field, f"not a {resource} id (UUID)")
    return parsed
