"""Blue-green releases for real: `protomesh up --detach` runs the mesh (its supervisor runs the releases),
`protomesh release` hands them over, a bounded load goes through Envoy meanwhile, and the failed calls
the client saw are counted. Bad builds come from tests/e2e/release_build.py (the context service with
failures or latency added), so nothing in the working tree changes.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chassis.tooling import identity_session
from chassis.tooling.cli import main
from chassis.tooling.infra.ports import free_port
from chassis.tooling.mesh_testing import TEST_SERVICE_ENV, RestClient, eventually
from chassis.tooling.release import read_status
from chassis.tooling.supervisor import read_state

SERVICE = "context"
LOAD_PATH = "/v1/contexts"
BAD_BUILD = ["--module", "tests.e2e.release_build", "--env", f"RELEASE_BUILD_SERVICE={SERVICE}"]
PATIENT = ["--max-bake", "30"]
"""Bakes are short to keep the module quick, but a busy machine serves few calls: a step may wait this long
for its --min-requests green calls (else it rolls back for too little traffic)."""


@dataclass
class Mesh:
    """A mesh run by its own supervisor process, as `scripts/up --detach` runs it."""

    state_dir: Path
    gateway: str
    env: dict[str, str]

    def cli(self, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
        """Run `protomesh --state-dir … ARGS` and return what it printed."""
        return subprocess.run([sys.executable, "-m", "chassis.tooling.cli", "--state-dir", str(self.state_dir), *args],
                              capture_output=True, text=True, timeout=timeout, env=self.env, check=False)

    def release(self, *args: str) -> subprocess.Popen[str]:
        """`protomesh release ARGS` in the background (it prints each step until the release ends)."""
        return subprocess.Popen([sys.executable, "-m", "chassis.tooling.cli", "--state-dir", str(self.state_dir),
                                 "release", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=self.env)

    def replicas(self) -> list[str]:
        """The service's replicas the supervisor runs now (mesh.json)."""
        state = read_state(self.state_dir) or {}
        return sorted(p["name"] for p in state.get("processes", []) if p.get("service") == SERVICE)


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    """Identity and one context replica behind Envoy, PostgreSQL and NATS, in a supervisor of its own."""
    state_dir = Path(tempfile.mkdtemp(prefix="protomesh-release-"))
    env = {**os.environ, **TEST_SERVICE_ENV}
    started = Mesh(state_dir, f"127.0.0.1:{free_port()}", env)
    try:
        up = started.cli("up", "--detach", "--port", started.gateway.rsplit(":", 1)[1], "--only", SERVICE,
                         "--replicas", "1", timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        yield started
    finally:
        started.cli("down", timeout=90)
        shutil.rmtree(state_dir, ignore_errors=True)


@dataclass
class Load:
    """Threads sending GETs through the gateway until stopped or `max_calls` is reached; statuses counted."""

    rest: RestClient
    max_calls: int = 6000
    threads: int = 4
    statuses: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.statuses) < self.max_calls:
            self.statuses.append(self.rest.get(LOAD_PATH).status)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=15)

    @property
    def failed(self) -> int:
        """Calls the client saw fail on the server's side (5xx)."""
        return sum(1 for status in self.statuses if status >= 500)

    def summary(self) -> str:
        """Calls by HTTP status, for the test's output."""
        return f"client calls by status: {dict(collections.Counter(self.statuses))}"


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> RestClient:
    """The local admin's client of the gateway (one token: the module is shorter than its lifetime)."""
    token = identity_session.access_token(mesh.state_dir)
    client = RestClient(f"http://{mesh.gateway}", timeout=10, token=lambda: token)
    assert client.get(LOAD_PATH).status == 200
    return client


def finish(process: subprocess.Popen[str], timeout: float = 120) -> str:
    """Wait for a release command run in the background and return its output."""
    output, _ = process.communicate(timeout=timeout)
    return output


