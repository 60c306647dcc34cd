"""scripts/fault_demo as a person runs it: the shortest demo ends by itself and prints its timeline and summary."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SECONDS = 10  # the demo's minimum length; the subprocess gets a few more to start and stop


def test_fault_demo_opens_the_breaker_serves_fallbacks_and_recovers() -> None:
    done = subprocess.run([sys.executable, "-m", "scripts.fault_demo", "--seconds", str(SECONDS), "--rate", "10"],
                          cwd=REPO, capture_output=True, text=True, timeout=SECONDS + 10)
    out = done.stdout
    assert done.returncode == 0, done.stderr[-2000:] + out[-2000:]
    # The four phases, each with its per-phase line of calls.
    assert re.findall(r"== endpoint (\w+)", out) == ["healthy", "slow", "failing", "healthy"]
    assert len(re.findall(r"^\[.*\]\s+\d+ calls: ", out, re.MULTILINE)) == 4
    # The slow and failing endpoint open the breaker; the healthy one closes it again by the end.
    assert "breaker -> OPENED" in out
    assert "== done: breaker closed" in out
    totals = re.search(r"^totals: (\d+) calls, (\d+) fresh, (\d+) cache hits, (\d+) stale fallbacks served, "
                       r"(\d+) failed; retries (\d+), short-circuited (\d+)$", out, re.MULTILINE)
    assert totals, out
    calls, fresh, hits, stale, failed, _retries, short = map(int, totals.groups())
    assert calls == fresh + hits + stale + failed and fresh > 0 and hits > 0 and stale > 0 and short > 0
    ratio = re.search(r"^success ratio: (\d+)/(\d+) = ", out, re.MULTILINE)
    assert ratio and int(ratio.group(1)) == fresh + hits + stale and int(ratio.group(2)) == calls
