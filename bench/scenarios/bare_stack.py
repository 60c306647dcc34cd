"""The "bare stack" peer of the REST read: Envoy (token check, transcoder, router) in front of bare grpc.aio servers.

It runs beside a live mesh and uses its parts: the gateway's config (bench.bare_gateway cuts it down),
the mesh's PostgreSQL, identity service (JWKS) and CA (the servers' certificate is issued for the
agent service, the Envoy presents the gateway's). N servers (bench.peers.bare_stack) behind one
Envoy, as N agent replicas sit behind the gateway; Envoy with the gateway's concurrency.
"""

from __future__ import annotations

import functools
from pathlib import Path

from bench.bare_gateway import bare_config
from bench.core import Context
from bench.procs import BenchError, Proc, port_open, python, wait_until
from chassis.tooling.infra.envoy import EnvoyProcess
from chassis.tooling.infra.ports import LOOPBACK, free_port
from chassis.tooling.supervisor import Mesh

SERVICE = "agent"
GET_AGENT = "/protomesh.agent.v1.AgentService/GetAgent"
CERT_NAME = "bench-bare-agent"
"""The workload name of the bare servers' certificate (issued for the agent service by the mesh's CA)."""


class BareStack:
    """`servers` bare grpc.aio servers and their Envoy, started on construction; stop() ends them by PID."""

    def __init__(self, ctx: Context, mesh: Mesh, servers: int) -> None:
        if mesh.envoy is None:
            raise BenchError("the bare stack is built from the mesh's gateway config: the mesh has no Envoy")
        files = mesh.issue(CERT_NAME, SERVICE)
        self.servers: list[Proc] = []
        self.envoy: EnvoyProcess | None = None
        ports = [free_port() for _ in range(servers)]
        try:
            for index, port in enumerate(ports):
                self.servers.append(Proc(f"bare-grpc-{servers}s-{index}", python(
                    "bench.peers.bare_stack", "--port", str(port), "--cert", str(files.cert), "--key",
                    str(files.key), "--ca", str(files.ca)), ctx.log_dir,
                    env={"DATABASE_URL": mesh.database_url, "DB_POOL_MIN": "2", "DB_POOL_MAX": "10"}))
            for server, port in zip(self.servers, ports, strict=True):
                wait_until(functools.partial(port_open, port), 60, f"{server.name} to listen")
            self.port = free_port()
            config = bare_config(mesh.envoy.config, service=SERVICE, grpc_path=GET_AGENT,
                                 servers=[(LOOPBACK, port) for port in ports], listen_port=self.port,
                                 admin_port=free_port())
            work_dir = Path(ctx.work_dir) / f"bare-envoy-{servers}s"
            self.envoy = EnvoyProcess(config, work_dir, log_path=ctx.log_dir / f"bare-envoy-{servers}s.log")
            self.envoy.start()
        except BaseException:
            self.stop()
            raise

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def server_pids(self) -> list[int]:
        return [server.pid for server in self.servers]

    def envoy_pid(self) -> list[int]:
        return [self.envoy.pid] if self.envoy is not None and self.envoy.pid else []

    def stop(self) -> None:
        if self.envoy is not None:
            self.envoy.stop()
        for server in self.servers:
            server.stop()
