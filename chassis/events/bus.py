"""EventBus: outbox relay, consumers and task workers of one replica, started and stopped by chassis.serve."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

import nats
from psycopg_pool import AsyncConnectionPool

from chassis.config import Settings
from chassis.events import outbox
from chassis.events.consumer import Consumer, ConsumerRunner
from chassis.events.deadletters import DeadLetters
from chassis.events.relay import Relay
from chassis.events.streams import Streams, connect
from chassis.events.tasks import TaskQueue, Worker, WorkerRunner

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventHandlers:
    """What a service declares about events: its consumers and task workers (the relay always runs
    for services with a database, so anything they put in the outbox is published)."""

    consumers: Sequence[Consumer] = ()
    workers: Sequence[Worker] = ()


class EventBus:
    """Outbox relay, consumers and task workers of one service replica, over one NATS connection.

    `start()` applies the chassis migrations (outbox, processed_events) to the service's schema,
    connects to NATS, creates the streams it needs and starts the relay (when there is a pool),
    the consumers and the workers. `stop(grace)` stops taking messages, lets handlers finish
    within grace, stops the relay and closes the connection.
    """

    def __init__(
        self,
        settings: Settings,
        pool: AsyncConnectionPool | None,
        *,
        consumers: Sequence[Consumer] = (),
        workers: Sequence[Worker] = (),
        relay: bool = True,
        schema: str | None = None,
        source: str | None = None,
    ) -> None:
        if consumers and pool is None:
            raise ValueError("event consumers need the service's database pool (declare migrations)")
        names = [c.name for c in consumers]
        if len(names) != len(set(names)):
            raise ValueError(f"consumer names must be unique: {names}")
        self.settings = settings
        self.pool = pool
        self.schema = schema or settings.service
        self.source = source or settings.service
        self.consumers = list(consumers)
        self.workers = list(workers)
        self._want_relay = relay and pool is not None
        self.nc: nats.NATS | None = None
        self.relay: Relay | None = None
        self.consumer_runners: list[ConsumerRunner] = []
        self.worker_runners: list[WorkerRunner] = []
        self._tasks: TaskQueue | None = None

    @property
    def tasks(self) -> TaskQueue:
        """Submit background tasks (after start)."""
        if self._tasks is None:
            raise RuntimeError("EventBus is not started")
        return self._tasks

    def dead_letters(self) -> DeadLetters:
        """Dead-letter tooling over this runtime's connection (after start)."""
        if self.nc is None:
            raise RuntimeError("EventBus is not started")
        return DeadLetters(self.nc.jetstream())

    async def ping(self, timeout: float = 2.0) -> None:
        """Raise unless NATS answers a round trip now (a health probe for the replica)."""
        if self.nc is None or not self.nc.is_connected:
            raise ConnectionError("not connected to NATS")
        # nats-py annotates flush(timeout: int) but passes it to asyncio.wait_for: a float is right.
        await self.nc.flush(timeout=timeout)  # type: ignore[arg-type]

    async def start(self) -> None:
        """Migrate, connect, and start the relay, consumers and workers."""
        s = self.settings
        if not s.nats_url:
            raise RuntimeError(f"service {s.service} uses events and needs NATS_URL (nats://host:port)")
        if self.pool is not None:
            if not s.database_url:
                raise RuntimeError(f"service {s.service} uses the outbox and needs DATABASE_URL")
            applied = await outbox.migrate(s.database_url, self.schema)
            if applied:
                logger.info("applied chassis migrations", extra={"schema": self.schema, "migrations": applied})
        self.nc = await connect(s.nats_url, f"{s.instance_id or s.service}-events")
        js = self.nc.jetstream()
        streams = Streams(js)
        await streams.ensure_dead_letters()
        self._tasks = TaskQueue(self.nc, self.source, streams=streams)
        if self._want_relay:
            assert self.pool is not None and s.database_url  # noqa: S101 narrows a type for mypy, not a check of input: under -O only the error raised would differ
            self.relay = Relay(s.database_url, self.pool, self.nc, self.schema, streams=streams)
            self.relay.start()
        for consumer in self.consumers:
            assert self.pool is not None  # noqa: S101 narrows a type for mypy, not a check of input: under -O only the error raised would differ
            runner = ConsumerRunner(consumer, js, self.pool, streams)
            await runner.start()
            self.consumer_runners.append(runner)
        for worker in self.workers:
            runner_ = WorkerRunner(worker, self.nc, streams, s.instance_id or s.service)
            await runner_.start()
            self.worker_runners.append(runner_)
        logger.info("event bus started", extra={"relay": self.relay is not None,
                                                     "consumers": [c.name for c in self.consumers],
                                                     "task_kinds": [k for w in self.workers for k in w.kinds]})

    async def stop(self, grace: float = 5.0) -> None:
        """Stop consumers and workers (in-flight handlers get grace seconds), the relay, then the connection."""
        await asyncio.gather(*(r.stop(grace) for r in self.consumer_runners),
                             *(w.stop(grace) for w in self.worker_runners))
        if self.relay:
            await self.relay.stop()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.flush(timeout=1)  # the last acks and naks reach the server
            with contextlib.suppress(Exception):
                await self.nc.close()
        self.consumer_runners, self.worker_runners, self.relay, self.nc, self._tasks = [], [], None, None, None

    async def __aenter__(self) -> EventBus:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop(self.settings.shutdown_grace_seconds)
