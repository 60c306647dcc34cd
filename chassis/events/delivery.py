"""What consumers and task workers share: backoff, the delivery being handled, and the pull loop."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Redelivery delay after a failed attempt: initial * multiplier**(attempt-1), capped, with jitter."""

    initial: float = 0.5
    multiplier: float = 2.0
    maximum: float = 60.0
    jitter: float = 0.1
    """Fraction of the delay added at random, so failures of many messages do not retry in lockstep."""

    def delay(self, attempt: int) -> float:
        """Seconds to wait before delivery attempt+1."""
        base = min(self.initial * self.multiplier ** max(attempt - 1, 0), self.maximum)
        return base * (1 + random.uniform(0, self.jitter))  # noqa: S311 retry jitter, not a secret


@dataclass(frozen=True)
class Delivery:
    """The message being handled, as handlers may want to see it (trace headers, attempt number)."""

    consumer: str
    nats_subject: str
    stream: str
    stream_sequence: int
    delivery_count: int
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def trace_headers(self) -> dict[str, str]:
        """The W3C trace context the message arrived with (traceparent, tracestate)."""
        return {k: v for k, v in self.headers.items() if k in ("traceparent", "tracestate")}


current_delivery: contextvars.ContextVar[Delivery | None] = contextvars.ContextVar("current_delivery", default=None)
"""Set while a handler runs; `chassis.events.current_delivery.get()` inside a handler returns it."""


def delivery_of(msg: Msg, consumer: str) -> Delivery:
    """The Delivery of a JetStream message."""
    meta = msg.metadata
    return Delivery(
        consumer=consumer,
        nats_subject=msg.subject,
        stream=meta.stream,
        stream_sequence=meta.sequence.stream,
        delivery_count=meta.num_delivered,
        headers=dict(msg.headers or {}),
    )


@contextlib.asynccontextmanager
async def heartbeat(msgs: Msg | Sequence[Msg], every: float) -> AsyncIterator[None]:
    """Tell the server the messages are still being worked on, so ack_wait does not redeliver them meanwhile.

    One timer for a whole batch: each beat sends in-progress for every message of it.
    """
    batch = [msgs] if isinstance(msgs, Msg) else list(msgs)

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            for msg in batch:
                with contextlib.suppress(nats.errors.Error, OSError):
                    await msg.in_progress()

    task = asyncio.create_task(beat(), name="in-progress-heartbeat")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class PullLoop:
    """Fetches from one durable pull consumer and runs `process` on each message, `concurrency` at a time.

    With `batch` > 1, `process` gets a list: each fetch of up to `batch` messages (whatever is
    there, waiting at most fetch_timeout for the first) is processed together, and `concurrency`
    counts batches in flight.

    The durable consumer is created (or updated) on start and again whenever fetching fails with
    a server error, so a nats-server that restarts, or loses its store, is followed without help.
    """

    def __init__(
        self,
        js: JetStreamContext,
        stream: str,
        config: ConsumerConfig,
        process: Callable[[Msg], Awaitable[None]] | Callable[[list[Msg]], Awaitable[None]],
        *,
        concurrency: int,
        ensure_stream: Callable[[], Awaitable[None]],
        on_error: Callable[[], None] | None = None,
        fetch_timeout: float = 1.0,
        batch: int = 1,
    ) -> None:
        self._js = js
        self._stream = stream
        self._config = config
        self._process = process
        self._concurrency = concurrency
        self._ensure_stream = ensure_stream
        self._on_error = on_error
        self._fetch_timeout = fetch_timeout
        self._batch = batch
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def name(self) -> str:
        """The durable consumer's name."""
        assert self._config.durable_name  # noqa: S101 narrows a type for mypy, not a check of input: under -O only the error raised would differ
        return self._config.durable_name

    async def _bind(self) -> JetStreamContext.PullSubscription:
        await self._ensure_stream()
        await self._js.add_consumer(self._stream, config=self._config)
        return await self._js.pull_subscribe_bind(durable=self.name, stream=self._stream)

    def start(self) -> None:
        """Start fetching in the background."""
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self._stream}-{self.name}")

    async def _run(self) -> None:
        sub: JetStreamContext.PullSubscription | None = None
        failures = 0
        while not self._stopping.is_set():
            try:
                if sub is None:
                    sub = await self._bind()
                free = self._concurrency - len(self._inflight)
                if free <= 0:
                    await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                try:
                    msgs = await sub.fetch(self._batch if self._batch > 1 else free, timeout=self._fetch_timeout)
                except (TimeoutError, nats.errors.TimeoutError):
                    failures = 0
                    continue
                failures = 0
                units: list[Msg | list[Msg]] = [msgs] if self._batch > 1 else list(msgs)
                for unit in units:
                    task = asyncio.create_task(self._guarded(unit))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # nats-server away or restarting: rebind after a pause
                failures += 1
                logger.warning("consumer fetch failed; retrying",
                               extra={"consumer": self.name, "stream": self._stream, "error": repr(exc)})
                if self._on_error:
                    self._on_error()
                if sub is not None:
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()
                sub = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), min(0.1 * 2 ** min(failures, 5), 2.0))
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _guarded(self, unit: Msg | list[Msg]) -> None:
        try:
            await self._process(unit)  # type: ignore[arg-type]  # a list exactly when batch > 1
        except Exception:
            # process() settles every message itself; anything escaping is a bug, and the
            # messages are redelivered after ack_wait.
            first = unit[0] if isinstance(unit, list) else unit
            logger.exception("message processing failed", extra={"consumer": self.name, "subject": first.subject})

    async def stop(self, grace: float) -> None:
        """Stop fetching, give in-flight messages `grace` seconds, cancel the rest (they are redelivered)."""
        self._stopping.set()
        if self._task:
            # Cancelling a pending fetch loses nothing: messages it would have brought stay on the server.
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
