"""Hosts on one machine: network namespaces joined by veth links to a bridge, and partitions of them.

Each host is a namespace with its loopback and one `eth0` (10.a.b.N/24); the other end of every veth
pair is a port of a bridge in the root namespace, which also holds 10.a.b.254 so the supervisor (and a
person at the shell) reaches every host the way another machine on the LAN would. Names carry the
creating process's pid, so parallel runs do not collide, and `remove()` deletes everything it made.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from chassis.tooling.infra.process import InfraError

logger = logging.getLogger(__name__)

ROOT_HOST_NUMBER = 254
"""The last octet of the bridge's own address (the root namespace's view of the hosts' network)."""
PARTITION_TABLE = "protomesh_partition"
"""The nftables table a partition adds inside a host's namespace (and `heal` deletes)."""


def _run(argv: Sequence[str], *, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run an iproute2/nftables command; InfraError with its stderr if it fails and `check`."""
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False, input=stdin, timeout=30)  # noqa: S603 an argv list, no shell: ip, nft and tc with our own names
    if check and result.returncode != 0:
        raise InfraError(f"`{' '.join(argv)}` failed ({result.returncode}): {result.stderr.strip()}")
    return result


def missing_requirements() -> str | None:
    """Why hosts cannot be made here (not root, a tool missing), or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run as root"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables"), ("setpriv", "util-linux")):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing: run scripts/install_test_tools (Debian package {package})"
    return None


@dataclass(frozen=True)
class Host:
    """One host: a network namespace and its address on the shared link."""

    number: int
    """1, 2, 3, ...: the host's place in the topology (and the last octet of its address)."""
    namespace: str
    address: str
    veth: str
    """The root-side end of the host's veth pair (a bridge port)."""

    @property
    def name(self) -> str:
        """A short name for messages: host1, host2, ..."""
        return f"host{self.number}"

    def exec_prefix(self) -> list[str]:
        """The argv prefix that runs a program inside this host (`ip netns exec` keeps the pid: it execs)."""
        return ["ip", "netns", "exec", self.namespace]

    def run(self, argv: Sequence[str], *, check: bool = True, stdin: str | None = None) -> str:
        """Run a short command inside the host; its stdout."""
        return _run([*self.exec_prefix(), *argv], check=check, stdin=stdin).stdout


def _free_subnet(pid: int) -> ipaddress.IPv4Network:
    """A /24 in 10/8 derived from pid and not routed here yet (another run, a real network)."""
    taken = _run(["ip", "-4", "route", "show"]).stdout
    for attempt in range(64):
        seed = pid + attempt * 7919
        subnet = ipaddress.IPv4Network(f"10.{100 + (seed >> 8) % 150}.{seed & 255}.0/24")
        if str(subnet) not in taken:
            return subnet
    raise InfraError("no free 10.x.y.0/24 subnet for the hosts' link")


@dataclass
class Topology:
    """Namespaces host1..hostN on a bridge; `create()` makes them, `remove()` deletes what was made."""

    count: int = 3
    prefix: str = field(default_factory=lambda: f"pm{os.getpid()}")
    """Prefix of every namespace and link name (at most 15 characters for links: pm<pid>h<n> fits)."""
    hosts: list[Host] = field(default_factory=list)
    subnet: ipaddress.IPv4Network | None = None

    @property
    def bridge(self) -> str:
        """The bridge joining the hosts (in the root namespace)."""
        return f"{self.prefix}br"

    @property
    def root_address(self) -> str:
        """The root namespace's address on the hosts' link."""
        assert self.subnet is not None  # noqa: S101 narrows a type for mypy: set by create()
        return str(self.subnet.network_address + ROOT_HOST_NUMBER)

    def create(self) -> list[Host]:
        """Make the bridge and every host; on a failure half-way, remove what was made and raise."""
        problem = missing_requirements()
        if problem:
            raise InfraError(problem)
        self.subnet = _free_subnet(os.getpid())
        try:
            _run(["ip", "link", "add", self.bridge, "type", "bridge"])
            _run(["ip", "addr", "add", f"{self.root_address}/{self.subnet.prefixlen}", "dev", self.bridge])
            _run(["ip", "link", "set", self.bridge, "up"])
            for number in range(1, self.count + 1):
                self._add_host(number)
        except BaseException:
            self.remove()
            raise
        logger.info("hosts created", extra={"hosts": [h.address for h in self.hosts], "bridge": self.bridge})
        return self.hosts

    def _add_host(self, number: int) -> None:
        assert self.subnet is not None  # noqa: S101 narrows a type for mypy: set by create()
        host = Host(number, f"{self.prefix}-h{number}", str(self.subnet.network_address + number),
                    f"{self.prefix}h{number}")
        _run(["ip", "netns", "add", host.namespace])
        # Recorded before its links exist, so remove() deletes a half-made host too.
        self.hosts.append(host)
        _run(["ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.namespace])
        _run(["ip", "link", "set", host.veth, "master", self.bridge, "up"])
        host.run(["ip", "addr", "add", f"{host.address}/{self.subnet.prefixlen}", "dev", "eth0"])
        host.run(["ip", "link", "set", "lo", "up"])
        host.run(["ip", "link", "set", "eth0", "up"])

    def host(self, number: int) -> Host:
        """Host `number` (1-based)."""
        return self.hosts[number - 1]

    def remove(self) -> None:
        """Delete every namespace and the bridge (a namespace's veth end goes with it); never raises."""
        for host in self.hosts:
            _run(["ip", "netns", "delete", host.namespace], check=False)
            _run(["ip", "link", "delete", host.veth], check=False)
        _run(["ip", "link", "delete", self.bridge], check=False)
        self.hosts = []

    # --- faults ---------------------------------------------------------------------------------

    def partition(self, host: Host) -> None:
        """Cut `host` off: inside its namespace nftables drops every packet on eth0, in and out.

        The host keeps running (its loopback works); only its link is silent, as when a switch port dies.
        """
        ruleset = (f"table inet {PARTITION_TABLE} {{\n"
                   "  chain input { type filter hook input priority -10; policy accept; iifname \"eth0\" drop; }\n"
                   "  chain output { type filter hook output priority -10; policy accept; oifname \"eth0\" drop; }\n"
                   "}\n")
        host.run(["nft", "-f", "-"], stdin=ruleset)

    def heal(self, host: Host) -> None:
        """Undo `partition`."""
        host.run(["nft", "delete", "table", "inet", PARTITION_TABLE], check=False)


def leftover_namespaces(prefix: str) -> list[str]:
    """Namespaces whose name starts with prefix (what a test checks is gone after the mesh stopped)."""
    listed = _run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in listed.splitlines() if line.startswith(f"{prefix}-")]
