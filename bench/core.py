"""What every scenario shares: the run's options, interleaved comparisons, result rows, ratios and targets."""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.loadgen import summarize
from bench.procs import Processes, run_loadgen


@dataclass
class Options:
    """How long and how hard each measurement runs."""

    duration: float = 12.0
    """Measured seconds per case (split over the interleaved rounds of a comparison)."""
    warmup: float = 2.0
    """Unmeasured seconds before each measured round."""
    concurrency: int = 64
    """Requests in flight (HTTP and gRPC scenarios)."""
    rounds: int = 2
    """Each comparison alternates its sides A B .. B A over this many rounds, so drift in the
    machine's speed (other tenants, CPU boost) falls on both sides alike."""
    event_producers: int = 16
    """Concurrent producer transactions of the outbox side of the events scenario."""
    replica_tracing: bool = True
    trace_sampling: float | None = None
    """Share of new traces recorded whole by the mesh (replicas and Envoy); None: the local mesh's default."""
    """Mesh scenarios: replicas export OpenTelemetry spans (as `protomesh up` runs them)."""
    smoke: bool = False
    """Tiny runs that check the harness, not the numbers."""


@dataclass
class Context:
    """A run in progress: options, where logs go, progress output, and the rows collected so far."""

    options: Options
    work_dir: Path
    say: Callable[[str], None] = print
    rows: list[dict[str, Any]] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        path = self.work_dir / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass
class Side:
    """One side of a comparison: a load generator spec (without timings) aimed at some servers."""

    key: str
    spec: dict[str, Any]
    pids: Callable[[], list[int]]
    """PIDs whose process trees are the servers of this side (RSS and CPU are sampled over them)."""
    groups: Callable[[], dict[str, Processes]] | None = None
    """The processes this side's requests cost CPU in, by name (its servers, and what they share: PostgreSQL,
    the trace collector...), each reported per request on its own; None: only the servers' total."""


def measure(ctx: Context, sides: list[Side], *, duration: float | None = None,
            concurrency: int | None = None) -> dict[str, dict[str, Any]]:
    """Measure every side with the same generator, concurrency and total duration, interleaved
    A B C, C B A, ... over `rounds`; merged results by side key."""
    opts = ctx.options
    rounds = 1 if opts.smoke or len(sides) == 1 else max(1, opts.rounds)
    per_round = (duration or opts.duration) / rounds
    parts: dict[str, list[dict[str, Any]]] = {side.key: [] for side in sides}
    for index in range(rounds):
        order = sides if index % 2 == 0 else list(reversed(sides))
        for side in order:
            latency_file = ctx.log_dir / f"latencies-{side.key}-{index}.bin"
            spec = {**side.spec, "warmup": opts.warmup, "duration": per_round,
                    "concurrency": concurrency or side.spec.get("concurrency") or opts.concurrency,
                    "latency_file": str(latency_file)}
            result = run_loadgen(spec, ctx.log_dir, side.pids(), side.key,
                                 groups=side.groups() if side.groups else None)
            values = array("d")
            with open(latency_file, "rb") as handle:
                values.frombytes(handle.read())
            latency_file.unlink()
            result["_latencies"] = values
            parts[side.key].append(result)
            ctx.say(f"    {side.key:<28} round {index + 1}/{rounds}: {result['throughput']:>9.1f}/s  "
                    f"p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms  errors {result['errors']}")
    return {key: merge(results) for key, results in parts.items()}


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from the rounds of one side: summed counts and times, percentiles over all latencies."""
    latencies = array("d")
    for result in results:
        latencies.extend(result.pop("_latencies"))
    requests = sum(r["requests"] for r in results)
    elapsed = sum(r["elapsed_s"] for r in results)
    server_cpu = sum(r["server_cpu_s"] for r in results)
    merged = {
        **summarize(latencies),
        "requests": requests,
        "elapsed_s": round(elapsed, 3),
        "throughput": round(requests / elapsed, 1) if elapsed else 0.0,
        "errors": sum(r["errors"] for r in results),
        "error_samples": [s for r in results for s in r["error_samples"]][:5],
        "generator_cpu_s": round(sum(r["generator_cpu_s"] for r in results), 3),
        "server_cpu_s": round(server_cpu, 3),
        "server_cpu_us_per_req": round(server_cpu / requests * 1e6, 1) if requests else 0.0,
        "other_cpu_s": round(sum(r.get("other_cpu_s", 0.0) for r in results), 3),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        "rounds": len(results),
    }
    by_process: dict[str, float] = {}
    for result in results:
        for name, seconds in result.get("cpu_s_by_process", {}).items():
            by_process[name] = by_process.get(name, 0.0) + seconds
    if by_process and requests:
        merged["cpu_us_per_req_by_process"] = {name: round(seconds / requests * 1e6, 1)
                                               for name, seconds in by_process.items()}
    if len(results) == 1:
        merged["by_op"] = results[0].get("by_op", {})
    return merged


def ratio(name: str, ours: float, theirs: float, *, target: float | None = None, higher_is_better: bool = True,
          vs: str = "") -> dict[str, Any]:
    """ours / theirs, and whether it meets the target (>= target, or <= target when lower is better)."""
    value = ours / theirs if theirs else 0.0
    entry: dict[str, Any] = {"name": name, "vs": vs, "value": round(value, 3)}
    if target is not None:
        entry["target"] = f"{'>=' if higher_is_better else '<='} {target:g}"
        entry["met"] = value >= target if higher_is_better else value <= target
    return entry


def load_row(scenario: str, case: str, result: dict[str, Any], *, role: str, unit: str = "req/s",
             ratios: list[dict[str, Any]] | None = None, note: str = "") -> dict[str, Any]:
    """A result row of a load measurement."""
    metrics = {
        "throughput": result["throughput"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "peak_rss_mb": result["peak_rss_mb"],
        "server_cpu_us_per_op": result["server_cpu_us_per_req"],
    }
    detail: dict[str, Any] = {
        k: result[k] for k in ("requests", "elapsed_s", "p90_ms", "max_ms", "mean_ms", "generator_cpu_s",
                               "server_cpu_s", "other_cpu_s", "rounds", "committed_per_s", "to_stream",
                               "stream_to_handled", "cpu_us_per_req_by_process") if k in result}
    if result.get("by_op") and len(result["by_op"]) > 1:
        detail["by_op"] = result["by_op"]
    return {"scenario": scenario, "case": case, "role": role, "unit": unit, "metrics": metrics,
            "errors": result.get("errors", 0), "error_samples": result.get("error_samples", []),
            "detail": detail, "ratios": ratios or [], "note": note}


def add_target(ctx: Context, target: str, measured: str, met: bool | None) -> None:
    """A line of the targets summary."""
    ctx.targets.append({"target": target, "measured": measured, "met": met})


def now_stamp() -> str:
    """Local date and time, for file names and the report."""
    return time.strftime("%Y-%m-%dT%H%M%S")
