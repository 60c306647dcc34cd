"""Suite-wide report: the test files that took longest (set-up, calls and tear-down together), so the
slowest parts of the CI run are visible in its output without re-running anything; every file's seconds are
kept (merged over earlier runs) in .pytest_cache/v/protomesh/file_seconds.

The files keep pytest's order. Running the longest first was tried: the heavy files then overlapped each other
on the two cores, and one run from a fresh clone did 27% more work in all (2,249 s against 1,770 s) and took
longer (1,160 s of pytest against 916 s).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

_SHOWN = 15
_CACHE_KEY = "protomesh/file_seconds"
_seconds_by_file: dict[str, float] = defaultdict(float)


def _cache(config: pytest.Config) -> Any:
    return getattr(config, "cache", None)  # absent under -p no:cacheprovider


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Under xdist this runs in the controller for every worker's report, so the totals cover the whole run.
    _seconds_by_file[report.nodeid.split("::", 1)[0]] += report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _seconds_by_file:
        return
    slowest = sorted(_seconds_by_file.items(), key=lambda item: item[1], reverse=True)[:_SHOWN]
    terminalreporter.section(f"slowest {len(slowest)} test files (seconds, set-up + calls + tear-down)")
    for path, seconds in slowest:
        terminalreporter.write_line(f"{seconds:8.1f}  {path}")
    total = sum(_seconds_by_file.values())
    terminalreporter.write_line(f"{total:8.1f}  all {len(_seconds_by_file)} files together (the workers share it)")
    cache = _cache(terminalreporter.config)
    if cache is not None:  # merged, so a run of a few files keeps the others' times: .pytest_cache/v/protomesh/
        merged = {**(cache.get(_CACHE_KEY, None) or {}), **_seconds_by_file}
        cache.set(_CACHE_KEY, dict(sorted(merged.items(), key=lambda item: -item[1])))
