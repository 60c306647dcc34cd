"""Blue-green releases inside the local mesh's supervisor: green replicas from the working tree beside
the running blue ones, the gateway's traffic shifted to them in steps through Envoy's endpoint weights,
each step judged from the replicas' and Envoy's figures, then promotion or rollback on its own.

Why in the supervisor: it owns the processes (a promoted green is restarted like any replica, and a
mesh that stops takes a half-done release's replicas with it) and the endpoint files Envoy follows.
`protomesh release` (chassis.tooling.release_cli) only hands over a request and follows the status
file, so a release carries on, and can be aborted, when that terminal goes away.

Threads: the release runs in its own thread (it mostly waits); every change to the mesh's list of
replicas is handed to the supervisor's main loop (`tick`), the only thread that restarts replicas,
so a blue replica being stopped is never mistaken for one that died.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import psycopg
from psycopg import sql

from chassis.identity import CLAIMS_HEADER
from chassis.paths import REPO_ROOT
from chassis.registry import Instance
from chassis.tooling.credentials import write_private
from chassis.tooling.infra.ports import LOOPBACK
from chassis.tooling.release_plan import (
    ABORT_FILE,
    FINAL_STATES,
    RELEASE_DIR,
    REQUEST_FILE,
    STATUS_FILE,
    PlanError,
    ReleaseRequest,
    colour_weigher,
    migration_problems,
)
from chassis.tooling.release_slo import (
    Counts,
    Figures,
    gateway_errors,
    judge,
    scrape_envoy_hosts,
    scrape_replica,
    total,
)
from chassis.tooling.supervisor import SUPERVISOR_IDENTITY, Mesh, ReplicaProcess, pid_alive, replica_channel

logger = logging.getLogger(__name__)

T = TypeVar("T")
POLL_SECONDS = 0.25
GREEN_START_TIMEOUT = 90.0
WARM_UP_CALLS = 12
WARM_UP_SECONDS = 3.0
DRAIN_TIMEOUT = 10.0
"""How long a release waits for stopped replicas to leave the registry before Envoy's split is dropped."""


class Rollback(Exception):
    """A step found green wanting (or someone aborted): traffic goes back to blue."""

    def __init__(self, reason: str, state: str = "rolled_back") -> None:
        super().__init__(reason)
        self.state = state


def release_dir(state_dir: Path) -> Path:
    """Where a mesh keeps its release request, status and abort files."""
    return state_dir / RELEASE_DIR


