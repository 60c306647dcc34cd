"""Background task queue on the TASKS work-queue stream: submit jobs, run them in any worker replica."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import nats
from google.protobuf import message, timestamp_pb2
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from chassis.callcontext import CallContext, current_call
from chassis.events import subjects
from chassis.events.deadletters import dead_letter
from chassis.events.delivery import Backoff, Delivery, PullLoop, current_delivery, delivery_of, heartbeat
from chassis.events.envelope import InvalidEvent, headers_for, new_envelope, open_envelope
from chassis.events.streams import Streams
from chassis.identity import claims_metadata
from chassis.telemetry import consumer_span
from protomesh.events.v1 import envelope_pb2

logger = logging.getLogger(__name__)


RECONNECT_GRACE_SECONDS = 1.0
"""How long `submit` waits for a NATS connection that is reconnecting (a node failover takes milliseconds)."""


class TaskQueue:
    """Submits tasks; `submit` returns once the server has stored the task."""

    def __init__(self, nc: nats.NATS, source: str, *, streams: Streams | None = None) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._source = source
        self._streams = streams or Streams(self._js)

    async def submit(self, kind: str, payload: message.Message, task_id: str | None = None,
                     *, timeout: float = 5.0) -> str:
        """Queue a task of `kind` with a contract message as payload; returns its id.

        The task id is the Nats-Msg-Id: submitting the same id again within the duplicate
        window (e.g. a retry after a lost reply) queues it once.
        """
        task_id = task_id or str(uuid.uuid4())
        subject = subjects.task_subject(kind)
        await self._connected(RECONNECT_GRACE_SECONDS)
        await self._streams.ensure_tasks()
        envelope = new_envelope(payload, subject=f"tasks/{task_id}", source=self._source, event_id=task_id)
        await self._js.publish(subject, envelope.SerializeToString(), headers=headers_for(envelope), timeout=timeout)
        return task_id

    async def _connected(self, grace: float) -> None:
        """Return once connected to NATS, waiting out a reconnect of up to `grace` seconds; else raise.

        While NATS is away a publish would wait its whole timeout for an acknowledgement that cannot come; the
        caller (an RPC) should rather answer UNAVAILABLE at once, so its client retries later.
        """
        deadline = asyncio.get_running_loop().time() + grace
        while not self._nc.is_connected:
            if asyncio.get_running_loop().time() >= deadline:
                raise ConnectionError(f"not connected to NATS (waited {grace:g}s for a reconnect)")
            await asyncio.sleep(0.05)

    @contextlib.asynccontextmanager
    async def progress(self, task_id: str) -> AsyncIterator[asyncio.Queue[envelope_pb2.TaskProgress]]:
        """Progress reports of one task while the context is open (core NATS: only while someone listens)."""
        queue: asyncio.Queue[envelope_pb2.TaskProgress] = asyncio.Queue()

        async def received(msg: Msg) -> None:
            with contextlib.suppress(Exception):
                queue.put_nowait(envelope_pb2.TaskProgress.FromString(msg.data))

        sub = await self._nc.subscribe(subjects.task_progress_subject(task_id), cb=received)
        try:
            yield queue
        finally:
            await sub.unsubscribe()


@dataclass
class Task:
    """The task a worker handler is running: its id, kind, envelope and a way to report progress."""

    id: str
    kind: str
    envelope: envelope_pb2.Envelope
    delivery: Delivery
    _nc: nats.NATS
    _msg: Msg
    _worker: str

    async def report(self, progress: float, message: str = "") -> None:
        """Publish progress (0..1) for whoever watches the task; also counts as a heartbeat."""
        report = envelope_pb2.TaskProgress(task_id=self.id, kind=self.kind, progress=progress, message=message,
                                           worker=self._worker)
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        report.report_time.CopyFrom(now)
        with contextlib.suppress(nats.errors.Error, OSError):
            await self._nc.publish(subjects.task_progress_subject(self.id), report.SerializeToString())
            await self._msg.in_progress()


TaskHandler = Callable[[Any, Task], Awaitable[None]]
"""`async def run(payload, task)`; returning acknowledges the task, raising retries it with backoff."""


@dataclass(frozen=True)
class Worker:
    """Runs tasks of some kinds; every replica shares one durable consumer per kind, so any may run any task.

    While the handler runs, the worker tells the server every ack_wait/3 that the task is in
    progress, so long tasks are not redelivered; a worker that dies stops those heartbeats and
    the task goes to another worker after ack_wait. The task is acknowledged (and leaves the
    work queue) only when the handler returns. Failures are retried with backoff; after
    max_deliver deliveries the task is dead-lettered. Handlers should be idempotent: a worker
    killed after finishing but before its ack runs the task again elsewhere.
    """

    kinds: Sequence[str]
    handler: TaskHandler
    ack_wait: float = 30.0
    concurrency: int = 1
    max_deliver: int = 5
    backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        if not self.kinds:
            raise ValueError("a worker needs at least one task kind")
        for kind in self.kinds:
            subjects.task_subject(kind)


class WorkerRunner:
    """Runs one Worker in this replica: one pull loop per task kind."""

    def __init__(self, worker: Worker, nc: nats.NATS, streams: Streams, instance: str) -> None:
        self.worker = worker
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._streams = streams
        self._instance = instance
        self._loops: list[PullLoop] = []
        self.completed = 0

    async def start(self) -> None:
        """Create the work queue (now) and the kinds' durable consumers (as the pull loops start), then work."""
        w = self.worker
        for kind in w.kinds:
            consumer = subjects.task_consumer(kind)
            config = ConsumerConfig(
                name=consumer,
                durable_name=consumer,
                description=f"protomesh task workers of {kind}",
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=w.ack_wait,
                max_deliver=-1,
                max_ack_pending=1000,
                filter_subject=subjects.task_subject(kind),
            )

            async def ensure() -> None:
                await self._streams.ensure_tasks()
                await self._streams.ensure_dead_letters()

            async def process(msg: Msg, kind: str = kind, consumer: str = consumer) -> None:
                await self._process(msg, kind, consumer)

            await ensure()
            loop = PullLoop(self._js, subjects.TASK_STREAM, config, process, concurrency=w.concurrency,
                            ensure_stream=ensure, on_error=self._streams.forget)
            loop.start()
            self._loops.append(loop)

    async def stop(self, grace: float) -> None:
        """Stop taking tasks; running ones get grace seconds, then are left to be redelivered."""
        await asyncio.gather(*(loop.stop(grace) for loop in self._loops))

    async def _process(self, msg: Msg, kind: str, consumer: str) -> None:
        w = self.worker
        delivery = delivery_of(msg, consumer)
        try:
            payload, envelope = open_envelope(msg.data, nats_subject=msg.subject)
        except InvalidEvent as exc:
            await self._fail(msg, consumer, delivery.delivery_count, envelope_pb2.DEAD_LETTER_REASON_INVALID_EVENT,
                             str(exc), None, final=True)
            return
        task = Task(envelope.id, kind, envelope, delivery, self._nc, msg, self._instance)
        token = current_delivery.set(delivery)
        incoming = dict(delivery.trace_headers)
        if not incoming and envelope.trace_parent:
            incoming = {"traceparent": envelope.trace_parent}
        span = consumer_span(f"run task {kind}", incoming)
        trace = span.__enter__()
        call_token = current_call.set(CallContext(deadline=None, headers=(*trace.items(), *claims_metadata())))
        try:
            async with heartbeat(msg, w.ack_wait / 3):
                await w.handler(payload, task)
        except Exception as exc:
            final = delivery.delivery_count >= w.max_deliver
            logger.warning("task failed", extra={"task_id": task.id, "kind": kind, "final": final,
                                                 "delivery": delivery.delivery_count, "error": repr(exc)})
            await self._fail(msg, consumer, delivery.delivery_count, envelope_pb2.DEAD_LETTER_REASON_HANDLER_FAILED,
                             f"{type(exc).__name__}: {exc}", envelope, final=final)
            return
        finally:
            current_call.reset(call_token)
            current_delivery.reset(token)
            span.__exit__(None, None, None)
        await msg.ack_sync(timeout=5.0)
        self.completed += 1

    async def _fail(self, msg: Msg, consumer: str, deliveries: int, reason: int, error: str,
                    envelope: envelope_pb2.Envelope | None, *, final: bool) -> None:
        if final:
            try:
                await dead_letter(self._js, msg, consumer=consumer, reason=reason, error=error, envelope=envelope)
                return
            except Exception as exc:
                logger.warning("dead-lettering a task failed; will retry", extra={"error": repr(exc)})
        await msg.nak(delay=self.worker.backoff.delay(deliveries))
