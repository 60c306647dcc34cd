"""The mesh's programs run inside a host: the same ManagedProcess classes, started under `ip netns exec`.

Each keeps its class's readiness check and stop order; what changes is the address it listens on (the
host's, never loopback, so every connection crosses the hosts' link) and that its ports cannot be
tested from the supervisor's namespace (they are free: the host is new and runs only what we start).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chassis.tooling.hosts.netns import Host
from chassis.tooling.infra.envoy import EnvoyProcess
from chassis.tooling.infra.nats import NatsProcess, NatsUser
from chassis.tooling.infra.ports import LOOPBACK, free_port
from chassis.tooling.infra.postgres import PostgresProcess
from chassis.tooling.supervisor import ReplicaProcess


def _on_host(argv: Sequence[str], host: Host) -> list[str]:
    """argv run inside host, with every loopback address in it replaced by the host's."""
    return [*host.exec_prefix(), *(host.address if arg == LOOPBACK else arg for arg in argv)]


class HostedReplica(ReplicaProcess):
    """A replica listening on its host's address and registering that address for the others to dial."""

    def __init__(self, plain: ReplicaProcess, host: Host) -> None:
        super().__init__(plain.service, plain.index, plain.port, plain.env or {}, plain.log_path.parent,
                         probe_tls=plain.probe_tls)
        self.host = host
        self.name = f"{plain.name} on {host.name}"
        assert self.env is not None  # noqa: S101 narrows a type for mypy: ReplicaProcess always sets it
        self.env.update(GRPC_HOST=host.address, ADVERTISE_HOST=host.address)
        self.argv = _on_host(self.argv, host)

    @property
    def address(self) -> str:
        """host:port other hosts dial."""
        return f"{self.host.address}:{self.port}"

    def check_port(self, what: str, host: str, port: int, hint: str = "") -> None:
        """Nothing to check from here: the port is in the host's own namespace."""


class HostedPostgres(PostgresProcess):
    """PostgreSQL on a host's address, accepting the hosts' subnet (with passwords, as on loopback).

    As root it runs as its system user through `setpriv` after entering the namespace: Popen's own user
    switch would happen before `ip netns exec`, which needs root.
    """

    def __init__(self, host: Host, subnet: str, data_dir: Path, **kwargs: Any) -> None:
        super().__init__(data_dir, **kwargs)
        self.host = host.address
        self.place = host
        self.subnet = subnet
        self._program = [host.address if arg == LOOPBACK else arg for arg in self.argv]
        self._switch_user: list[str] = []

    def check_port(self, what: str, host: str, port: int, hint: str = "") -> None:
        """Nothing to check from here: the port is in the host's own namespace."""

    def before_start(self) -> None:
        """initdb (as the system user), let the subnet in, then start inside the host as that user."""
        super().before_start()
        hba = self.data_dir / "pg_hba.conf"
        line = f"host all all {self.subnet} scram-sha-256"
        if line not in hba.read_text():
            with hba.open("a") as out:
                out.write(f"# the hosts' link (chassis.tooling.hosts)\n{line}\n")
        if self.user is not None and self.group is not None:  # root: PostgreSQL's system user, set once
            self._switch_user = ["setpriv", f"--reuid={self.user}", f"--regid={self.group}", "--clear-groups", "--"]
            self.user = self.group = None
        self.argv = [*self.place.exec_prefix(), *self._switch_user, *self._program]


class HostedEnvoy(EnvoyProcess):
    """Envoy with its listener and admin on a host's address (the config says so; see HostedMesh)."""

    def __init__(self, config: dict[str, Any], work_dir: Path, host: Host) -> None:
        super().__init__(config, work_dir)
        self.place = host
        self.argv = _on_host(self.argv, host)

    @property
    def admin_url(self) -> str:
        """Base URL of the admin interface, on the host's address."""
        return f"http://{self.place.address}:{self.admin_port}"

    def check_port(self, what: str, host: str, port: int, hint: str = "") -> None:
        """Nothing to check from here: the port is in the host's own namespace."""


class NatsNode(NatsProcess):
    """One node of a NATS cluster on a host: client, monitoring and route ports on the host's address."""

    def __init__(self, host: Host, store_dir: Path, cluster_port: int, routes: Sequence[str], *,
                 users: Sequence[NatsUser], durable: bool, log_path: Path) -> None:
        super().__init__(store_dir, durable=durable, log_path=log_path, users=users)
        self.host = host.address
        self.place = host
        self.cluster_port = cluster_port
        self.name = f"nats-server on {host.name}"
        # The config file carries the users (NatsProcess writes it); the cluster is on the command line.
        config = [] if "-c" in self.argv else ["-c", str(self.config_path)]
        self.argv = [*_on_host(self.argv, host), *config, "--cluster_name", "protomesh",
                     "--cluster", f"nats://{host.address}:{cluster_port}", "--routes", ",".join(routes)]

    def wait_ready(self, timeout: float) -> None:
        """/healthz, then a JetStream meta leader known to this node: before the cluster elected one, every
        JetStream request times out (a replica starting then could not create its streams)."""
        super().wait_ready(timeout)
        self.poll_until(self._meta_leader_known, timeout, "a JetStream meta leader in the cluster", interval=0.1)

    def _meta_leader_known(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.monitor_url}/jsz", timeout=1) as response:  # noqa: S310 an http:// URL the mesh builds from its hosts' addresses
                return bool(json.loads(response.read()).get("meta_cluster", {}).get("leader"))
        except (OSError, ValueError):
            return False

    @property
    def server_name(self) -> str:
        """The node's name in the cluster (what JetStream reports as a stream's leader)."""
        return self.argv[self.argv.index("--server_name") + 1]

    def check_port(self, what: str, host: str, port: int, hint: str = "") -> None:
        """Nothing to check from here: the port is in the host's own namespace."""


def nats_cluster(hosts: Sequence[Host], state_dir: Path, *, users: Sequence[NatsUser], durable: bool,
                 log_dir: Path) -> list[NatsNode]:
    """One NatsNode per host, each routed to all (a node ignores the route to itself)."""
    cluster_ports = [free_port() for _ in hosts]
    routes = [f"nats://{host.address}:{port}" for host, port in zip(hosts, cluster_ports, strict=True)]
    return [NatsNode(host, state_dir / f"nats-{host.name}", port, routes, users=users, durable=durable,
                     log_path=log_dir / f"nats-{host.name}.log")
            for host, port in zip(hosts, cluster_ports, strict=True)]
