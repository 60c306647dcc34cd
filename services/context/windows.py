"""Time windows of the usage trends: hours or UTC days, aligned to their boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chassis.errors import Violations

STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
DEFAULT_LAST = {"hour": 24, "day": 30}
MAX_WINDOWS = 1000


def floor(moment: datetime, window: str) -> datetime:
    """The start of the window that holds moment."""
    moment = moment.astimezone(UTC)
    if window == "day":
        return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def window_bounds(
    v: Violations, *, window: str, start: datetime | None, end: datetime | None, last: int, now: datetime
) -> list[datetime]:
    """Edges of the windows, oldest first (n windows have n+1 edges); problems go into v.

    `window` is "hour" or "day" ("" means hour).

    The end is rounded up to a boundary, so the window holding `end` (by default now) is the last
    one; the start is rounded down. Without a start, `last` windows (or the default) end there.
    """
    # The contract has checked the window's name, `last`'s range and that start and last are not
    # both given; what is left depends on rounding to window boundaries.
    window = window or "hour"
    step = STEPS[window]
    end = end or now
    stop = floor(end, window)
    if stop < end:
        stop += step
    first = floor(start, window) if start else stop - (last or DEFAULT_LAST[window]) * step
    if not v.check(first < stop, "end_time", "must be after start_time"):
        return []
    count = (stop - first) // step
    if not v.check(count <= MAX_WINDOWS, "start_time", f"the range spans {count} {window}s; at most {MAX_WINDOWS}"):
        return []
    return [first + i * step for i in range(count + 1)]
