"""Optimistic concurrency: `expected_version` on writes, one rule and one message for every service.

A resource's version starts at 1 and grows by one with each change. A write may carry the version
its caller read: 0 means "whatever it is now" (unconditional), anything else must still be the
current version, checked under the row's lock, or the write is ABORTED (HTTP 409) and changes nothing.
"""

from __future__ import annotations

from chassis.errors import Aborted, Violations

FIELD = "expected_version"


def check_expected_version(v: Violations, value: int, field: str = FIELD) -> None:
    """A request's expected version: 0 (unconditional) or a version, which starts at 1."""
    v.check(value >= 0, field, "must be 0 (unconditional) or the version you read")


def check_version(resource: str, resource_id: object, current: int, expected: int) -> None:
    """ABORTED when an expected version (non-zero) is not the current one; call it under the row's lock."""
    if expected and expected != current:
        raise Aborted(
            f"{resource} {resource_id} is at version {current}, not {expected}: it was changed concurrently; "
            "re-read it and retry",
            metadata={"current_version": str(current), "expected_version": str(expected)},
        )
