"""A plaintext port that answers the gRPC health service only, for probes that cannot speak the mesh's mTLS.

The kubelet's native gRPC probe dials plaintext, and a replica's gRPC port serves mTLS only. With HEALTH_PORT
set, the replica also serves the same health service (the same SERVING / NOT_SERVING and the `liveness` name,
chassis.health) on that port, and nothing else: no business method, no reflection, no caller data. Unset (the
local mesh, compose): no such port.
"""

from __future__ import annotations

import os

import grpc
from grpc_health.v1 import health_pb2_grpc

from chassis.config import ConfigError
from chassis.health import HealthMonitor


def health_port() -> int:
    """HEALTH_PORT from the environment: 0 (off) or a port number."""
    raw = os.environ.get("HEALTH_PORT", "").strip() or "0"
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise ConfigError(f"HEALTH_PORT: {raw!r} is not a port number (0-65535; 0 or unset: no health port)")
    return int(raw)


async def serve_health_port(monitor: HealthMonitor, host: str, port: int | None = None) -> grpc.aio.Server | None:
    """Serve the monitor's health service on host:port in plaintext (HEALTH_PORT when `port` is None)."""
    port = health_port() if port is None else port
    if not port:
        return None
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(monitor.servicer, server)
    try:
        server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:
        raise RuntimeError(f"cannot listen on {host}:{port} for health probes: is HEALTH_PORT taken?") from exc
    await server.start()
    return server
