"""The processes of the events benchmark: our outbox producer and consumer, and the raw nats-py peers.

    python -m bench.peers.events_peer outbox-producer  --out F [--rate R] [--producers P] ...
    python -m bench.peers.events_peer outbox-consumer  --out F [--concurrency C]
    python -m bench.peers.events_peer raw-publisher    --out F [--rate R] [--producers P] [--windowed]
    python -m bench.peers.events_peer raw-subscriber   --out F

Ours: a producer commits a domain row and its event in one transaction (`chassis.events.outbox`),
the chassis relay (`EventBus`) publishes committed events to JetStream, and a consumer in
another process (another service's schema) handles each event in a transaction that records it in
processed_events. Peer: the same envelope bytes and headers published with nats-py straight to a
stream of the same configuration, and a plain pull subscriber acking each message.

Every process prints `ready`, then progress lines (`committed N` / `handled N`), and on exit (or
SIGTERM for the consumers) writes {event id: unix time} to --out, so the benchmark can join
"committed" (or "publish started") with "handled" per event. Connection settings come from
DATABASE_URL and NATS_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import nats.errors
import nats.js.errors
import psycopg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from chassis import db
from chassis.config import Settings
from chassis.events import Consumer, EventBus, outbox
from chassis.events.consumer import ConsumerRunner
from chassis.events.envelope import headers_for, new_envelope
from chassis.events.streams import DUPLICATE_WINDOW_SECONDS
from protomesh.agent.v1 import events_pb2

PRODUCER_SCHEMA = "bench_producer"
CONSUMER_SCHEMA = "bench_consumer"
CONSUMER_NAME = "bench-consumer"
RAW_STREAM = "BENCH_RAW"
RAW_SUBJECT = "bench.raw.agent_registered"
DOMAIN_TABLE = "CREATE TABLE IF NOT EXISTS things (id uuid PRIMARY KEY, name text NOT NULL)"


def say(line: str) -> None:
    """A line for the benchmark, which reads this process's stdout."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def event(n: int) -> events_pb2.AgentRegistered:
    """The event both sides send: a realistic AgentRegistered."""
    return events_pb2.AgentRegistered(agent_id=str(uuid.uuid4()), name=f"bench-agent-{n}", type="calculator",
                                      capabilities=["math.evaluate"])


async def produce(one: Callable[[int], Awaitable[None]], *, rate: float, producers: int, seconds: float) -> int:
    """Call `one` for `seconds`: closed loop with `producers` concurrent loops, or paced at `rate` per second
    (open loop; at most `producers` * 4 outstanding). Returns how many completed."""
    done = 0
    counter = iter(range(10**12))
    deadline = time.monotonic() + seconds

    async def loop() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await one(next(counter))
            done += 1

    if rate <= 0:
        await asyncio.gather(*(loop() for _ in range(producers)))
        return done
    limit = asyncio.Semaphore(max(producers * 4, 8))
    pending: set[asyncio.Task[None]] = set()

    async def paced(n: int) -> None:
        nonlocal done
        async with limit:
            await one(n)
            done += 1

    interval = 1.0 / rate
    start = time.monotonic()
    n = 0
    while (now := time.monotonic()) < deadline:
        due = start + n * interval
        if due > now:
            await asyncio.sleep(due - now)
        task = asyncio.create_task(paced(next(counter)))
        pending.add(task)
        task.add_done_callback(pending.discard)
        n += 1
    if pending:
        await asyncio.wait(pending, timeout=10)
    return done


