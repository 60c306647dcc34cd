"""Idle memory: every replica, and the whole default mesh exactly as `protomesh up` starts it.

The mesh runs in its own supervisor process (`python -m chassis.tooling.cli up`: 2 replicas of every
service, PostgreSQL, nats-server, Envoy, the trace collector in the supervisor). After it is up
and has settled, RSS and PSS are read per process; the whole mesh is the supervisor's process tree.
RSS counts shared pages (libraries, PostgreSQL's shared buffers) once per process that maps them,
so summed RSS overstates what the machine spends; PSS divides shared pages among their users.
The issue's verdicts use RSS, the stricter of the two; the whole mesh's PSS gets a verdict of its own.
"""

from __future__ import annotations

import json
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import psutil

from bench.core import Context, add_target
from bench.procs import MB, BenchError, Proc, process_tree, wait_until
from chassis.tooling.infra.ports import free_port
from chassis.tooling.supervisor import Mesh, MeshOptions

SCENARIO = "memory"
REPLICA_TARGET_MB = 80.0
MESH_TARGET_MB = 1536.0


def _memory(pids: list[int]) -> tuple[float, float]:
    rss = pss = 0
    for proc in process_tree(pids):
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        rss, pss = rss + info.rss, pss + info.pss
    return rss / MB, pss / MB


def _row(case: str, rss: float, pss: float, *, role: str, target: float | None = None, note: str = "") -> dict:
    ratios = []
    if target is not None:
        ratios.append({"name": "RSS", "vs": "", "value": round(rss, 1), "unit": "MB", "target": f"<= {target:g} MB",
                       "met": rss <= target})
    return {"scenario": SCENARIO, "case": case, "role": role, "unit": "MB",
            "metrics": {"rss_mb": round(rss, 1), "pss_mb": round(pss, 1)}, "errors": 0, "error_samples": [],
            "detail": {}, "ratios": ratios, "note": note}


def run(ctx: Context) -> None:
    smoke = ctx.options.smoke
    ctx.say(f"==> {SCENARIO}: idle RSS of the {'agent-only (smoke)' if smoke else 'default'} mesh (`protomesh up`)")
    state_dir = ctx.work_dir / "memory-mesh"
    port = free_port()
    argv = [sys.executable, "-m", "chassis.tooling.cli", "--state-dir", str(state_dir), "up", "--port", str(port)]
    if smoke:
        argv += ["--only", "agent", "--replicas", "1"]
    # A password given up front: `up` prints a generated one, and its output goes to a log file here.
    supervisor = Proc("protomesh-up", argv, ctx.log_dir,
                      env={"PROTOMESH_ADMIN_PASSWORD": secrets.token_urlsafe(24)})
    try:
        wait_until(lambda: "protomesh is up" in supervisor.log_path.read_text(errors="replace"), 240,
                   "`protomesh up` to report the mesh up")
        settle = 2.0 if smoke else 8.0
        time.sleep(settle)  # start-up garbage collected, first health rounds and registrations done
        state = json.loads((state_dir / "mesh.json").read_text())
        samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for _ in range(1 if smoke else 3):
            for entry in state["processes"]:
                samples[entry["name"]].append(_memory([entry["pid"]]))
            samples["supervisor (trace collector, registry bridge)"].append(_memory_self(state["supervisor_pid"]))
            samples["whole mesh"].append(_memory([state["supervisor_pid"]]))
            time.sleep(1.0)
    finally:
        supervisor.stop(timeout=60)
    peak = {name: (max(r for r, _ in values), max(p for _, p in values)) for name, values in samples.items()}
    by_service: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    for entry in state["processes"]:
        if "service" in entry:
            by_service[entry["service"]].append((entry["name"], *peak[entry["name"]]))
    worst_replica = 0.0
    replica_verdicts = []
    for service, replicas in sorted(by_service.items()):
        rss = max(r for _, r, _ in replicas)
        pss = max(p for _, _, p in replicas)
        worst_replica = max(worst_replica, rss)
        ctx.rows.append(_row(f"{service} replica, idle (largest of {len(replicas)})", rss, pss, role="ours",
                             target=REPLICA_TARGET_MB,
                             note=", ".join(f"{name} {r:.1f}" for name, r, _ in replicas)))
        replica_verdicts.append((service, rss, len(replicas)))
    # The default mesh runs every service the contracts declare and the repository implements; one that
    # did not start would make the whole mesh look lighter than it is.
    missing = sorted(set(_expected_services(smoke)) - set(by_service))
    if missing:
        raise BenchError(f"`protomesh up` ran no replica of {', '.join(missing)}; its log: {supervisor.log_path}")
    for name in ("postgresql", "nats-server", "envoy", "supervisor (trace collector, registry bridge)"):
        if name in peak:
            ctx.rows.append(_row(name + (" (postmaster and backends)" if name == "postgresql" else ""),
                                 *peak[name], role="info"))
    mesh_rss, mesh_pss = peak["whole mesh"]
    ctx.rows.append(_row(f"whole mesh, idle ({len(state['processes'])} processes + supervisor)", mesh_rss, mesh_pss,
                         role="ours", target=MESH_TARGET_MB))
    add_target(ctx, f"idle memory <= {REPLICA_TARGET_MB:g} MB per service replica",
               f"largest replica RSS {worst_replica:.1f} MB", worst_replica <= REPLICA_TARGET_MB)
    for service, rss, count in replica_verdicts:
        add_target(ctx, f"idle {service} replica <= {REPLICA_TARGET_MB:g} MB",
                   f"RSS {rss:.1f} MB (largest of {count})", rss <= REPLICA_TARGET_MB)
    add_target(ctx, "whole default mesh <= 1.5 GB" if not smoke else "whole mesh <= 1.5 GB (smoke: agent only)",
               f"RSS {mesh_rss:.0f} MB (PSS {mesh_pss:.0f} MB): {len(by_service)} services "
               f"({', '.join(sorted(by_service))}), {len(state['processes'])} processes + supervisor",
               mesh_rss <= MESH_TARGET_MB)
    # RSS counts every shared page once per process that maps it: PostgreSQL's shared buffers once per
    # backend (~5 MB each, ~75 backends), the same libraries once per replica. PSS is what the machine
    # spends; both are reported, the RSS verdict above is the issue's.
    add_target(ctx, "whole default mesh <= 1.5 GB PSS (shared pages divided among their users)",
               f"PSS {mesh_pss:.0f} MB (RSS {mesh_rss:.0f} MB)", mesh_pss <= MESH_TARGET_MB)


def _expected_services(smoke: bool) -> list[str]:
    """The services `protomesh up` runs here: all of them (smoke: agent, and identity which every mesh runs)."""
    mesh = Mesh(MeshOptions(state_dir=Path(tempfile.gettempdir()) / "protomesh-bench-unused", only=["agent"] if smoke
                            else None))
    return mesh._services_to_run()


def _memory_self(pid: int) -> tuple[float, float]:
    try:
        info = psutil.Process(pid).memory_full_info()
    except psutil.Error:
        return 0.0, 0.0
    return info.rss / MB, info.pss / MB
