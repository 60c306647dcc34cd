"""Poison events land in DEAD_LETTERS after N tries with their reason; malformed ones at once; replay and tooling."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json

import nats
import psycopg

from chassis.events import Backoff, Consumer, DeadLetters, EventBus, outbox, subjects
from chassis.events.envelope import headers_for, new_envelope
from chassis.tooling.deadletters_cli import add_commands
from chassis.tooling.infra.nats import NatsProcess
from protomesh.agent.v1 import agent_pb2, events_pb2
from protomesh.events.v1 import envelope_pb2
from tests.events.conftest import Service, eventually, recording_handler

FAST = Backoff(initial=0.05, multiplier=2.0, maximum=0.2)


async def add_event(service: Service, agent_id: str) -> str:
    async with service.pool.connection() as conn, conn.transaction():
        envelope = await outbox.add(conn, events_pb2.AgentRegistered(agent_id=agent_id, name=agent_id),
                                    subject=f"agents/{agent_id}", source="test")
    return envelope.id


def run_cli(nats_url: str, *argv: str) -> tuple[int, str]:
    """`protomesh deadletters ...` as the CLI owner wires it: add_commands on the main parser."""
    parser = argparse.ArgumentParser(prog="protomesh")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["deadletters", "--nats-url", nats_url, *argv])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = args.func(args)
    return code, out.getvalue()


async def test_poison_event_is_dead_lettered_after_n_tries_then_replayed_once_after_the_fix(
    service: Service, nats_server: NatsProcess
) -> None:
    attempts: list[str] = []
    broken = True
    record = recording_handler("poison-test")

    async def handle(event: events_pb2.AgentRegistered, envelope: envelope_pb2.Envelope,
                     conn: psycopg.AsyncConnection) -> None:
        if event.agent_id == "poison":
            attempts.append(envelope.id)
            if broken:
                await conn.execute("INSERT INTO things (id) VALUES ('written-then-rolled-back')")
                raise ValueError("cannot handle agent 'poison'")
        await record(event, envelope, conn)

    consumer = Consumer("poison-test", [events_pb2.AgentRegistered], handle, max_deliver=3, backoff=FAST)
    async with EventBus(service.settings(nats_server.url), service.pool, consumers=[consumer]) as runtime:
        good_before = await add_event(service, "good-1")
        poison_id = await add_event(service, "poison")
        good_after = await add_event(service, "good-2")
        dead = runtime.dead_letters()

        async def dead_lettered() -> bool:
            return len(await dead.list()) == 1

        await eventually(dead_lettered, 20, "the poison event in DEAD_LETTERS")
        [stored] = await dead.list()
        r = stored.record
        assert (r.reason, r.consumer, r.delivery_count, r.event_id, r.event_type) == (
            envelope_pb2.DEAD_LETTER_REASON_HANDLER_FAILED, "poison-test", 3, poison_id,
            "protomesh.agent.v1.AgentRegistered")
        assert "ValueError: cannot handle agent 'poison'" in r.error
        assert r.original_subject == subjects.event_subject(events_pb2.AgentRegistered)
        assert attempts == [poison_id] * 3
        # The other events were not held up, and the failed attempts left nothing behind.
        assert set(await service.column("SELECT event_id FROM handled")) == {good_before, good_after}
        assert await service.scalar("SELECT count(*) FROM things WHERE id = 'written-then-rolled-back'") == 0

        code, listing = await asyncio.to_thread(run_cli, nats_server.url, "list", "--json")
        assert code == 0 and json.loads(listing)["event_id"] == poison_id
        code, shown = await asyncio.to_thread(run_cli, nats_server.url, "show", str(stored.id))
        details = json.loads(shown)
        assert details["envelope"]["data"]["agent_id"] == "poison" and details["delivery_count"] == 3

        broken = False  # the fix is deployed
        code, replayed = await asyncio.to_thread(run_cli, nats_server.url, "replay", str(stored.id), "--keep")
        assert code == 0 and "1 replayed" in replayed

        async def handled_after_fix() -> bool:
            return await service.scalar("SELECT count(*) FROM handled WHERE event_id = %s", (poison_id,)) == 1

        await eventually(handled_after_fix, 15, "the replayed event handled")
        # Replaying again (everything, this time) is harmless: processed_events says it was handled.
        code, _ = await asyncio.to_thread(run_cli, nats_server.url, "replay", "--all")
        assert code == 0 and await dead.list() == []
        js = runtime.nc.jetstream()  # type: ignore[union-attr]

        async def settled() -> bool:
            info = await js.consumer_info(subjects.event_stream(events_pb2.AgentRegistered), "poison-test")
            return info.num_pending == 0 and info.num_ack_pending == 0

        await eventually(settled, 15, "the second replay delivered and acknowledged")
        assert await service.scalar("SELECT count(*) FROM handled WHERE event_id = %s", (poison_id,)) == 1
        assert attempts.count(poison_id) == 4  # three failures, one success, no handling of the second replay


async def test_malformed_events_go_straight_to_dead_letters_and_never_reach_a_handler(
    service: Service, nats_server: NatsProcess
) -> None:
    calls: list[str] = []
    consumer = Consumer("strict", [events_pb2.AgentRegistered], recording_handler("strict", calls), max_deliver=5,
                        backoff=FAST)
    subject = subjects.event_subject(events_pb2.AgentRegistered)
    valid = new_envelope(events_pb2.AgentRegistered(agent_id="ok"), subject="agents/ok", source="test")
    unknown_type = new_envelope(events_pb2.AgentRegistered(), subject="agents/u", source="test")
    unknown_type.type = "protomesh.agent.v1.NoSuchEvent"
    wrong_payload = new_envelope(agent_pb2.Agent(name="not an event"), subject="agents/w", source="test")
    wrong_payload.type = "protomesh.agent.v1.AgentRegistered"
    future_version = new_envelope(events_pb2.AgentRegistered(), subject="agents/f", source="test")
    future_version.schema_version = 2
    bad = {
        "garbage": b"\xff\xfe\xfd definitely not protobuf",
        "unknown type": unknown_type.SerializeToString(),
        "wrong payload": wrong_payload.SerializeToString(),
        "schema version": future_version.SerializeToString(),
    }
    async with EventBus(service.settings(nats_server.url), service.pool, consumers=[consumer]) as runtime:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        try:
            for name, raw in bad.items():
                await js.publish(subject, raw, headers={"Nats-Msg-Id": f"bad-{name}"})
            await js.publish(subject, valid.SerializeToString(), headers=headers_for(valid))
            dead = DeadLetters(js)

            async def all_dead_lettered() -> bool:
                return len(await dead.list("strict")) == len(bad)

            await eventually(all_dead_lettered, 20, "every malformed event in DEAD_LETTERS")
            stored = await dead.list("strict")
            assert {s.record.reason for s in stored} == {envelope_pb2.DEAD_LETTER_REASON_INVALID_EVENT}
            assert {s.record.delivery_count for s in stored} == {1}  # no retries: a bad event stays bad
            assert sorted(s.record.event_id for s in stored) == sorted(f"bad-{name}" for name in bad)
            errors = " | ".join(s.record.error for s in stored)
            for complaint in ("not a protomesh.events.v1.Envelope", "not a message in the contracts", "data holds",
                              "schema_version 2"):
                assert complaint in errors

            async def valid_handled() -> bool:
                return await service.scalar("SELECT count(*) FROM handled") == 1

            await eventually(valid_handled, 10, "the valid event handled")
            assert calls == [valid.id]  # the handler only ever saw the valid event
            assert runtime.consumer_runners[0].handled == 1

            code, out = await asyncio.to_thread(run_cli, nats_server.url, "purge", "--consumer", "strict")
            assert code == 0 and f"{len(bad)} dead letters purged" in out
            assert await dead.list() == []
        finally:
            await nc.close()
