"""Transactional outbox and relay over real PostgreSQL and nats-server."""

from __future__ import annotations

import asyncio
import uuid

import nats
import psycopg
import pytest

from chassis.callcontext import CallContext, current_call
from chassis.events import Consumer, EventBus, Relay, outbox, subjects
from chassis.events.envelope import headers_for, new_envelope
from chassis.tooling.infra.nats import NatsProcess
from protomesh.agent.v1 import events_pb2
from tests.events.conftest import Service, commit_events, eventually, recording_handler

STREAM = subjects.event_stream(events_pb2.AgentRegistered)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def stream_messages(js: nats.js.JetStreamContext) -> int:
    try:
        return (await js.stream_info(STREAM)).state.messages
    except nats.js.errors.NotFoundError:
        return 0


async def test_chassis_migrations_are_tracked_apart_and_safe_to_run_twice_and_at_once(database_url: str) -> None:
    schema = "mig_" + uuid.uuid4().hex[:8]
    first, second = await asyncio.gather(outbox.migrate(database_url, schema), outbox.migrate(database_url, schema))
    assert sorted(first + second) == [1, 2]  # 001 outbox + processed_events, 002 idempotency keys
    assert await outbox.migrate(database_url, schema) == []
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        tables = {row[0] for row in await (await conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))).fetchall()}
        versions = await (await conn.execute(f"SELECT version, name FROM {schema}.chassis_migrations")).fetchall()
    assert {"outbox", "processed_events", "idempotency_keys", "chassis_migrations"} <= tables
    assert "schema_migrations" not in tables  # the service's own migration history is untouched
    assert versions == [(1, "outbox"), (2, "idempotency_keys")]


async def test_only_committed_events_are_published_with_id_and_trace_headers(
    service: Service, nats_server: NatsProcess
) -> None:
    nc = await nats.connect(nats_server.url)
    relay = Relay(service.url, service.pool, nc, service.schema, poll_interval=5.0)
    relay.start()
    try:
        with pytest.raises(RuntimeError):
            async with service.pool.connection() as conn, conn.transaction():
                await outbox.add(conn, events_pb2.AgentRegistered(agent_id="rolled-back"), subject="agents/x",
                                 source="test")
                raise RuntimeError("the domain change failed")
        token = current_call.set(CallContext(deadline=None, headers=(("traceparent", TRACEPARENT),)))
        try:
            async with service.pool.connection() as conn, conn.transaction():
                envelope = await outbox.add(conn, events_pb2.AgentRegistered(agent_id="kept"), subject="agents/kept",
                                            source="test")
        finally:
            current_call.reset(token)
        js = nc.jetstream()

        async def published() -> bool:
            return await stream_messages(js) >= 1

        await eventually(published, 15, "the committed event in the stream (woken by NOTIFY)")
        stored = await js.get_msg(STREAM, seq=1)
        assert stored.subject == "events.protomesh.agent.v1.agent_registered"
        assert stored.headers and stored.headers["Nats-Msg-Id"] == envelope.id
        assert stored.headers["traceparent"] == TRACEPARENT and stored.headers["ce-type"] == envelope.type
        await asyncio.sleep(0.3)
        assert await stream_messages(js) == 1  # the rolled-back event never left the database
        assert await service.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    finally:
        await relay.stop()
        await nc.close()


class RelayCrash(Exception):
    """Stands for the relay's process dying after publishing, before its transaction commits."""


class CrashingRelay(Relay):
    """Publishes and gets the acks, then dies before marking the rows sent."""

    async def _mark_sent(self, conn: psycopg.AsyncConnection, seqs: object) -> None:
        raise RelayCrash


async def test_relay_crash_between_publish_and_mark_sent_causes_no_duplicate_handling(
    service: Service, nats_server: NatsProcess
) -> None:
    count = 300
    ids = await commit_events(service, count, per_transaction=10)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        with pytest.raises(RelayCrash):
            await CrashingRelay(service.url, service.pool, nc, service.schema, batch_size=count).drain()
        assert await stream_messages(js) == count  # published and acknowledged ...
        assert await service.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == count  # ... not marked

        consumer = Consumer("crash-test", [events_pb2.AgentRegistered], recording_handler("crash-test"))
        async with EventBus(service.settings(nats_server.url), service.pool, consumers=[consumer]) as runtime:
            async def all_sent_and_handled() -> bool:
                return (await service.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
                        and await service.scalar("SELECT count(*) FROM handled") == count)

            await eventually(all_sent_and_handled, 30, f"{count} events re-published by a fresh relay and handled")
            assert runtime.relay and runtime.relay.published == count  # the fresh relay did publish them again,
            assert await stream_messages(js) == count  # and the server dropped the copies by Nats-Msg-Id

            # A copy the server cannot recognise (as after the duplicate window): processed_events skips it.
            envelope = new_envelope(events_pb2.AgentRegistered(agent_id="dup"), subject="agents/dup", source="test",
                                    event_id=ids[0])
            await js.publish(subjects.event_subject(events_pb2.AgentRegistered), envelope.SerializeToString(),
                             headers=headers_for(envelope, msg_id="outside-the-window"))

            async def copy_acked() -> bool:
                info = await js.consumer_info(STREAM, "crash-test")
                return info.num_pending == 0 and info.num_ack_pending == 0

            await eventually(copy_acked, 15, "the late copy delivered and acknowledged")
        handled = await service.column("SELECT event_id FROM handled")
        assert len(handled) == count and set(handled) == set(ids)
    finally:
        await nc.close()


