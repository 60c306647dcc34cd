"""Page sizes and opaque page tokens shared by every List RPC.

A token carries the keyset cursor of the last item on a page (e.g. its create time and id)
plus a fingerprint of the filters it was issued for, so a token cannot silently be reused
with different filters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from chassis.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

T = TypeVar("T")


def page_size(value: int, field: str = "page_size") -> int:
    """0 means the default; negative or too large is an error."""
    if value < 0 or value > MAX_PAGE_SIZE:
        raise InvalidArgument([FieldViolation(field, f"must be between 0 and {MAX_PAGE_SIZE}")])
    return value or DEFAULT_PAGE_SIZE


def _fingerprint(filters: Any) -> str:
    return hashlib.sha256(repr(filters).encode()).hexdigest()[:12]


def encode_page_token(cursor: Sequence[Any], filters: Any) -> str:
    """An opaque token for a keyset cursor (JSON-encodable values) bound to the filters."""
    raw = json.dumps({"c": list(cursor), "f": _fingerprint(filters)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str, filters: Any, parse: Callable[[list[Any]], T]) -> T | None:
    """The cursor in a token, through `parse`; INVALID_ARGUMENT if malformed or the filters changed.

    `parse` turns the decoded list back into typed values and may raise ValueError, KeyError,
    TypeError or IndexError for a token that was not issued by this API.
    """
    if not token:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor = parse(raw["c"])
        matches = raw["f"] == _fingerprint(filters)
    except (binascii.Error, ValueError, KeyError, TypeError, IndexError):
        raise InvalidArgument([FieldViolation("page_token", "not a token issued by this API")]) from None
    if not matches:
        raise InvalidArgument([FieldViolation("page_token", "issued for different filters; start again without it")])
    return cursor


def encode_time_id_token(created_at: datetime, item_id: uuid.UUID, filters: Any) -> str:
    """A token for the common newest-first (create time, id) keyset."""
    return encode_page_token([created_at.isoformat(), str(item_id)], filters)


def decode_time_id_token(token: str, filters: Any) -> tuple[datetime, uuid.UUID] | None:
    """The (create time, id) cursor of a token from encode_time_id_token."""
    return decode_page_token(token, filters, lambda c: (datetime.fromisoformat(c[0]), uuid.UUID(c[1])))
