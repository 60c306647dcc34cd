"""Suite-wide: the longest test files run first, and the report names the files that took longest.

Order: with two xdist workers taking whole files, a long file that starts last leaves the other worker idle
until it ends; started first, the short files fill in around it. Files are ordered by their seconds in earlier
runs (cached in .pytest_cache), or, on a fresh clone, by KNOWN_SLOW; tests inside a file keep their order.
Report: the slowest files (set-up, calls and tear-down together), visible in CI's output without a re-run.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

_SHOWN = 15
_CACHE_KEY = "protomesh/file_seconds"
_seconds_by_file: dict[str, float] = defaultdict(float)

KNOWN_SLOW = {
    "tests/chaos/test_chaos.py": 150, "tests/e2e/test_fuzz.py": 140, "tests/bench/test_bench_smoke.py": 85,
    "tests/monitoring/test_alerts_live.py": 85, "tests/e2e/test_cli_identity.py": 65,
    "tests/e2e/test_release.py": 50, "tests/infra/test_mtls.py": 50, "tests/e2e/test_cli.py": 45,
    "tests/e2e/test_authorization_matrix.py": 45, "tests/e2e/test_audit.py": 45, "tests/e2e/test_readme.py": 45,
    "tests/e2e/test_agent_events.py": 40, "tests/e2e/test_docs_page.py": 35, "tests/e2e/test_discovery.py": 35,
    "tests/e2e/test_failover.py": 35,
}
"""Seconds per file in CI-like runs (set-up + calls + tear-down), for the order when nothing is cached."""


def _cached(config: pytest.Config) -> dict[str, float]:
    cache: Any = getattr(config, "cache", None)  # absent under -p no:cacheprovider
    return dict(cache.get(_CACHE_KEY, None) or {}) if cache is not None else {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    seconds = {**KNOWN_SLOW, **_cached(config)}
    # A stable sort on the file's weight: a file's tests stay together and in their order, and every xdist
    # worker computes the same order from the same cache file, as xdist requires.
    items.sort(key=lambda item: -seconds.get(item.nodeid.split("::", 1)[0], 0.0))


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
    cache: Any = getattr(terminalreporter.config, "cache", None)
    if cache is not None:  # merged, so a run of a few files keeps the others' times: .pytest_cache/v/protomesh/
        merged = {**_cached(terminalreporter.config), **_seconds_by_file}
        cache.set(_CACHE_KEY, dict(sorted(merged.items(), key=lambda item: -item[1])))
