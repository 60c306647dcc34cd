"""A registry that cannot be reached when a replica starts: retried with backoff and shown in health, not fatal."""

from __future__ import annotations

import asyncio
import socket
import time

from chassis.health import HealthMonitor
from chassis.registry import ConsulRegistry, Instance, Registration, reachable_address
from protomesh.common.v1 import service_info_pb2
from tests.support.consul_standin import ConsulStandIn


async def test_registry_unreachable_at_start_is_retried_and_reported_in_health() -> None:
    consul = ConsulStandIn()  # its port is bound but nothing answers yet: a registry that hangs
    registry = ConsulRegistry(consul.address)
    monitor = HealthMonitor("alpha", "alpha-1", [], interval=0.2)
    await monitor.start()
    replica = Instance(service="alpha", instance_id="alpha-1", address="10.1.2.3", port=50051)
    registration = Registration(registry, replica, lambda: monitor.serving, health=monitor, attempt_timeout=0.5)
    try:
        started = time.monotonic()
        await registration.start()  # returns instead of failing the replica's start
        assert time.monotonic() - started < 2
        await monitor.check_now()
        [dependency] = [d for d in monitor.report().dependencies if d.name == "registry"]
        assert dependency.state == service_info_pb2.HEALTH_STATE_NOT_SERVING
        assert "not registered yet" in dependency.detail and "TimeoutError" in dependency.detail, dependency.detail
        assert not monitor.serving and not registration.registered

        consul.start()
        for _ in range(150):  # up to 15 s: the backoff's next attempt, then the health monitor's next probe
            if registration.registered and monitor.serving:
                break
            await asyncio.sleep(0.1)
        assert registration.registered and monitor.serving
        listed = await registry.instances("alpha", healthy_only=False)
        # The address the replica advertised (ADVERTISE_HOST: the pod's IP on Kubernetes), not a host name.
        assert [(i.instance_id, i.address) for i in listed] == [("alpha-1", "10.1.2.3")]
    finally:
        await registration.stop()
        await monitor.shutdown()
        await registry.close()
        consul.stop()


def test_a_replica_registers_an_address_other_hosts_reach() -> None:
    host = socket.gethostname()
    resolved = socket.gethostbyname(host)
    # Defaulted to the host name (bound to 0.0.0.0 without ADVERTISE_HOST): its IP instead, unless only loopback.
    assert reachable_address(host) == (host if resolved.startswith("127.") else resolved)
    # Chosen addresses are kept: the downward API's pod IP, a compose service name.
    assert reachable_address("10.1.2.3") == "10.1.2.3"
    assert reachable_address("agent") == "agent"
