"""The benchmark harness in smoke mode: every scenario runs for a moment and its result file is complete.

Correctness of the harness only: nothing here looks at how fast anything was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chassis.paths import REPO_ROOT

EXPECTED_ROWS = {
    "grpc_overhead": 4,  # bare, chassis, chassis with sampled traces, chassis untraced
    "rest_read": 4,  # FastAPI and Envoy, 1 vs 1 and 2 vs 2
    "cached_read": 2,  # FastAPI uncached and Envoy with the answers in the replica's cache, 1 vs 1
    "grpc_envoy": 3,  # direct to 1, direct to 2, through Envoy
    "agent_crud": 1,
    "events": 6,  # naive, windowed, outbox, naive paced, outbox paced, outbox at half its own rate
    "memory": 7,  # the agent and identity replicas, postgresql, nats-server, envoy, supervisor, the whole mesh
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    results = tmp_path_factory.mktemp("bench-results")
    done = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--results-dir", str(results)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=840)
    assert done.returncode == 0, f"bench --smoke failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    latest = results / "latest.json"
    assert latest.exists()
    assert len(list(results.glob("*-smoke.json"))) == 1, "a dated copy is written next to latest.json"
    return json.loads(latest.read_text())


@pytest.mark.timeout(900)
def test_every_scenario_reports_every_row(report: dict) -> None:
    assert report["failures"] == []
    assert report["options"]["smoke"] is True
    counts: dict[str, int] = {}
    for row in report["rows"]:
        counts[row["scenario"]] = counts.get(row["scenario"], 0) + 1
    assert counts == EXPECTED_ROWS


@pytest.mark.timeout(900)
def test_every_number_is_positive_and_nothing_failed(report: dict) -> None:
    for row in report["rows"]:
        assert row["metrics"], row
        for name, value in row["metrics"].items():
            assert isinstance(value, int | float) and value > 0, f"{row['scenario']} / {row['case']}: {name}={value}"
        assert row["errors"] == 0, f"{row['scenario']} / {row['case']}: {row['error_samples']}"


@pytest.mark.timeout(900)
def test_ratios_and_targets_are_reported(report: dict) -> None:
    for row in report["rows"]:
        for ratio in row["ratios"]:
            assert ratio["value"] > 0, (row["case"], ratio)
            if "target" in ratio:
                assert isinstance(ratio["met"], bool)
    assert len(report["targets"]) == 8  # grpc, rest 1v1 and 2v2, cached read, events rate and latency, memory x2
    assert {"nproc", "cpu_model", "date"} <= set(report["machine"])


def test_help_names_every_option() -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0
    for option in ("--smoke", "--only", "--duration", "--concurrency"):
        assert option in done.stdout


def test_scripts_bench_exists_and_is_executable() -> None:
    script = Path(REPO_ROOT) / "scripts" / "bench"
    assert script.exists() and script.stat().st_mode & 0o111