async def test_relays_in_several_replicas_do_not_publish_a_row_twice(
    service: Service, nats_server: NatsProcess
) -> None:
    count = 500
    await commit_events(service, count, per_transaction=50)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        relays = [Relay(service.url, service.pool, nc, service.schema, batch_size=25) for _ in range(3)]
        await asyncio.gather(*(relay.drain() for relay in relays))
        assert sum(relay.published for relay in relays) == count  # each row locked and published by one relay
        assert await stream_messages(js) == count
        assert await service.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    finally:
        await nc.close()


async def notifications(conn: psycopg.AsyncConnection) -> int:
    """NOTIFYs that reached a LISTENing connection since the last call (waits a moment for stragglers)."""
    count = 0
    async for _ in conn.notifies(timeout=0.3):
        count += 1
    return count


async def idle_lock_held(service: Service) -> bool:
    """Whether a relay holds the schema's idle lock (it is idle and producers will notify it)."""
    return bool(await service.scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::oid AND objsubid = 2"
        " AND objid = hashtext(%s)::oid AND mode = 'ExclusiveLock' AND granted",
        (outbox.IDLE_LOCK_CLASS, outbox.notify_channel(service.schema))))


class HeldRelay(Relay):
    """A relay held in the middle of a round (busy, as when publishing a backlog) until released."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.busy = asyncio.Event()
        self.release = asyncio.Event()

    async def _start_round(self):  # type: ignore[no-untyped-def]
        self.busy.set()
        await self.release.wait()
        return await super()._start_round()


async def test_producers_notify_only_an_idle_relay_which_then_publishes_at_once(
    service: Service, nats_server: NatsProcess
) -> None:
    listener = await psycopg.AsyncConnection.connect(service.url, autocommit=True)
    await listener.execute(f'LISTEN "{outbox.notify_channel(service.schema)}"')
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    # No relay at all: nobody to wake, so no producer transaction notifies.
    await commit_events(service, 40, per_transaction=1, prefix="none")
    assert await notifications(listener) == 0
    # A busy relay polls: 40 more transactions while it is in a round send no NOTIFY either.
    relay = HeldRelay(service.url, service.pool, nc, service.schema, poll_interval=60.0, batch_size=30)
    relay.start()
    try:
        await asyncio.wait_for(relay.busy.wait(), 10)
        await commit_events(service, 40, per_transaction=1, prefix="busy")
        assert await notifications(listener) == 0
        relay.release.set()

        async def all_published_and_idle() -> bool:
            return await stream_messages(js) == 80 and await idle_lock_held(service)

        await eventually(all_published_and_idle, 15, "80 events published, then the relay idle with the lock")
        # Idle (and polling only every 60 s): one commit notifies it, and it publishes at once.
        loop = asyncio.get_running_loop()
        started = loop.time()
        await commit_events(service, 1, prefix="idle")

        async def published() -> bool:
            return await stream_messages(js) == 81

        await eventually(published, 10, "the event committed to an idle relay in the stream", interval=0.005)
        took = loop.time() - started
        assert took < 5.0, f"the idle relay took {took:.2f}s: woken by its poll, not by the NOTIFY"
        assert await notifications(listener) >= 1
        assert relay.published == 81
    finally:
        await relay.stop()
        await nc.close()
        await listener.close()


async def test_running_relays_in_several_replicas_publish_each_row_once_while_producers_commit(
    service: Service, nats_server: NatsProcess
) -> None:
    count, producers = 600, 4
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    relays = [Relay(service.url, service.pool, nc, service.schema, batch_size=20, poll_interval=30.0)
              for _ in range(3)]
    for relay in relays:
        relay.start()
    try:
        batches = await asyncio.gather(*(commit_events(service, count // producers, per_transaction=3,
                                                       prefix=f"p{n}-") for n in range(producers)))

        async def all_sent() -> bool:
            return await service.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0

        # Well within the relays' 30 s poll: a lost wake-up fails this rather than slowing it.
        await eventually(all_sent, 15, f"{count} rows published by three relays and marked sent")
        assert sum(relay.published for relay in relays) == count  # each row locked and published by one relay
        assert await stream_messages(js) == count
        assert len({event_id for batch in batches for event_id in batch}) == count
    finally:
        for relay in relays:
            await relay.stop()
        await nc.close()
