"""The chaos suite's mesh: three network-namespace hosts (chassis.tooling.hosts), and the case lines' report.

Needs root and iproute2/nftables (scripts/install_test_tools): without them every case is skipped with the
reason. CHAOS_LONG=1 holds each fault and runs the load longer (see `timing`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chassis.tooling.hosts.mesh import HostedMesh
from chassis.tooling.hosts.netns import leftover_namespaces, missing_requirements
from chassis.tooling.infra.ports import free_port
from chassis.tooling.mesh_testing import TEST_SERVICE_ENV
from chassis.tooling.supervisor import IDENTITY_SERVICE, MeshOptions
from tests.chaos.load import Timing

NATS_STORE_SIZE = "64m"
"""Each NATS node's store is a tmpfs this small, which the disk-full case fills."""
LINE_PROPERTY = "chaos"
"""The user property carrying a case's line (it crosses from xdist workers to the summary)."""


@pytest.fixture(scope="session")
def timing() -> Timing:
    """Short by default (the whole suite stays within its budget); CHAOS_LONG=1 for longer loads and faults."""
    if os.environ.get("CHAOS_LONG") == "1":
        return Timing(before=10.0, hold=20.0, after=10.0)
    return Timing(before=1.0, hold=4.0, after=1.0)


@pytest.fixture(scope="module")
def hosted() -> Iterator[HostedMesh]:
    """Context and notification (2 replicas each) and identity over three hosts; removed afterwards, failed or not.

    A 2 s registry TTL lets a replica cut off from NATS leave the gateway's rotation quickly; the NATS stores are
    small tmpfs disks (NATS_STORE_SIZE) the disk-full case can fill.
    """
    problem = missing_requirements()
    if problem:
        pytest.skip(f"the multi-host mesh cannot run here: {problem}")
    state_dir = Path(tempfile.mkdtemp(prefix="protomesh-chaos-"))
    options = MeshOptions(state_dir=state_dir, gateway_port=free_port(), default_replicas=2,
                          replicas={IDENTITY_SERVICE: 1}, durable=False, only=["context", "notification"],
                          service_env={**TEST_SERVICE_ENV, "REGISTRY_TTL_SECONDS": "2"})
    mesh = HostedMesh(options, nats_store_size=NATS_STORE_SIZE)
    try:
        mesh.start()
        yield mesh
    finally:
        mesh.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
        assert leftover_namespaces(mesh.topology.prefix) == [], "the hosts' namespaces outlived the mesh"


@pytest.fixture
def report_line(record_property: Callable[[str, object], None]) -> Callable[[str], None]:
    """Print a case's line and keep it for the summary at the end of the run."""

    def report(line: str) -> None:
        print(f"chaos: {line}")
        record_property(LINE_PROPERTY, line)

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The lines of every chaos case that ran, one per case (also with pytest-xdist)."""
    lines = [value for reports in terminalreporter.stats.values() for report in reports
             if getattr(report, "when", "") == "call"
             for key, value in getattr(report, "user_properties", ()) if key == LINE_PROPERTY]
    if lines:
        terminalreporter.section("chaos cases")
        for line in lines:
            terminalreporter.write_line(str(line))
