"""Resource ids: UUIDs in requests, and the one NOT_FOUND for an id that names nothing.

An empty or malformed id is the client's mistake, told apart from an unknown one: INVALID_ARGUMENT
(400) naming the field and what an id looks like, where a well-formed id that names nothing is
NOT_FOUND (404). The same holds for ids in a path (GET /v1/agents/{agent_id}) and for ids given as
filters or references (ListNotifications' subscription_id).
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
    """The UUID of the resource a request names; INVALID_ARGUMENT naming `field` (by default
    `<resource>_id`) when it is empty or cannot be an id."""
    field = field or f"{resource}_id"
    if not value:
        raise InvalidArgument([FieldViolation(field, f"required: the {resource}'s id")])
    parsed = parse_uuid(value)
    if parsed is None:
        raise InvalidArgument([FieldViolation(field, f"not {_article(resource)} {resource} id: ids are UUIDs such as "
                                                     f"3b241101-e2bb-4255-8caf-4136c566a962; list the "
                                                     f"{resource}s to find one")])
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


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
