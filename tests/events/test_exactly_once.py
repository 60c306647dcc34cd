"""Every committed event is handled exactly once, even when nats-server is killed in the middle of a burst."""

from __future__ import annotations

import asyncio

from chassis.callcontext import CallContext, current_call
from chassis.events import Backoff, Consumer, EventBus
from chassis.tooling.infra.nats import NatsProcess
from protomesh.agent.v1 import events_pb2
from tests.events.conftest import Service, commit_events, eventually, recording_handler

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_burst_survives_nats_server_kill_and_restart_exactly_once(
    service: Service, nats_server: NatsProcess
) -> None:
    total, kill_after = 600, 200
    consumers = [
        Consumer("burst-a", [events_pb2.AgentRegistered], recording_handler("burst-a"), concurrency=8, ack_wait=3,
                 backoff=Backoff(initial=0.05, maximum=0.5)),
        Consumer("burst-b", [events_pb2.AgentRegistered, events_pb2.AgentUpdated], recording_handler("burst-b"),
                 concurrency=4, ack_wait=3, backoff=Backoff(initial=0.05, maximum=0.5)),
    ]
    settings = service.settings(nats_server.url)
    async with EventBus(settings, service.pool, consumers=consumers) as runtime:
        token = current_call.set(CallContext(deadline=None, headers=(("traceparent", TRACEPARENT),)))
        try:
            ids = await commit_events(service, kill_after, per_transaction=5, prefix="before")

            async def nats_outage() -> None:
                await asyncio.to_thread(nats_server.kill)  # SIGKILL: no goodbye to clients
                await asyncio.sleep(0.5)
                await asyncio.to_thread(nats_server.start)  # same port, same store

            outage = asyncio.create_task(nats_outage())
            ids += await commit_events(service, total - kill_after, per_transaction=5, prefix="during")
            await outage
        finally:
            current_call.reset(token)

        async def all_handled() -> bool:
            return await service.scalar("SELECT count(*) FROM handled") >= 2 * total

        await eventually(all_handled, 45, f"{total} events handled by each of two consumers")
        await asyncio.sleep(0.5)  # let any straggling redelivery arrive, so a duplicate would show
        assert runtime.relay is not None and runtime.relay.published >= total

    assert len(ids) == total
    assert await service.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    for consumer in ("burst-a", "burst-b"):
        handled = await service.column("SELECT event_id FROM handled WHERE consumer = %s", (consumer,))
        assert len(handled) == total, f"{consumer} handled {len(handled)} events for {total} committed"
        assert set(handled) == set(ids)
        assert await service.scalar(
            "SELECT count(*) FROM processed_events WHERE consumer = %s", (consumer,)) == total
    # The trace context of the calls that wrote the events reached every handler.
    assert await service.column("SELECT DISTINCT trace_parent FROM handled") == [TRACEPARENT]
