"""Consumers handle fetched batches in one transaction, a savepoint per event: a failing handler costs only its own."""

from __future__ import annotations

import asyncio
from collections import Counter

import nats
import psycopg

from chassis.events import Backoff, Consumer, EventBus, subjects
from chassis.events.envelope import headers_for, new_envelope
from chassis.events.streams import Streams
from chassis.tooling.infra.nats import NatsProcess
from protomesh.agent.v1 import events_pb2
from protomesh.events.v1 import envelope_pb2
from tests.events.conftest import Service, eventually, recording_handler

STREAM = subjects.event_stream(events_pb2.AgentRegistered)
SUBJECT = subjects.event_subject(events_pb2.AgentRegistered)


async def publish(js: nats.js.JetStreamContext, agent_ids: list[str]) -> list[str]:
    """Put events straight into the stream (as the relay would); their ids."""
    ids = []
    for agent_id in agent_ids:
        envelope = new_envelope(events_pb2.AgentRegistered(agent_id=agent_id), subject=f"agents/{agent_id}",
                                source="test")
        await js.publish(SUBJECT, envelope.SerializeToString(), headers=headers_for(envelope))
        ids.append(envelope.id)
    return ids


async def settled(js: nats.js.JetStreamContext, consumer: str) -> bool:
    """Whether the durable consumer exists and every message was delivered and acknowledged."""
    try:
        info = await js.consumer_info(STREAM, consumer)
    except nats.js.errors.NotFoundError:  # the pull loop creates it in the background
        return False
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_a_failing_handler_rolls_back_only_its_own_event_and_the_rest_of_the_batch_is_acked_once(
    service: Service, nats_server: NatsProcess
) -> None:
    calls: Counter[str] = Counter()
    transactions: dict[str, int] = {}
    record = recording_handler("batch")

    async def handle(event: events_pb2.AgentRegistered, envelope: envelope_pb2.Envelope,
                     conn: psycopg.AsyncConnection) -> None:
        calls[event.agent_id] += 1
        if event.agent_id.startswith("quiet"):
            return  # no statement: the consumer does not renew the savepoint after it
        row = await (await conn.execute("SELECT txid_current()")).fetchone()
        assert row is not None
        transactions.setdefault(event.agent_id, row[0])
        await record(event, envelope, conn)  # written, and rolled back with its savepoint when failing below
        if event.agent_id == "poison":
            await conn.execute("SELECT 1/0")  # a SQL error: the transaction is unusable until rolled back
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    consumer = Consumer("batch", [events_pb2.AgentRegistered], handle, max_deliver=2,
                        backoff=Backoff(initial=0.05, maximum=0.1))
    try:
        await Streams(js).ensure_package(subjects.package_of(events_pb2.AgentRegistered))
        agents = ([f"good-{n}" for n in range(10)] + [f"quiet-{n}" for n in range(3)] + ["poison"]
                  + [f"good-{n}" for n in range(10, 20)])
        ids = dict(zip(agents, await publish(js, agents), strict=True))
        # Every event is in the stream before the consumer starts: its first fetch takes them as one batch.
        async with EventBus(service.settings(nats_server.url), service.pool, consumers=[consumer]) as runtime:
            dead = runtime.dead_letters()

            async def poison_dead_lettered() -> bool:
                return len(await dead.list("batch")) == 1

            await eventually(poison_dead_lettered, 20, "the poison event dead-lettered after 2 deliveries")
            await eventually(lambda: settled(js, "batch"), 15, "every delivery acknowledged")
            assert runtime.consumer_runners[0].handled == 23
        good = [a for a in agents if a != "poison"]
        written = [a for a in good if a.startswith("good")]
        assert calls == Counter({**dict.fromkeys(good, 1), "poison": 2})  # the good ones ran exactly once
        # The good events of the first batch committed in the transaction the poison event failed in.
        assert transactions["poison"] in {transactions[a] for a in written}
        assert len(set(transactions.values())) < len(agents) / 2
        handled = await service.column("SELECT event_id FROM handled WHERE consumer = 'batch'")
        assert sorted(handled) == sorted(ids[a] for a in written)  # the poison's own write was rolled back
        processed = await service.column("SELECT event_id FROM processed_events WHERE consumer = 'batch'")
        # ... and so was its dedup row, but not those of the quiet ones just before it.
        assert sorted(processed) == sorted(ids[a] for a in good)
    finally:
        await nc.close()