def read_status(state_dir: Path) -> dict[str, Any] | None:
    """The current (or last) release's status; None before the first."""
    try:
        status: dict[str, Any] = json.loads((release_dir(state_dir) / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return status


def active_release(state_dir: Path) -> dict[str, Any] | None:
    """The release running now: its status while it is not finished and its supervisor still runs."""
    status = read_status(state_dir)
    if status is None or status.get("state") in FINAL_STATES or not pid_alive(status.get("supervisor_pid", 0)):
        return None
    return status


def applied_migrations(database_url: str, schema: str) -> set[int]:
    """Versions the service's schema already has (empty before its first start)."""
    query = sql.SQL("SELECT version FROM {}.schema_migrations").format(sql.Identifier(schema))
    try:
        with psycopg.connect(database_url, connect_timeout=5) as conn:
            return {int(row[0]) for row in conn.execute(query).fetchall()}
    except psycopg.errors.UndefinedTable:
        return set()


def migrations_folder(mesh: Mesh, service: str) -> Path:
    """services/<name>/migrations of the working tree (what green would apply on start)."""
    return REPO_ROOT.joinpath(*mesh.catalog.service(service).module.split("."), "migrations")


class ReleaseController:
    """Picks up release requests in the supervisor and runs one at a time (`tick` from its main loop)."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.dir = release_dir(mesh.state_dir)
        self._actions: queue.Queue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._green: list[ReplicaProcess] = []
        self._status: dict[str, Any] = {}

    # --- the supervisor's side ---------------------------------------------------------------------------

    def tick(self) -> None:
        """Run what the release thread asked of the mesh; start a requested release. Main thread only."""
        self._run_actions()
        request_path = self.dir / REQUEST_FILE
        if not request_path.exists() or self._stopping.is_set():
            return
        try:
            request = ReleaseRequest.from_json(request_path.read_text())
        except (OSError, PlanError) as exc:
            request_path.unlink(missing_ok=True)
            logger.warning("unreadable release request dropped", extra={"error": str(exc)})
            return
        if self._thread is not None and self._thread.is_alive():
            return  # the CLI refuses a second release; a request written anyway waits for this one to end
        self._status = {"id": request.id, "service": request.service, "state": "starting", "step": 0,
                        "steps": list(request.steps), "share": 0.0, "events": [], "green": [], "blue": [],
                        "supervisor_pid": os.getpid(), "started_at": time.time(), "finished_at": None,
                        "request": json.loads(request.to_json())}
        self._write_status()  # active before the request disappears: a second CLI sees one or the other
        request_path.unlink(missing_ok=True)
        (self.dir / ABORT_FILE).unlink(missing_ok=True)
        self._thread = threading.Thread(target=self._run, args=(request,), name=f"release-{request.service}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """The mesh is stopping: end a running release (traffic to blue, green stopped)."""
        self._stopping.set()
        deadline = time.monotonic() + 60
        while self._thread is not None and self._thread.is_alive() and time.monotonic() < deadline:
            self._run_actions()
            self._thread.join(timeout=0.1)
        for replica in self._green:
            if replica.is_running():
                replica.stop(timeout=15)

    def _run_actions(self) -> None:
        while True:
            try:
                action, future = self._actions.get_nowait()
            except queue.Empty:
                return
            try:
                future.set_result(action())
            except Exception as exc:  # handed back to the release thread, which reports it
                future.set_exception(exc)

    def _on_main(self, action: Callable[[], T], timeout: float = 120.0) -> T:
        """Run `action` in the supervisor's main loop and wait for its result."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._actions.put((action, future))
        return future.result(timeout=timeout)

    # --- status ------------------------------------------------------------------------------------------

    def _write_status(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_private(self.dir / STATUS_FILE, json.dumps(self._status, indent=1))

    def _say(self, line: str, **fields: Any) -> None:
        """One line of the release's story: in its status file (the CLI prints it) and the supervisor's output."""
        line = f"[{time.time() - self._status['started_at']:5.1f}s] {line}"
        self._status["events"].append(line)
        self._status.update(fields)
        self._write_status()
        self.mesh.progress(f"    release {self._status['service']}: {line}")

    def _check_abort(self) -> None:
        abort = self.dir / ABORT_FILE
        if self._stopping.is_set():
            raise Rollback("the mesh is stopping", state="aborted")
        with contextlib.suppress(OSError):
            if abort.read_text().strip() in ("", self._status["id"]):
                raise Rollback("aborted by hand (protomesh release --abort)", state="aborted")

    # --- the release ---------------------------------------------------------------------------------------

    def _run(self, request: ReleaseRequest) -> None:
        try:
            self._release(request)
        except Exception as exc:  # a release left "running" would make every later one be refused
            logger.exception("release failed")
            if self._status.get("state") not in FINAL_STATES:
                self._finish("failed", f"the release failed: {exc}; see the supervisor's output")

    def _release(self, request: ReleaseRequest) -> None:
        started = time.monotonic()
        service = request.service
        bridge = self.mesh.bridge
        try:
            request.check(list(self.mesh.replicas))
            blue = list(self.mesh.replicas[service])
            if not blue or bridge is None:
                raise PlanError(f"{service} has no running replicas to release beside")
            problems = migration_problems(migrations_folder(self.mesh, service),
                                          applied_migrations(self.mesh.database_url, service))
            if problems:
                raise PlanError("refused: a migration is not expand-then-contract safe:\n  " + "\n  ".join(problems))
        except (PlanError, psycopg.Error) as exc:
            self._finish("refused", str(exc))
            return
        count = request.replicas or len(blue)
        module = request.module or self.mesh.catalog.service(service).module
        try:
            self._green = self._on_main(lambda: [self.mesh.new_replica(service, request.env) for _ in range(count)])
            for replica in self._green:
                replica.argv = [*replica.argv[:-1], module]  # `python -m <module>`: the build under release
            targets = frozenset(r.address for r in self._green)
            bridge.weigh(service, colour_weigher(targets, 0.0))  # before green registers: no call reaches it yet
            self._say(f"starting {count} green replica(s) ({module}, from the working tree) beside "
                      f"{len(blue)} blue: {', '.join(r.instance_id for r in self._green)}",
                      green=[r.instance_id for r in self._green], blue=[r.instance_id for r in blue])
            for replica in self._green:
                replica.launch()
            self._wait_green_serving()
            for replica in self._green:
                self._warm_up(replica)
            self._say(f"step 0%: green SERVING and warmed up ({time.monotonic() - started:.1f}s), no traffic yet",
                      state="baking")
            self._steps(request, targets)
        except Rollback as rollback:
            self._roll_back(request, rollback)
            return
        except Exception as exc:  # whatever broke, traffic must end on blue
            logger.exception("release failed")
            self._roll_back(request, Rollback(f"the release failed: {exc}", state="failed"))
            return
        self._promote(request, blue, targets, started)

    def _wait_green_serving(self) -> None:
        deadline = time.monotonic() + GREEN_START_TIMEOUT
        waiting = list(self._green)
        while waiting:
            self._check_abort()
            for replica in list(waiting):
                if not replica.is_running():
                    # Its log is named, not quoted: a start-up failure may print connection details.
                    raise Rollback(f"green {replica.instance_id} exited while starting (code {replica.returncode}); "
                                   f"see {replica.log_path}")
                if replica.serving(timeout=0.5):
                    waiting.remove(replica)
            if time.monotonic() > deadline:
                raise Rollback(f"green did not report SERVING within {GREEN_START_TIMEOUT:.0f}s; see "
                               f"{self.mesh.log_dir}")
            time.sleep(POLL_SECONDS)

    def _warm_up(self, replica: ReplicaProcess) -> None:
        """Call a green replica's reads a few times before it takes traffic: a fresh process answers its first
        calls slowly (connections to open, code paths to load), and a step should judge the build, not its start.

        Straight to the replica over mTLS with the supervisor's certificate, carrying the CLI session's claims as
        the gateway would; whatever these calls answer is left out of the figures (counted before step 1).
        """
        service = self._status["service"]
        reads = [m for m in self.mesh.catalog.service(service).methods if m.idempotency_level == "NO_SIDE_EFFECTS"]
        token = self.mesh.token()
        metadata = ((CLAIMS_HEADER, token.split(".")[1]),) if token else ()
        if not reads:
            return
        with replica_channel(replica.address, self.mesh.tls_files(SUPERVISOR_IDENTITY), service) as channel:
            deadline = time.monotonic() + WARM_UP_SECONDS
            for number in range(WARM_UP_CALLS):
                if time.monotonic() > deadline:
                    break  # a slow build stays slow: the steps will tell
                call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                    reads[number % len(reads)].grpc_path)
                with contextlib.suppress(grpc.RpcError):  # an empty request may be refused: still warm
                    call(b"", timeout=5, metadata=metadata)

    def _colour_counts(self, targets: frozenset[str]) -> tuple[Counts, Counts]:
        """(blue, green) counters of the service's registered replicas, read from their /metrics now."""
        service = self._status["service"]
        bridge = self.mesh.bridge
        instances: list[Instance] = bridge.view(service) if bridge else []
        blue: list[Counts] = []
        green: list[Counts] = []
        for instance in instances:
            port = instance.meta.get("metrics_port", "")
            if not port.isdigit():
                continue
            counts = scrape_replica(f"http://{instance.address}:{port}/metrics", service)
            (green if instance.target in targets else blue).append(counts)
        return total(blue), total(green)

    def _steps(self, request: ReleaseRequest, targets: frozenset[str]) -> None:
        service = request.service
        admin = f"{LOOPBACK}:{self.mesh.admin_port}"
        blue_at_start, green_at_start = self._colour_counts(targets)
        assert self.mesh.bridge is not None  # noqa: S101 checked before the release started: narrows the type
        for number, percent in enumerate(request.steps, start=1):
            share = percent / 100
            self.mesh.bridge.weigh(service, colour_weigher(targets, share))
            self._say(f"step {number}/{len(request.steps)}: {percent:g}% of {service}'s calls to green, "
                      f"bake {request.bake_seconds:g}s", step=number, share=percent)
            blue_before, green_before = self._colour_counts(targets)
            envoy_before = scrape_envoy_hosts(admin, service)
            step_started = time.monotonic()
            while True:
                time.sleep(POLL_SECONDS)
                self._check_abort()
                for replica in self._green:
                    if not replica.is_running():
                        raise Rollback(f"green {replica.instance_id} exited (code {replica.returncode})")
                blue_now, green_now = self._colour_counts(targets)
                extra = gateway_errors(envoy_before, scrape_envoy_hosts(admin, service), targets)
                green = Figures.of(green_now.since(green_before), extra)
                blue_step = Figures.of(blue_now.since(blue_before))
                # Latency over everything each colour served since the release began: more calls, steadier tails.
                green_latency = Figures.of(green_now.since(green_at_start))
                baseline = Figures.of(blue_now.since(blue_at_start))
                verdict = judge(green, green_latency, baseline, request.thresholds) if share > 0 else None
                elapsed = time.monotonic() - step_started
                figures = (f"green {green.describe()}; blue {blue_step.describe()}; since the release began: "
                           f"green p90/p99 {_ms(green_latency.p90_ms)}/{_ms(green_latency.p99_ms)}, "
                           f"blue {_ms(baseline.p90_ms)}/{_ms(baseline.p99_ms)}")
                if verdict is not None and verdict.breach:
                    self._say(f"  {figures}")
                    raise Rollback(f"{verdict.breach} at {percent:g}% after {elapsed:.1f}s")
                if elapsed < request.bake_seconds:
                    continue
                if verdict is None or verdict.enough:
                    self._say(f"  {figures} -> healthy")
                    break
                if elapsed >= request.longest_step:
                    self._say(f"  {figures}")
                    raise Rollback(f"too little traffic to judge green at {percent:g}%: {green.requests} calls in "
                                   f"{elapsed:.0f}s, {request.thresholds.min_requests} needed (--min-requests)")

    def _promote(self, request: ReleaseRequest, blue: list[ReplicaProcess], targets: frozenset[str],
                 started: float) -> None:
        service = request.service
        self._say("promoting: green becomes the service's replicas, blue stops", state="promoting")

        def adopt_green() -> None:
            self.mesh.replicas[service] = list(self._green)  # from now on restarted by the supervisor like any
            self.mesh.write_state()

        self._on_main(adopt_green)
        for replica in blue:
            replica.stop(timeout=15)
        self._green = []
        self._drained(service, {r.address for r in blue})
        self._finish("promoted", f"promoted in {time.monotonic() - started:.1f}s: {service} runs "
                                 f"{', '.join(r.instance_id for r in self.mesh.replicas[service])}")

    def _roll_back(self, request: ReleaseRequest, rollback: Rollback) -> None:
        service = request.service
        bridge = self.mesh.bridge
        self._say(f"ROLLBACK: {rollback}", state="rolling_back")
        if bridge is not None:
            bridge.weigh(service, colour_weigher(frozenset(r.address for r in self._green), 0.0))
        self._say(f"100% of {service}'s calls on blue again; stopping green")
        for replica in self._green:
            if replica.is_running():
                replica.stop(timeout=15)
        self._drained(service, {r.address for r in self._green})
        self._green = []
        self._finish(rollback.state, f"{rollback.state.replace('_', ' ')}: {service} stays on blue")

    def _drained(self, service: str, gone: set[str]) -> None:
        """Wait until stopped replicas left the registry, then let Envoy weigh every endpoint alike again."""
        bridge = self.mesh.bridge
        if bridge is None:
            return
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline and any(i.target in gone for i in bridge.view(service)):
            time.sleep(POLL_SECONDS)
        bridge.weigh(service, None)

    def _finish(self, state: str, line: str) -> None:
        self._say(line, state=state, finished_at=time.time())


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"
