"""Opaque page tokens: a keyset cursor bound to the list and filters it was issued for.

The token is base64url of a checksum followed by JSON {"c": cursor, "f": fingerprint}. The
checksum is unkeyed on purpose: every replica must accept every other's tokens without sharing a
secret, and a forged cursor could only move where a page starts inside what the caller may list
anyway. What it buys is that a token edited by hand (or cut short when pasted) is refused as a
whole, with one message, instead of being half-parsed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
from typing import Any

from chassis.errors import FieldViolation, InvalidArgument

TOKEN_FIELD = "page_token"  # noqa: S105 the name of the page token field, not a token
_CHECK_BYTES = 8
_PERSON = b"protomesh.page1"  # names the format: a later format's tokens fail the checksum, cleanly


def _plain(value: Any) -> Any:
    """A JSON-able form of filters (dataclasses, tuples, sets, UUIDs, enums...) that is stable across replicas."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def fingerprint(list_name: str, filters: Any) -> str:
    """A short digest of which list and which filters; equal filters give equal digests on every replica."""
    text = json.dumps([list_name, _plain(filters)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=_CHECK_BYTES, person=_PERSON).digest()


def encode(cursor: list[Any], fingerprint_: str) -> str:
    """The token for a cursor (JSON values) issued under a fingerprint."""
    body = json.dumps({"c": cursor, "f": fingerprint_}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(_check(body) + body).decode().rstrip("=")


def refused(problem: str, field: str = TOKEN_FIELD) -> InvalidArgument:
    """The INVALID_ARGUMENT for a token that cannot be used."""
    return InvalidArgument([FieldViolation(field, problem)])


NOT_OURS = "not a page token this list issued (edited or cut short?); repeat the request without page_token"
OTHER_FILTERS = ("issued for other filters; repeat the request with the filters of the previous page, "
                 "or without page_token to start again")


def decode(token: str, fingerprint_: str, field: str = TOKEN_FIELD) -> list[Any]:
    """The cursor in a token; INVALID_ARGUMENT naming `field` if it was altered or issued for other filters."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise refused(NOT_OURS, field) from None
    check, body = raw[:_CHECK_BYTES], raw[_CHECK_BYTES:]
    if len(check) != _CHECK_BYTES or check != _check(body):
        raise refused(NOT_OURS, field)
    try:
        payload = json.loads(body)
        cursor, issued_for = payload["c"], payload["f"]
    except (ValueError, KeyError, TypeError):  # a checksummed token we did not write: another format
        raise refused(NOT_OURS, field) from None
    if not isinstance(cursor, list):
        raise refused(NOT_OURS, field)
    if issued_for != fingerprint_:
        raise refused(OTHER_FILTERS, field)
    return cursor