async def test_a_slow_batch_is_kept_by_heartbeats_and_not_redelivered(
    service: Service, nats_server: NatsProcess
) -> None:
    ack_wait = 1.0
    calls: Counter[str] = Counter()

    async def slow(event: events_pb2.AgentRegistered, envelope: envelope_pb2.Envelope,
                   conn: psycopg.AsyncConnection) -> None:
        calls[event.agent_id] += 1
        if event.agent_id == "slow":
            await asyncio.sleep(ack_wait * 1.6)  # the whole batch waits past ack_wait behind this one

    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    consumer = Consumer("heartbeat", [events_pb2.AgentRegistered], slow, ack_wait=ack_wait)
    try:
        await Streams(js).ensure_package(subjects.package_of(events_pb2.AgentRegistered))
        await publish(js, ["slow", "next-1", "next-2"])
        async with EventBus(service.settings(nats_server.url), service.pool, consumers=[consumer]) as runtime:
            await eventually(lambda: settled(js, "heartbeat"), 15, "the batch acknowledged")
            assert runtime.consumer_runners[0].handled == 3
            info = await js.consumer_info(STREAM, "heartbeat")
        assert info.num_redelivered == 0  # in-progress beats for the whole batch held ack_wait off
        assert calls == Counter({"slow": 1, "next-1": 1, "next-2": 1})
    finally:
        await nc.close()


async def test_a_handler_hung_in_postgresql_is_cancelled_at_its_timeout_and_the_event_handled_on_redelivery(
    service: Service, nats_server: NatsProcess
) -> None:
    """A batch stuck on a lock (as behind a transaction whose client vanished) would heartbeat forever; the
    handler timeout cancels it, rolls the transaction back (the waiting query is cancelled in PostgreSQL too)
    and the redelivery handles the event once."""
    lock_key = 424242
    calls: Counter[str] = Counter()
    record = recording_handler("timeout")

    async def handle(event: events_pb2.AgentRegistered, envelope: envelope_pb2.Envelope,
                     conn: psycopg.AsyncConnection) -> None:
        calls[event.agent_id] += 1
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))  # waits while the test holds it
        await record(event, envelope, conn)

    async def lock_waiters() -> int:
        return int(await service.scalar(  # type: ignore[call-overload]
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND NOT granted",
            (lock_key,)))

    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    consumer = Consumer("timeout", [events_pb2.AgentRegistered], handle, handler_timeout=1.0,
                        backoff=Backoff(initial=0.05, maximum=0.1))
    holder = await psycopg.AsyncConnection.connect(service.url, autocommit=True)
    try:
        await holder.execute("SELECT pg_advisory_lock(%s)", (lock_key,))
        await Streams(js).ensure_package(subjects.package_of(events_pb2.AgentRegistered))
        (event_id,) = await publish(js, ["stuck"])
        async with EventBus(service.settings(nats_server.url), service.pool, consumers=[consumer]) as runtime:
            await eventually(lambda: asyncio.sleep(0, calls["stuck"] >= 2), 15,
                             "the hung delivery cancelled and the event delivered again")
            await holder.execute("SELECT pg_advisory_unlock(%s)", (lock_key,))
            await eventually(lambda: settled(js, "timeout"), 15, "the event acknowledged")
            assert runtime.consumer_runners[0].handled == 1
            assert await lock_waiters() == 0  # no cancelled query left waiting in PostgreSQL
        assert await service.column("SELECT event_id FROM handled WHERE consumer = 'timeout'") == [event_id]
        assert await service.column("SELECT event_id FROM processed_events WHERE consumer = 'timeout'") == [event_id]
    finally:
        await holder.close()
        await nc.close()
