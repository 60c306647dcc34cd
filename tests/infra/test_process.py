"""ManagedProcess against small real child processes: readiness, stop escalation, pause, error messages."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chassis.tooling.infra.ports import free_port, port_in_use, wait_for_port
from chassis.tooling.infra.process import InfraError, ManagedProcess, PortInUseError, as_user, ensure_port_free

# A child that ignores SIGTERM, so stop() has to escalate to SIGKILL.
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"


def _python(code: str, log: Path) -> ManagedProcess:
    return ManagedProcess([sys.executable, "-c", code], log_path=log)


def test_stop_escalates_to_sigkill_when_the_child_ignores_sigterm(tmp_path: Path) -> None:
    proc = _python(STUBBORN, tmp_path / "stubborn.log")
    proc.start()
    proc.poll_until(lambda: "up" in proc.log_tail().splitlines(), 10, "printed 'up'")
    started = time.monotonic()
    code = proc.stop(timeout=0.5)
    assert code == -signal.SIGKILL
    assert time.monotonic() - started < 5
    assert not proc.is_running()


def test_child_runs_in_its_own_session_so_ctrl_c_reaches_only_the_supervisor(tmp_path: Path) -> None:
    import os

    proc = _python("import time; time.sleep(60)", tmp_path / "sleep.log")
    proc.start()
    try:
        assert proc.pid is not None
        assert os.getsid(proc.pid) == proc.pid
        assert os.getpgid(proc.pid) != os.getpgid(0)
    finally:
        assert proc.stop() == -signal.SIGTERM


def test_paused_child_can_still_be_stopped(tmp_path: Path) -> None:
    proc = _python("import time; time.sleep(60)", tmp_path / "sleep.log")
    proc.start()
    proc.pause()
    assert proc.is_running()
    proc.resume()
    proc.pause()
    assert proc.stop(timeout=5) == -signal.SIGTERM


def test_child_that_exits_during_start_raises_with_the_end_of_its_log(tmp_path: Path) -> None:
    class NeverReady(ManagedProcess):
        name = "broken-thing"

        def wait_ready(self, timeout: float) -> None:
            self.poll_until(lambda: False, timeout, "never")

    proc = NeverReady(
        [sys.executable, "-c", "import sys; print('config file is bad: line 3'); sys.exit(3)"],
        log_path=tmp_path / "broken.log",
    )
    with pytest.raises(InfraError) as caught:
        proc.start(timeout=10)
    message = str(caught.value)
    assert "broken-thing exited with code 3" in message
    assert "config file is bad: line 3" in message
    assert str(tmp_path / "broken.log") in message


def test_missing_executable_says_how_to_install_it(tmp_path: Path) -> None:
    proc = ManagedProcess([str(tmp_path / "no-such-binary")], log_path=tmp_path / "x.log")
    with pytest.raises(InfraError, match="not found; reinstall"):
        proc.start()


def test_taken_port_is_reported_with_what_to_do() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
        wait_for_port("127.0.0.1", port, timeout=2)
        with pytest.raises(PortInUseError, match=rf"port {port} on 127.0.0.1 is taken by another process; "):
            ensure_port_free("gateway", "127.0.0.1", port, hint="pass --port")
    assert not port_in_use("127.0.0.1", free_port())


def test_wait_for_port_times_out_on_a_closed_port() -> None:
    with pytest.raises(TimeoutError):
        wait_for_port("127.0.0.1", free_port(), timeout=0.3)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
async def test_a_child_started_as_another_user_survives_a_parent_busy_with_grpc(tmp_path: Path) -> None:
    """As root the supervisor runs PostgreSQL as a system user. Popen's own user switch forks, and gRPC's
    fork handlers then crashed the child before exec (CI: initdb died of SIGBUS); 200 starts under gRPC
    load must all reach the program (the fork path lost about two in three here)."""
    import asyncio

    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = health_pb2_grpc.HealthStub(channel)
    done = asyncio.Event()

    async def load() -> None:
        while not done.is_set():
            await stub.Check(health_pb2.HealthCheckRequest())

    def run_as_nobody() -> int:
        argv, user, group = as_user(["/bin/sh", "-c", "exit 0"], 65534, 65534)
        return subprocess.run(argv, capture_output=True, check=False, user=user, group=group).returncode

    callers = [asyncio.create_task(load()) for _ in range(4)]
    try:
        codes = [await asyncio.to_thread(run_as_nobody) for _ in range(200)]
    finally:
        done.set()
        await asyncio.gather(*callers, return_exceptions=True)
        await channel.close()
        await server.stop(None)
    assert codes == [0] * 200, f"exit codes other than 0: {sorted(set(codes) - {0})}"