def release(mesh: Mesh, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`protomesh release ARGS` in this process (the interpreter is warm: no second start-up on a busy
    machine); its exit code and what it printed. The mesh it drives runs in its own processes."""
    return protomesh(mesh, capsys, "release", *args)


def protomesh(mesh: Mesh, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`protomesh ARGS` in this process: its exit code and what it printed."""
    capsys.readouterr()
    code = main(["--state-dir", str(mesh.state_dir), *args])
    captured = capsys.readouterr()
    with capsys.disabled():
        print(captured.out + captured.err)
    return code, captured.out + captured.err


def test_a_good_build_is_promoted_and_blue_stops(mesh: Mesh, rest: RestClient,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    blue = mesh.replicas()
    with Load(rest) as load:
        eventually(lambda: len(load.statuses) > 20, what="the load running")
        # A wide latency slack: on a busy machine either colour's tail has 200 ms stalls, and this test is about
        # promotion (the slow build's test is about latency).
        code, output = release(mesh, capsys, SERVICE, "--steps", "10,25,50,100", "--bake", "1",
                               "--min-requests", "10", "--p99-slack-ms", "300", *PATIENT)
    with capsys.disabled():
        print(load.summary())
    assert code == 0, output
    assert "step 4/4: 100%" in output and "promoted" in output, output
    assert output.count("-> healthy") == 4, output
    green = mesh.replicas()
    assert green and not set(green) & set(blue), (blue, green)
    assert load.failed <= len(load.statuses) * 0.01, load.summary()
    assert rest.get(LOAD_PATH).status == 200
    assert read_status(mesh.state_dir)["state"] == "promoted"  # type: ignore[index]


def test_a_build_failing_a_fifth_of_calls_rolls_back_within_its_first_step(
        mesh: Mesh, rest: RestClient, capsys: pytest.CaptureFixture[str]) -> None:
    blue = mesh.replicas()
    share = 0.20
    with Load(rest) as load:
        eventually(lambda: len(load.statuses) > 20, what="the load running")
        # Thirty green calls before a step may pass: a build failing 20 % shows an error in them but 0.8**30 = 0.1 %
        # of the time.
        code, output = release(mesh, capsys, SERVICE, "--steps", f"{share * 100:g},50,100", "--bake", "2",
                               "--min-requests", "30", *PATIENT, *BAD_BUILD, "--env", "RELEASE_BUILD_FAIL_PERCENT=20")
    with capsys.disabled():
        print(load.summary())
    assert code == 1, output
    assert "ROLLBACK: green error rate" in output and "step 2/3" not in output, output
    assert "rolled back" in output
    assert load.failed < share * len(load.statuses), load.summary()
    assert mesh.replicas() == blue
    assert rest.get(LOAD_PATH).status == 200


def test_a_slow_build_rolls_back_on_p99(mesh: Mesh, rest: RestClient, capsys: pytest.CaptureFixture[str]) -> None:
    blue = mesh.replicas()
    with Load(rest) as load:
        eventually(lambda: len(load.statuses) > 20, what="the load running")
        # Every green call takes 450 ms: a few are enough to see it (each holds a load thread that long).
        code, output = release(mesh, capsys, SERVICE, "--steps", "20,50,100", "--bake", "1", "--min-requests", "5",
                               *PATIENT, *BAD_BUILD, "--env", "RELEASE_BUILD_DELAY_MS=450")
    with capsys.disabled():
        print(load.summary())
    assert code == 1, output
    assert "ROLLBACK: green p90" in output or "ROLLBACK: green p99" in output, output
    assert load.failed == 0, load.summary()
    assert mesh.replicas() == blue


def test_a_release_aborted_by_hand_and_a_second_one_refused(mesh: Mesh, rest: RestClient,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    blue = mesh.replicas()
    first = mesh.release(SERVICE, "--steps", "10,100", "--bake", "60", "--min-requests", "0")
    try:
        eventually(lambda: (read_status(mesh.state_dir) or {}).get("state") == "baking"
                   and read_status(mesh.state_dir)["step"] >= 1, timeout=90,  # type: ignore[index]
                   what="the first release baking its first step")
        _, status = protomesh(mesh, capsys, "status")
        assert "release: " in status and " of context running, baking, step 1/2 at 10% on green" in status, status
        code, output = release(mesh, capsys, SERVICE, "--bake", "1")
        assert code == 2, output
        assert "refused, a release of context is running" in output
        code, output = release(mesh, capsys, "--abort")
        assert code == 0, output
        first_output = finish(first)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 1, first_output
    assert "ROLLBACK: aborted by hand" in first_output, first_output
    _, status = release(mesh, capsys, "--status")
    assert "aborted" in status.splitlines()[0], status
    assert mesh.replicas() == blue
    assert rest.get(LOAD_PATH).status == 200
