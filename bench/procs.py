"""Processes the benchmark starts (servers, peers, load generators): started, watched and stopped by PID."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from chassis.paths import REPO_ROOT

MB = 1024 * 1024


class BenchError(RuntimeError):
    """Something the benchmark needs did not come up, or a run failed."""


class Proc:
    """A child process with its output in a log file; stopped by PID (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None,
                 *, capture: bool = False) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115  (closed in stop())
        self.popen = subprocess.Popen(
            argv, cwd=REPO_ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=subprocess.PIPE if capture else self._log, stderr=self._log, stdin=subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def lines(self) -> Iterator[str]:
        """stdout lines (for processes started with capture=True), until it closes."""
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            yield raw.decode(errors="replace").rstrip("\n")

    def wait_line(self, wanted: str, timeout: float) -> None:
        """Block until stdout shows `wanted` (a line of its own), or fail with the log's tail."""
        found = threading.Event()

        def read() -> None:
            for line in self.lines():
                if line == wanted:
                    found.set()
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        if not found.wait(timeout):
            raise BenchError(f"{self.name} did not print {wanted!r} within {timeout:.0f}s; {self.tail()}")

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            text = []
        return f"log {self.log_path}:\n" + "\n".join(text)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait, SIGKILL if it lingers; by PID only."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self._log.close()


def python(module: str, *args: str) -> list[str]:
    """argv running a module of this project with the venv's interpreter."""
    return [sys.executable, "-m", module, *args]


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll check() until true, or raise BenchError naming what did not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(interval)
    raise BenchError(f"gave up after {timeout:.0f}s waiting for {what}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def process_tree(pids: Iterable[int]) -> list[psutil.Process]:
    """The processes and all their descendants (uvicorn workers, PostgreSQL backends...)."""
    found: dict[int, psutil.Process] = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            found[pid] = proc
            for child in proc.children(recursive=True):
                found[child.pid] = child
    return list(found.values())


def rss_bytes(pids: Iterable[int]) -> int:
    """Summed RSS of the processes and their descendants."""
    total = 0
    for proc in process_tree(pids):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def pss_bytes(pids: Iterable[int]) -> int:
    """Summed PSS (shared pages divided among their users) of the processes and their descendants."""
    total = 0
    for proc in process_tree(pids):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_full_info().pss
    return total


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time consumed so far by the processes and their descendants."""
    total = 0.0
    for proc in process_tree(pids):
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


@dataclass(frozen=True)
class Processes:
    """A named part of a side whose CPU is reported on its own (a replica, Envoy, PostgreSQL...)."""

    pids: tuple[int, ...]
    tree: bool = True
    """With their descendants (uvicorn's workers, PostgreSQL's backends); False for this process alone
    (the supervisor's trace collector runs in the benchmark's own process, beside its children)."""


def _own_cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def group_cpu_seconds(groups: Mapping[str, Processes]) -> dict[str, float]:
    """User + system CPU seconds so far of every group."""
    found: dict[str, float] = {}
    for name, group in groups.items():
        if group.tree:
            found[name] = cpu_seconds(group.pids)
        else:
            found[name] = sum(_own_cpu_seconds() if pid == os.getpid() else cpu_seconds_of(pid) for pid in group.pids)
    return found


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU time of one process (without its children)."""
    with contextlib.suppress(psutil.Error):
        times = psutil.Process(pid).cpu_times()
        return times.user + times.system
    return 0.0


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent not idle, so far (all cores)."""
    times = psutil.cpu_times()
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))


class Sampler:
    """Samples the summed RSS of some process trees every `interval` in a thread; keeps the peak, and
    the CPU time each process used between its first and last sample."""

    def __init__(self, pids: Iterable[int], interval: float = 0.2) -> None:
        self.pids = list(pids)
        self.interval = interval
        self.peak = 0
        self.thread_cpu = 0.0
        """CPU seconds this sampler's thread has used so far: the benchmark's own work, not the servers'."""
        self._cpu_first: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for proc in process_tree(self.pids):
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
                    times = proc.cpu_times()
                    self._cpu_first.setdefault(proc.pid, times.user + times.system)
                    self._cpu_last[proc.pid] = times.user + times.system
            self.peak = max(self.peak, total)
            self.thread_cpu = time.thread_time()
            self._stop.wait(self.interval)

    def cpu_used(self) -> float:
        """CPU seconds the sampled processes used while sampled."""
        return sum(self._cpu_last[pid] - first for pid, first in self._cpu_first.items())

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class _WindowCpu:
    """CPU of named process groups between the load generator's "measuring" and "measured" lines.

    A group holding this process alone (the supervisor's trace collector lives here) is charged
    without the benchmark's own sampling: the sampler's thread and the thread reading the generator.
    """

    def __init__(self, groups: Mapping[str, Processes], sampler: Sampler) -> None:
        self.groups = dict(groups)
        self.sampler = sampler
        self._start: dict[str, float] = {}
        self._own_start = 0.0
        self.used: dict[str, float] = {}

    def _own(self) -> float:
        return self.sampler.thread_cpu + time.thread_time()

    def start(self) -> None:
        self._own_start = self._own()
        self._start = group_cpu_seconds(self.groups)

    def end(self) -> None:
        end = group_cpu_seconds(self.groups)
        own = self._own() - self._own_start
        for name, group in self.groups.items():
            used = end[name] - self._start.get(name, end[name])
            if not group.tree and os.getpid() in group.pids:
                used -= own
            self.used[name] = round(max(used, 0.0), 4)


def run_loadgen(spec: dict[str, Any], log_dir: Path, server_pids: Iterable[int], name: str,
                timeout: float | None = None, groups: Mapping[str, Processes] | None = None) -> dict[str, Any]:
    """Run bench.loadgen with `spec` while sampling the servers' RSS and CPU; its result plus
    peak_rss_mb, server_cpu_s and server_cpu_us_per_req (servers' CPU over the measured window), and
    cpu_s_by_process: the CPU seconds of each of `groups` over the same window."""
    pids = list(server_pids)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, dir=log_dir) as handle:
        json.dump(spec, handle)
    limit = timeout or float(spec["warmup"]) + float(spec["duration"]) + 60
    generator = Proc(f"loadgen-{name}", python("bench.loadgen", handle.name), log_dir, capture=True)
    result: dict[str, Any] | None = None
    cpu: dict[str, float] = {}
    try:
        with Sampler(pids) as sampler:
            window = _WindowCpu(groups or {}, sampler)
            watchdog = threading.Timer(limit, generator.stop)
            watchdog.start()
            try:
                for line in generator.lines():
                    if line == "measuring":
                        cpu["start"], cpu["busy_start"] = cpu_seconds(pids), busy_cpu_seconds()
                        window.start()
                    elif line == "measured":
                        cpu["end"], cpu["busy_end"] = cpu_seconds(pids), busy_cpu_seconds()
                        window.end()
                    elif line.startswith("{"):
                        result = json.loads(line)
            finally:
                watchdog.cancel()
            generator.popen.wait(10)
    finally:
        generator.stop()
        Path(handle.name).unlink(missing_ok=True)
    if result is None:
        raise BenchError(f"the load generator for {name} gave no result; {generator.tail()}")
    server_cpu = cpu.get("end", 0.0) - cpu.get("start", 0.0)
    result["peak_rss_mb"] = round(sampler.peak / MB, 1)
    result["server_cpu_s"] = round(server_cpu, 3)
    result["server_cpu_us_per_req"] = round(server_cpu / result["requests"] * 1e6, 1) if result["requests"] else 0.0
    # CPU used by anything else on the machine meanwhile (PostgreSQL, this process, other tenants).
    busy = cpu.get("busy_end", 0.0) - cpu.get("busy_start", 0.0)
    result["other_cpu_s"] = round(max(busy - server_cpu - result["generator_cpu_s"], 0.0), 3)
    result["cpu_s_by_process"] = window.used
    return result
