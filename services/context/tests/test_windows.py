"""Usage trend windows: aligned hours and UTC days, bounded in number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chassis.errors import Violations
from services.context.windows import MAX_WINDOWS, window_bounds

NOW = datetime(2025, 3, 4, 10, 30, tzinfo=UTC)


def bounds(**kwargs: object) -> tuple[list[datetime], dict[str, str]]:
    v = Violations()
    args = {"window": "hour", "start": None, "end": None, "last": 0, "now": NOW, **kwargs}
    edges = window_bounds(v, **args)  # type: ignore[arg-type]
    return edges, {item.field: item.description for item in v.items}


def test_default_is_the_last_24_hours_up_to_the_current_one() -> None:
    edges, problems = bounds()
    assert problems == {}
    assert len(edges) == 25
    assert edges[-1] == datetime(2025, 3, 4, 11, tzinfo=UTC)
    assert edges[0] == edges[-1] - timedelta(hours=24)


def test_last_n_days() -> None:
    edges, _ = bounds(window="day", last=3)
    assert edges == [datetime(2025, 3, d, tzinfo=UTC) for d in (2, 3, 4, 5)]


def test_explicit_range_is_aligned() -> None:
    edges, _ = bounds(start=datetime(2025, 3, 4, 7, 15, tzinfo=UTC), end=datetime(2025, 3, 4, 9, tzinfo=UTC))
    assert edges == [datetime(2025, 3, 4, h, tzinfo=UTC) for h in (7, 8, 9)]


def test_bad_ranges_name_their_field() -> None:
    # An unknown window, `last` out of range or given with start_time are the contract's rules
    # (test_servicer.py sends them); these two depend on rounding to window boundaries.
    assert "end_time" in bounds(start=NOW, end=NOW - timedelta(hours=5))[1]
    assert "start_time" in bounds(start=NOW - timedelta(hours=MAX_WINDOWS + 5))[1]
