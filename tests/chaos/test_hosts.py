"""The hosts themselves: reachable on their addresses, cut off by a partition and back after healing, and gone
after `remove()` (tests/chaos/test_chaos.py runs the mesh on them)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from chassis.tooling.hosts.netns import Host, Topology, leftover_namespaces, missing_requirements

# Listens once on the host's address and answers "ok": run inside one host, dialled from another.
SERVER = ("import socket,sys; s=socket.create_server((sys.argv[1], 7000)); s.settimeout(10); "
          "c,_=s.accept(); c.sendall(b'ok'); c.close()")
CLIENT = ("import socket,sys\ntry:\n    c=socket.create_connection((sys.argv[1], 7000), timeout=1.5); "
          "print(c.recv(2).decode())\nexcept OSError as e:\n    print(type(e).__name__)")


@pytest.fixture
def topology() -> Iterator[Topology]:
    """Three hosts, removed afterwards (checked)."""
    problem = missing_requirements()
    if problem:
        pytest.skip(f"hosts cannot be made here: {problem}")
    made = Topology(3)
    made.create()
    try:
        yield made
    finally:
        made.remove()
        assert leftover_namespaces(made.prefix) == []
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
        assert made.bridge not in links


def dial(source: Host, target: Host) -> str:
    """What a client on `source` gets from a one-shot server on `target`'s address ("ok" or the error's name)."""
    server = subprocess.Popen([*target.exec_prefix(), sys.executable, "-c", SERVER, target.address])
    try:
        for _ in range(20):  # the server needs a moment to listen: dial until it answers or is refused no more
            answer = source.run([sys.executable, "-c", CLIENT, target.address]).strip()
            if answer != "ConnectionRefusedError":
                return answer
        return answer
    finally:
        server.kill()
        server.wait()


def test_hosts_reach_each_other_on_their_own_addresses(topology: Topology) -> None:
    """host1 reaches host2's address; nothing in host2 listens on host1's loopback."""
    one, two, _ = topology.hosts
    assert len({host.address for host in topology.hosts}) == 3
    assert dial(one, two) == "ok"


def test_a_partition_cuts_a_host_off_until_healed(topology: Topology) -> None:
    """nftables inside host2 drops its link: host1's dial times out; after heal it connects again."""
    one, two, _ = topology.hosts
    topology.partition(two)
    assert dial(one, two) in {"TimeoutError", "timeout"}
    topology.heal(two)
    assert dial(one, two) == "ok"
