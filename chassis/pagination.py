"""The earlier paging helpers, kept importable while services move to chassis.resources (issue 9).

New code: chassis.resources.Keyset / PageRequest / Page, and chassis.resources.keyset.fetch_page.
These functions now issue and check chassis.resources.tokens tokens, so edited tokens are refused too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from chassis.resources import tokens
from chassis.resources.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, page_size

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "decode_page_token",
    "decode_time_id_token",
    "encode_page_token",
    "encode_time_id_token",
    "page_size",
]

T = TypeVar("T")


def encode_page_token(cursor: Sequence[Any], filters: Any) -> str:
    """An opaque token for a keyset cursor (JSON-encodable values) bound to the filters."""
    return tokens.encode(list(cursor), tokens.fingerprint("", filters))


def decode_page_token(token: str, filters: Any, parse: Callable[[list[Any]], T]) -> T | None:
    """The cursor in a token, through `parse` (which may raise ValueError, KeyError, TypeError or IndexError)."""
    if not token:
        return None
    cursor = tokens.decode(token, tokens.fingerprint("", filters))
    try:
        return parse(cursor)
    except (ValueError, KeyError, TypeError, IndexError):
        raise tokens.refused(tokens.NOT_OURS) from None


def encode_time_id_token(created_at: datetime, item_id: uuid.UUID, filters: Any) -> str:
    """A token for the common newest-first (create time, id) keyset."""
    return encode_page_token([created_at.isoformat(), str(item_id)], filters)


def decode_time_id_token(token: str, filters: Any) -> tuple[datetime, uuid.UUID] | None:
    """The (create time, id) cursor of a token from encode_time_id_token."""
    return decode_page_token(token, filters, lambda c: (datetime.fromisoformat(c[0]), uuid.UUID(c[1])))
