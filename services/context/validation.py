"""Request field rules of the context service: every bad field is named in one INVALID_ARGUMENT."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from google.protobuf import duration_pb2, timestamp_pb2

from chassis.errors import Violations
from chassis.protos import to_datetime

TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_.\-]{0,63}$")
SERVICE_PATTERN = re.compile(r"^[a-z][a-z0-9\-]{0,62}$")
TAG_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/=\-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_NAME = 256
MAX_LAYER_NAME = 128
MAX_TAGS = 32
MAX_SHARES = 64
MAX_POSITION = 1_000_000
MAX_TTL = timedelta(days=3650)


def check_text(v: Violations, value: str, field: str, max_length: int) -> None:
    """Required text: not blank, at most max_length characters, no control characters."""
    if not v.check(value.strip() != "", field, "required"):
        return
    v.check(len(value) <= max_length, field, f"at most {max_length} characters")
    v.check(_CONTROL.search(value) is None, field, "must not contain control characters")


def check_type(v: Violations, value: str, field: str = "type") -> None:
    """A required kind name: 1-64 lower-case letters, digits, '_', '.', '-', starting with a letter."""
    if v.check(value != "", field, "required"):
        v.check(bool(TYPE_PATTERN.match(value)), field,
                "1-64 lower-case letters, digits, '_', '.' or '-', starting with a letter")


def check_service(v: Violations, value: str, field: str, *, required: bool = True) -> None:
    """A service name: 1-63 lower-case letters, digits or '-', starting with a letter."""
    if not value:
        v.check(not required, field, "required: a service name")
        return
    v.check(bool(SERVICE_PATTERN.match(value)), field,
            "a service name: 1-63 lower-case letters, digits or '-', starting with a letter")


def clean_tags(v: Violations, tags: Iterable[str], field: str = "tags") -> list[str]:
    """Tags without duplicates, in the order given; at most MAX_TAGS."""
    cleaned = list(dict.fromkeys(tags))
    v.check(len(cleaned) <= MAX_TAGS, field, f"at most {MAX_TAGS} tags")
    for i, tag in enumerate(cleaned):
        v.check(bool(TAG_PATTERN.match(tag)), f"{field}[{i}]",
                "1-64 letters, digits, '_', '.', ':', '/', '=' or '-', starting with a letter or digit")
    return cleaned


def clean_services(v: Violations, services: Iterable[str], field: str) -> list[str]:
    """Service names without duplicates, sorted; at most MAX_SHARES."""
    cleaned = sorted(set(services))
    v.check(len(cleaned) <= MAX_SHARES, field, f"at most {MAX_SHARES} services")
    for i, service in enumerate(cleaned):
        check_service(v, service, f"{field}[{i}]")
    return cleaned


def expiry(
    v: Violations, *, expire_time: timestamp_pb2.Timestamp | None, ttl: duration_pb2.Duration | None,
    now: datetime | None = None,
) -> datetime | None:
    """The expiry from either an absolute time or a time to live (not both); None means never."""
    now = now or datetime.now(UTC)
    if expire_time is not None and ttl is not None:
        v.add("ttl", "give expire_time or ttl, not both")
        return None
    if ttl is not None:
        delta = ttl.ToTimedelta()
        if not v.check(timedelta(0) < delta <= MAX_TTL, "ttl", f"must be positive and at most {MAX_TTL.days} days"):
            return None
        return now + delta
    if expire_time is not None:
        try:
            when = to_datetime(expire_time)
        except (ValueError, OverflowError):
            v.add("expire_time", "not a valid time")
            return None
        if not v.check(when > now, "expire_time", "must be in the future"):
            return None
        v.check(when <= now + MAX_TTL, "expire_time", f"at most {MAX_TTL.days} days ahead")
        return when
    return None


def check_position(v: Violations, value: int, *, allow_append: bool) -> None:
    """A layer position: 1..MAX_POSITION, or 0 (append) where allowed."""
    low = 0 if allow_append else 1
    v.check(low <= value <= MAX_POSITION, "position",
            f"must be between {low} and {MAX_POSITION}" + (" (0 appends)" if allow_append else ""))
