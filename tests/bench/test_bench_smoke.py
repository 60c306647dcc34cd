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
    "rest_read": 6,  # FastAPI, the bare stack and the mesh, 1 vs 1 vs 1 and 2 vs 2 vs 2
    "cached_read": 2,  # FastAPI uncached and Envoy with the answers in the replica's cache, 1 vs 1
    "grpc_envoy": 3,  # direct to 1, direct to 2, through Envoy
    "agent_crud": 1,
    "memory": 7,  # the agent and identity replicas, postgresql, nats-server, envoy, supervisor, the whole mesh
}
SOME_ROWS = ("grpc_overhead", "events")
"""Scenarios whose cases change with their peers' work (issue 18): at least one row each."""
REST_CPU_PARTS = {
    "mesh": {"agent replica(s)", "envoy", "identity replica(s)", "nats-server", "postgresql",
             "supervisor (trace collector)"},
    "bare stack": {"bare grpc.aio server(s)", "envoy", "postgresql", "supervisor (trace collector)"},
    "FastAPI": {"uvicorn (workers)", "postgresql", "supervisor (trace collector)"},
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
    assert {name: counts.get(name) for name in EXPECTED_ROWS} == EXPECTED_ROWS
    assert all(counts.get(name, 0) >= 1 for name in SOME_ROWS), counts
    assert set(counts) == set(EXPECTED_ROWS) | set(SOME_ROWS)


@pytest.mark.timeout(900)
def test_rest_reports_cpu_per_request_by_process_for_every_side(report: dict) -> None:
    rest = [row for row in report["rows"] if row["scenario"] == "rest_read"]
    for row in rest:
        side = next(name for name in ("bare stack", "FastAPI", "mesh") if name in row["case"])
        split = row["detail"]["cpu_us_per_req_by_process"]
        assert set(split) == REST_CPU_PARTS[side], row["case"]
        # The side's own servers did the work; PostgreSQL answered every read (the mesh's cache aside).
        own = "envoy" if side != "FastAPI" else "uvicorn (workers)"
        assert split[own] > 0, (row["case"], split)


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
    names = [t["target"] for t in report["targets"]]
    for n in (1, 2):
        assert f"REST read >= 0.95x the bare stack, p99 <= 1.1x its p99, {n} vs {n}" in names
        assert f"REST read >= 0.75x FastAPI + uvicorn, {n} vs {n}" in names
    for service in ("agent", "identity"):
        assert f"idle {service} replica <= 80 MB" in names
    assert any(name.startswith("whole mesh <= 1.5 GB") for name in names)
    for target in report["targets"]:
        assert target["measured"] and target["met"] in (True, False, None), target
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
