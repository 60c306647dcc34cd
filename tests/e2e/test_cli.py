"""The `protomesh` command as a user runs it: up in the foreground, status, twice, a taken port, Ctrl-C, down;
the admin password shown once, the session it leaves, `protomesh token` for curl."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from chassis.tooling.infra.ports import free_port
from chassis.tooling.mesh_testing import RestClient, eventually
from chassis.tooling.supervisor import pid_alive

CLI = [sys.executable, "-m", "chassis.tooling.cli"]
# The admin password is generated (and shown once) only when none is given: these tests want that path.
ENV = {k: v for k, v in os.environ.items() if k != "PROTOMESH_ADMIN_PASSWORD"}


def protomesh(state_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "--state-dir", str(state_dir), *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def token_client(state_dir: Path, port: int) -> RestClient:
    """A client that authenticates as `curl -H "Authorization: Bearer $(protomesh token)"` does."""
    def token() -> str:
        printed = protomesh(state_dir, "token")
        assert printed.returncode == 0, printed.stderr
        return printed.stdout.strip()
    return RestClient(f"http://127.0.0.1:{port}", token=token)


def generated_password(output: str) -> str:
    """The password `up` printed after 'shown this once' (indented on its own line)."""
    match = re.search(r"shown this once[^\n]*\n\s*\n\s+(\S+)\n", output)
    assert match, output
    return match.group(1)


def test_up_status_twice_and_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    port = free_port()
    up = subprocess.Popen([*CLI, "--state-dir", str(tmp_path), "up", "--port", str(port), "--replicas", "1",
                           "--only", "agent"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    try:
        lines: list[str] = []
        assert up.stdout is not None
        for line in up.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        output = "".join(lines)
        assert "protomesh is up" in output, output
        assert "==> PostgreSQL" in output and "==> Envoy gateway" in output and "==> identity service" in output
        assert "$(.venv/bin/protomesh token)" in output  # how to call with a token
        state = json.loads((tmp_path / "mesh.json").read_text())
        pids = [p["pid"] for p in state["processes"]]
        assert len(pids) == 5  # postgres, nats, one identity and one agent replica (--only adds identity), envoy

        # The generated admin password: on the terminal once, nowhere in the state folder afterwards;
        # the admin's refresh token moved into the CLI session (0600).
        password = generated_password(output)
        assert output.count(password) == 1
        for path in tmp_path.rglob("*"):
            if path.is_file() and "pgdata" not in path.parts:
                assert password.encode() not in path.read_bytes(), path
        session = tmp_path / "identity" / "session.json"
        assert session.stat().st_mode & 0o777 == 0o600
        assert "refresh_token" not in json.loads((tmp_path / "identity" / "bootstrap.json").read_text())

        # `curl -H "Authorization: Bearer $(protomesh token)"` works; without it a protected route is 401.
        rest = token_client(tmp_path, port)
        assert rest.get("/v1/agents").status == 200
        refused = rest.anonymous().get("/v1/agents")
        assert refused.status == 401 and "Bearer" in refused.headers.get("www-authenticate", ""), refused

        status = protomesh(tmp_path, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "SERVING" in status.stdout and "READY" in status.stdout

        again = protomesh(tmp_path, "up", "--port", str(free_port()))
        assert again.returncode == 1 and "already running" in again.stderr

        assert rest.get("/health/live").status == 200
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
        assert up.returncode == 0
        assert not (tmp_path / "mesh.json").exists()
        assert [p for p in pids if pid_alive(p)] == []
        assert protomesh(tmp_path, "status").returncode == 1
    finally:
        if up.poll() is None:
            up.kill()


def test_a_taken_gateway_port_is_reported_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        result = protomesh(tmp_path, "up", "--port", str(taken))
    assert result.returncode == 1
    assert f"port {taken}" in result.stderr and "--port" in result.stderr
    assert not (tmp_path / "pgdata").exists()


def test_detached_up_then_down(tmp_path: Path) -> None:
    port = free_port()
    started = protomesh(tmp_path, "up", "--detach", "--port", str(port), "--replicas", "agent=1", "--only", "agent",
                        timeout=180)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"127.0.0.1:{port}" in started.stdout
        assert "shown this once" in started.stdout  # the detached mesh's first start shows the password too
        rest = token_client(tmp_path, port)
        assert rest.get("/v1/agents/types").status == 200
        scaled = protomesh(tmp_path, "scale", "agent=2", timeout=120)
        assert scaled.returncode == 0, scaled.stdout + scaled.stderr
        status = protomesh(tmp_path, "status")
        assert status.stdout.count("agent replica") == 2 and status.returncode == 0, status.stdout

        def both_agents_serving() -> subprocess.CompletedProcess[str] | None:
            # A replica's entry counts while its heartbeat is younger than the TTL; on a loaded machine
            # one can miss a beat while the new replica starts, so the listing is awaited, not sampled once.
            shown = protomesh(tmp_path, "registry")
            rows = [line.split() for line in shown.stdout.splitlines() if line.split()[:1] == ["agent"]]
            settled = shown.returncode == 0 and sorted((r[1], r[3]) for r in rows) == [
                ("agent-1", "SERVING"), ("agent-2", "SERVING")]
            return shown if settled else None

        registry = eventually(both_agents_serving, timeout=20, interval=0.5, what="both agent replicas SERVING")
        assert "NATS KV at nats://" in registry.stdout
        nats_password = urlsplit(json.loads((tmp_path / "mesh.json").read_text())["nats_url"]).password
        assert nats_password and nats_password not in registry.stdout  # shown masked, never as it is
        assert protomesh(tmp_path, "scale", "nosuch=2").returncode == 2

        # The supervisor brings back what dies: a replica at once, PostgreSQL after a visible pause.
        state = json.loads((tmp_path / "mesh.json").read_text())
        postgres_pid = next(p["pid"] for p in state["processes"] if p["name"] == "postgresql")
        replica_pid = next(p["pid"] for p in state["processes"] if p["name"] == "agent replica 1")
        os.kill(replica_pid, signal.SIGKILL)
        os.kill(postgres_pid, signal.SIGKILL)
        down = eventually(lambda: (r := protomesh(tmp_path, "status")).returncode == 1 and r, timeout=10,
                          what="status to report the outage")
        assert "DOWN" in down.stdout or "NOT_SERVING" in down.stdout
        eventually(lambda: protomesh(tmp_path, "status").returncode == 0, timeout=60, interval=0.5,
                   what="the supervisor to restart PostgreSQL and the replica")
        eventually(lambda: rest.get("/v1/agents").status == 200, timeout=30,
                   what="reads to work again")
        pids = [p["pid"] for p in json.loads((tmp_path / "mesh.json").read_text())["processes"]]
    finally:
        down = protomesh(tmp_path, "down", timeout=90)
    assert down.returncode == 0 and "stopped" in down.stdout
    eventually(lambda: not any(pid_alive(p) for p in pids), timeout=10, what="every mesh process to exit")
    time.sleep(0.1)


def test_help_explains_the_commands() -> None:
    result = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    for command in ("up", "status", "down", "token", "login", "users", "apikeys", "keys"):
        assert command in result.stdout
    up_help = subprocess.run([*CLI, "up", "--help"], capture_output=True, text=True, timeout=30).stdout
    assert "--port" in up_help and "--replicas" in up_help and "--detach" in up_help