async def report_progress(what: str, count: Callable[[], int], stop: asyncio.Event) -> None:
    """Print `what N` every quarter second until stop."""
    while not stop.is_set():
        say(f"{what} {count()}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)
    say(f"{what} {count()}")


def write_times(path: str, times: dict[str, float], extra: dict[str, Any] | None = None) -> None:
    """{event id: unix time} (and extra keys) as JSON."""
    with open(path, "w") as handle:
        json.dump({"times": times, **(extra or {})}, handle)


def settings(schema: str, instance: str) -> Settings:
    """Settings of a stand-in replica owning `schema`."""
    return Settings(service=schema, database_url=os.environ["DATABASE_URL"], nats_url=os.environ["NATS_URL"],
                    instance_id=instance, shutdown_grace_seconds=2.0)


async def prepare_schema(url: str, schema: str) -> None:
    """The stand-in service's schema, its domain table, and the chassis tables (outbox, processed_events)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(f"SET search_path TO {schema}")
        await conn.execute(DOMAIN_TABLE)
    await outbox.migrate(url, schema)


async def outbox_producer(args: argparse.Namespace) -> None:
    """Commit domain rows with their events; the chassis relay in this process publishes them."""
    url = os.environ["DATABASE_URL"]
    await prepare_schema(url, PRODUCER_SCHEMA)
    pool = db.open_pool(url, PRODUCER_SCHEMA, min_size=2, max_size=max(10, args.producers + 2), timeout=10)
    await pool.open(wait=True)
    runtime = EventBus(settings(PRODUCER_SCHEMA, "bench-producer"), pool)
    await runtime.start()
    committed: dict[str, float] = {}
    stop = asyncio.Event()

    async def one(n: int) -> None:
        message = event(n)
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("INSERT INTO things (id, name) VALUES (%s, %s)", (message.agent_id, message.name))
            envelope = await outbox.add(conn, message, subject=f"agents/{message.agent_id}", source="bench")
        committed[envelope.id] = time.time()  # after the commit: the event is durable and will be published

    progress = asyncio.create_task(report_progress("committed", lambda: len(committed), stop))
    say("ready")
    try:
        await produce(one, rate=args.rate, producers=args.producers, seconds=args.seconds)
        # The relay finishes publishing what is committed (bounded).
        deadline = time.monotonic() + 15
        assert runtime.relay is not None
        while runtime.relay.published < len(committed) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await progress
        write_times(args.out, committed, {"published": runtime.relay.published if runtime.relay else 0})
        await runtime.stop(2)
        await pool.close()


async def outbox_consumer(args: argparse.Namespace) -> None:
    """A chassis consumer in another service's schema: each event handled with its processed_events record."""
    url = os.environ["DATABASE_URL"]
    await prepare_schema(url, CONSUMER_SCHEMA)
    pool = db.open_pool(url, CONSUMER_SCHEMA, min_size=2, max_size=args.concurrency + 4, timeout=10)
    await pool.open(wait=True)
    handled: dict[str, float] = {}

    # Time each event once its transaction (handler + processed_events row) has committed: the
    # runner's on_handled is called right after each commit. When JetStream stored each message
    # is noted as its batch arrives (wrapped here, in the benchmark only).
    stored: dict[str, float] = {}
    original_process = ConsumerRunner._process_batch

    async def process(self: ConsumerRunner, msgs: list[Any]) -> None:
        for msg in msgs:
            note_stored(stored, msg)
        await original_process(self, msgs)

    ConsumerRunner._process_batch = process  # type: ignore[method-assign]

    def on_handled(envelopes: list[Any]) -> None:
        now = time.time()
        for envelope in envelopes:
            handled[envelope.id] = now

    async def on_registered(message: Any, envelope: Any, conn: psycopg.AsyncConnection) -> None:
        """The handler's own work is nothing: what is measured is the delivery and its dedup record."""

    # The consumer as services declare it: its default batch and concurrency (a chassis setting, not
    # the peer's --concurrency, which sizes the pool here and the raw subscriber's fetches).
    consumer = Consumer(CONSUMER_NAME, [events_pb2.AgentRegistered], on_registered)
    runtime = EventBus(settings(CONSUMER_SCHEMA, "bench-consumer"), pool, consumers=[consumer], relay=False)
    await runtime.start()
    for runner in runtime.consumer_runners:
        runner.on_handled = on_handled
    await serve_until_terminated("handled", handled, args.out, stored)
    await runtime.stop(2)
    await pool.close()


def note_stored(stored: dict[str, float], msg: Any) -> None:
    """When JetStream stored the message (its metadata timestamp), by event id: splits the latency into
    publishing (relay) and delivery + handling."""
    with contextlib.suppress(Exception):
        stored.setdefault(msg.headers["Nats-Msg-Id"], msg.metadata.timestamp.timestamp())


async def serve_until_terminated(what: str, times: dict[str, float], out: str,
                                 stored: dict[str, float] | None = None) -> None:
    """Report progress until SIGTERM, then write the times."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    say("ready")
    await report_progress(what, lambda: len(times), stop)
    write_times(out, times, {"stored": stored or {}})


def raw_stream_config() -> StreamConfig:
    """The peer's stream: the configuration of the chassis's event streams, another name."""
    return StreamConfig(name=RAW_STREAM, subjects=[RAW_SUBJECT], storage=StorageType.FILE,
                        duplicate_window=DUPLICATE_WINDOW_SECONDS)


async def raw_connect() -> nats.NATS:
    nc = await nats.connect(os.environ["NATS_URL"], connect_timeout=2)
    js = nc.jetstream()
    try:
        await js.stream_info(RAW_STREAM)
    except nats.js.errors.NotFoundError:
        with contextlib.suppress(nats.js.errors.BadRequestError):
            await js.add_stream(raw_stream_config())
    return nc


async def raw_publisher(args: argparse.Namespace) -> None:
    """nats-py straight to JetStream: await each ack (the naive way), or keep a window of acks in flight."""
    nc = await raw_connect()
    js = nc.jetstream()
    started: dict[str, float] = {}
    stop = asyncio.Event()
    pending: list[asyncio.Future[Any]] = []

    async def one(n: int) -> None:
        envelope = new_envelope(event(n), subject="agents/x", source="bench")
        payload, headers = envelope.SerializeToString(), headers_for(envelope)
        started[envelope.id] = time.time()
        if args.windowed:
            pending.append(await js.publish_async(RAW_SUBJECT, payload, headers=headers, wait_stall=10))
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                pending.clear()
        else:
            await js.publish(RAW_SUBJECT, payload, headers=headers, timeout=10)

    progress = asyncio.create_task(report_progress("committed", lambda: len(started), stop))
    say("ready")
    try:
        await produce(one, rate=args.rate, producers=args.producers, seconds=args.seconds)
        await asyncio.gather(*pending)
    finally:
        stop.set()
        await progress
        write_times(args.out, started)
        await nc.close()


async def raw_subscriber(args: argparse.Namespace) -> None:
    """A durable pull consumer on the peer's stream, fetching in batches, acking each message."""
    nc = await raw_connect()
    js = nc.jetstream()
    config = ConsumerConfig(durable_name="bench-raw", ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.NEW,
                            max_ack_pending=10000)
    await js.add_consumer(RAW_STREAM, config=config)
    sub = await js.pull_subscribe_bind(durable="bench-raw", stream=RAW_STREAM)
    handled: dict[str, float] = {}
    stored: dict[str, float] = {}

    async def fetch() -> None:
        while True:
            try:
                msgs = await sub.fetch(args.concurrency, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            for msg in msgs:
                note_stored(stored, msg)
                handled[(msg.headers or {})["Nats-Msg-Id"]] = time.time()
                await msg.ack()

    task = asyncio.create_task(fetch())
    await serve_until_terminated("handled", handled, args.out, stored)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await nc.close()


MODES = {"outbox-producer": outbox_producer, "outbox-consumer": outbox_consumer,
         "raw-publisher": raw_publisher, "raw-subscriber": raw_subscriber}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--out", required=True, help="where to write {event id: unix time}")
    parser.add_argument("--rate", type=float, default=0.0, help="events per second (0: as fast as it goes)")
    parser.add_argument("--producers", type=int, default=1, help="concurrent producer loops")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to produce")
    parser.add_argument("--concurrency", type=int, default=32, help="consumers: deliveries handled at once")
    parser.add_argument("--windowed", action="store_true", help="raw publisher: do not await each ack")
    args = parser.parse_args()
    asyncio.run(MODES[args.mode](args))


if __name__ == "__main__":
    main()
