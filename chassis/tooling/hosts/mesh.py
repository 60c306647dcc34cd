"""HostedMesh: the supervisor's Mesh spread over network-namespace hosts, with a three-node NATS cluster.

Host 1 runs PostgreSQL and Envoy; every host runs a NATS node (one cluster: JetStream streams and the
registry bucket replicated on NATS_REPLICAS nodes); each service's replicas go round the hosts. Every
process listens on its host's address and replicas register that address, so Envoy on host 1 and the
replicas reach each other across the hosts' link only. The supervisor itself stays in the root namespace
and reaches the hosts through the bridge, as an operator's machine on the same network would.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from chassis.events.streams import REPLICAS_ENV
from chassis.tooling.catalog import Catalog
from chassis.tooling.credentials import SUPERVISOR_USER
from chassis.tooling.hosts.disks import SmallDisk
from chassis.tooling.hosts.netns import Host, Topology
from chassis.tooling.hosts.processes import HostedEnvoy, HostedPostgres, HostedReplica, NatsNode, nats_cluster
from chassis.tooling.infra.envoy import EnvoyProcess
from chassis.tooling.infra.process import ManagedProcess
from chassis.tooling.nats_auth import mesh_users
from chassis.tooling.supervisor import Mesh, MeshOptions, ReplicaProcess

DEFAULT_HOSTS = 3


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """os.environ[name] = value for the block, then what it was."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


class HostedMesh(Mesh):
    """A Mesh whose processes run on `hosts` network namespaces (at least 3: a NATS quorum survives one loss)."""

    def __init__(self, options: MeshOptions, hosts: int = DEFAULT_HOSTS, catalog: Catalog | None = None,
                 progress: Callable[[str], None] | None = None, *, nats_store_size: str | None = None) -> None:
        super().__init__(options, catalog, progress)
        self.topology = Topology(hosts)
        self.nats_nodes: list[NatsNode] = []
        self.nats_store_size = nats_store_size
        """With a size (mount's syntax, e.g. 64m) every NATS node keeps its store on a tmpfs that small."""
        self.nats_disks: list[SmallDisk] = []
        self.stream_replicas = min(3, hosts)
        self._replicas_env: contextlib.ExitStack | None = None

    @property
    def gateway_host(self) -> Host:
        """The host running Envoy and PostgreSQL."""
        return self.topology.host(1)

    @property
    def gateway(self) -> str:
        """host:port of Envoy's listener, on host 1's address."""
        return f"{self.gateway_host.address}:{self.options.gateway_port}"

    @property
    def admin_address(self) -> str:
        """host:port of Envoy's admin interface, on host 1's address."""
        return f"{self.gateway_host.address}:{self.admin_port}"

    def place(self, service: str, index: int) -> Host:
        """The host of replica `index` (1-based) of `service`: round the hosts, each service starting elsewhere,
        so services of one replica spread too."""
        offset = sorted(self.catalog.names).index(service) if service in self.catalog.names else 0
        hosts = self.topology.hosts
        return hosts[(offset + index - 1) % len(hosts)]

    def start(self) -> None:
        """Make the hosts, start PostgreSQL on host 1 and a NATS node on every host, then the rest as Mesh does."""
        # Buckets the supervisor creates itself (registry, failure toggles) take the same replication.
        self._replicas_env = contextlib.ExitStack()
        self._replicas_env.enter_context(_environment(REPLICAS_ENV, str(self.stream_replicas)))
        try:
            self._step(f"{self.topology.count} hosts (network namespaces on a bridge)", self.topology.create)
            self._private_state()
            self._start_postgres()
            self._start_nats()
            super().start()
        except BaseException:
            self.stop()
            raise

    def _start_postgres(self) -> None:
        assert self.topology.subnet is not None  # noqa: S101 narrows a type for mypy: the hosts exist
        postgres = HostedPostgres(self.gateway_host, str(self.topology.subnet), self.state_dir / "pgdata",
                                  durable=self.options.durable, log_path=self.log_dir / "postgres.log",
                                  password_file=self.credentials.postgres_superuser())
        self.postgres = postgres
        self._step(f"PostgreSQL 16 on {self.gateway_host.name} ({self.gateway_host.address})", postgres.start)
        self.database_url = postgres.url
        self._step("a role and schema per service", self._provision_roles)

    def _start_nats(self) -> None:
        self.nats_nodes = nats_cluster(self.topology.hosts, self.state_dir, users=mesh_users(self.catalog,
                                       self.credentials), durable=self.options.durable, log_dir=self.log_dir)
        self.nats = self.nats_nodes[0]
        if self.nats_store_size:
            for node in self.nats_nodes:
                disk = SmallDisk(node.store_dir, self.nats_store_size)
                self.nats_disks.append(disk)
                disk.mount()

        def start_cluster() -> None:
            # Together: a node's JetStream is healthy only once a quorum of the cluster is up.
            for node in self.nats_nodes:
                node.launch()
            for node in self.nats_nodes:
                node.ready()

        self._step(f"NATS cluster of {len(self.nats_nodes)} nodes with JetStream", start_cluster)
        self.nats_url = self.cluster_url(SUPERVISOR_USER)
        self.service_nats_urls = {name: self.cluster_url(name) for name in self.catalog.names}

    def cluster_url(self, user: str) -> str:
        """NATS_URL naming every node with `user`'s credentials (chassis.events.streams.nats_servers)."""
        return ",".join(node.url_for(user) for node in self.nats_nodes)

    def _replica_env(self, service: str) -> dict[str, str]:
        env = super()._replica_env(service)
        # The trace collector listens on the supervisor's loopback, which no host reaches: no tracing here.
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        env[REPLICAS_ENV] = str(self.stream_replicas)
        return env

    def new_replica(self, service: str, extra_env: dict[str, str] | None = None) -> ReplicaProcess:
        """A replica on its host (see `place`)."""
        plain = super().new_replica(service, extra_env)
        return HostedReplica(plain, self.place(service, plain.index))

    def new_envoy(self) -> EnvoyProcess:
        """Envoy on host 1."""
        return HostedEnvoy(self._envoy_config(), self.state_dir / "envoy", self.gateway_host)

    def _envoy_config(self) -> dict[str, Any]:
        collector, self.otlp_endpoint = self.otlp_endpoint, ""  # no tracing: see _replica_env
        try:
            config = super()._envoy_config()
        finally:
            self.otlp_endpoint = collector
        config["admin"]["address"]["socket_address"]["address"] = self.gateway_host.address
        for listener in config["static_resources"]["listeners"]:
            listener["address"]["socket_address"]["address"] = self.gateway_host.address
        return config

    def all_processes(self) -> list[ManagedProcess]:
        """Every process, every NATS node included."""
        processes = super().all_processes()
        if self.nats is not None and self.nats in processes:
            at = processes.index(self.nats) + 1
            processes[at:at] = self.nats_nodes[1:]
        return processes

    def stop(self) -> None:
        """Stop every process, then remove the hosts (even if stopping failed)."""
        try:
            super().stop()
        finally:
            for disk in self.nats_disks:
                disk.unmount()
            self.topology.remove()
            if self._replicas_env is not None:
                self._replicas_env.close()
                self._replicas_env = None

    def state(self) -> dict[str, Any]:
        """Mesh's state, with the hosts and what runs on each."""
        state = super().state()
        state["hosts"] = {host.name: {"namespace": host.namespace, "address": host.address}
                          for host in self.topology.hosts}
        return state
