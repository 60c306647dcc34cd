"""The plaintext health-only port (HEALTH_PORT) for the kubelet's native gRPC probes: health, and nothing else."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chassis.config import ConfigError
from chassis.health import HealthMonitor
from chassis.health_port import health_port, serve_health_port
from chassis.tooling.infra.ports import free_port

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


async def test_the_health_port_answers_health_in_plaintext_and_nothing_else() -> None:
    monitor = HealthMonitor("alpha", "alpha-1", ["protomesh.alpha.v1.AlphaService"], interval=0.2)
    down = {"ok": False}

    async def probe() -> None:
        if not down["ok"]:
            raise RuntimeError("database down")

    monitor.add_probe("postgres", probe)
    await monitor.start()
    port = free_port()
    server = await serve_health_port(monitor, "127.0.0.1", port)
    assert server is not None
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:  # as the kubelet dials: no TLS
            health = health_pb2_grpc.HealthStub(channel)
            check = health_pb2.HealthCheckRequest
            assert (await health.Check(check(service=""), timeout=2)).status == NOT_SERVING
            assert (await health.Check(check(service="liveness"), timeout=2)).status == SERVING
            down["ok"] = True
            await monitor.check_now()
            assert (await health.Check(check(service=""), timeout=2)).status == SERVING
            # Nothing but health: reflection (and any business method) is not served here.
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await channel.unary_unary("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")(
                    b"", timeout=2)
            assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop(0)
        await monitor.shutdown()


def test_health_port_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEALTH_PORT", raising=False)
    assert health_port() == 0
    monkeypatch.setenv("HEALTH_PORT", "8086")
    assert health_port() == 8086
    monkeypatch.setenv("HEALTH_PORT", "eighty")
    with pytest.raises(ConfigError, match="HEALTH_PORT"):
        health_port()
