"""Suite-wide report: the test files that took longest (set-up, calls and tear-down together), so the
slowest parts of the CI run are visible in its output without re-running anything."""

from __future__ import annotations

from collections import defaultdict

import pytest

_SHOWN = 15
_seconds_by_file: dict[str, float] = defaultdict(float)


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
    cache = getattr(terminalreporter.config, "cache", None)  # absent under -p no:cacheprovider
    if cache is not None:  # every file's seconds, for a look at what to speed up: .pytest_cache/v/protomesh/
        cache.set("protomesh/file_seconds", dict(sorted(_seconds_by_file.items(), key=lambda i: -i[1])))
