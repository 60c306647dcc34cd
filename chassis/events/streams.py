"""JetStream streams of the event bus, created idempotently: one per event package, dead letters, tasks."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import urllib.parse
from collections.abc import Awaitable, Callable

import nats
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from chassis.events import subjects

logger = logging.getLogger(__name__)

DUPLICATE_WINDOW_SECONDS = 300.0
"""How long the server remembers a Nats-Msg-Id; a relay that re-publishes within it is de-duplicated,
and consumers' processed_events covers anything later."""
EVENT_MAX_AGE_SECONDS = 7 * 24 * 3600.0
DEAD_LETTER_MAX_AGE_SECONDS = 30 * 24 * 3600.0
UNAVAILABLE_RETRY_SECONDS = 30.0
"""How long creating a stream waits out JetStream not answering (when_jetstream_answers)."""
REPLICAS_ENV = "NATS_REPLICAS"
"""How many servers of a NATS cluster keep each stream and bucket the mesh creates (3 in a three-node cluster,
so a quorum survives one server's loss); 1, a single server's, when unset."""


def stream_replicas() -> int:
    """The replication factor of streams and buckets created now (NATS_REPLICAS, default 1)."""
    return int(os.environ.get(REPLICAS_ENV, "1") or "1")


def nats_servers(url: str) -> list[str]:
    """The servers of a NATS_URL, which may list a cluster's nodes comma-separated (each with its user).

    nats-py learns the other nodes from the server too, but without the user of the URL, so a client
    whose node went away could not sign in on the others: every node is named, with its credentials.
    """
    return [part.strip() for part in url.split(",") if part.strip()]


def event_stream_config(package: str) -> StreamConfig:
    """The stream of one domain package's events."""
    return StreamConfig(
        name=subjects.package_stream(package),
        subjects=subjects.event_stream_subjects(package),
        description=f"domain events of {package}",
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        max_age=EVENT_MAX_AGE_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=stream_replicas(),
    )


def dead_letter_stream_config() -> StreamConfig:
    """The stream of messages no consumer could handle."""
    return StreamConfig(
        name=subjects.DEAD_LETTER_STREAM,
        subjects=subjects.dead_letter_stream_subjects(),
        description="events and tasks that failed validation or every allowed delivery",
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        max_age=DEAD_LETTER_MAX_AGE_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=stream_replicas(),
    )


def task_stream_config() -> StreamConfig:
    """The work queue of background tasks: each message goes to one worker and is removed once acked."""
    return StreamConfig(
        name=subjects.TASK_STREAM,
        subjects=subjects.task_stream_subjects(),
        description="background tasks; any worker replica of a kind may take any task",
        storage=StorageType.FILE,
        retention=RetentionPolicy.WORK_QUEUE,
        discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=stream_replicas(),
    )


class Streams:
    """Creates streams on first use and remembers which exist, per connection."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._known: set[str] = set()

    async def ensure(self, config: StreamConfig) -> None:
        """Create the stream unless it exists; several replicas may race here.

        Patient (when_jetstream_answers): a cluster answers nothing before it has a meta leader, and creating
        a replicated stream on a busy cluster may outlast one request's timeout.
        """
        assert config.name  # noqa: S101 narrows a type for mypy, not a check of input: under -O only the error raised would differ
        if config.name in self._known:
            return
        await when_jetstream_answers(lambda: self._create(config))
        self._known.add(config.name)

    async def _create(self, config: StreamConfig) -> None:
        assert config.name  # noqa: S101 narrows a type for mypy, not a check of input: under -O only the error raised would differ
        try:
            await self._js.stream_info(config.name)
        except nats.js.errors.NotFoundError:
            try:
                await self._js.add_stream(config)
                logger.info("created stream", extra={"stream": config.name, "subjects": config.subjects})
            except nats.js.errors.BadRequestError:
                await self._js.stream_info(config.name)  # another replica created it first

    async def ensure_package(self, package: str) -> str:
        """The event stream of a package, created if missing; returns its name."""
        await self.ensure(event_stream_config(package))
        return subjects.package_stream(package)

    async def ensure_dead_letters(self) -> None:
        """The dead-letter stream, created if missing."""
        await self.ensure(dead_letter_stream_config())

    async def ensure_tasks(self) -> None:
        """The task work queue, created if missing."""
        await self.ensure(task_stream_config())

    def forget(self) -> None:
        """Check again on next use (e.g. after nats-server lost its store)."""
        self._known.clear()


async def when_jetstream_answers(request: Callable[[], Awaitable[None]],
                                 seconds: float = UNAVAILABLE_RETRY_SECONDS) -> None:
    """Make a JetStream request, again with backoff while JetStream does not answer, for up to `seconds`.

    A NATS cluster answers no JetStream request until it has elected its meta leader, which takes seconds
    after a cluster (re)starts or loses its leader; a replica starting then must wait, not exit.
    """
    deadline = time.monotonic() + seconds
    pause = 0.25
    while True:
        try:
            await request()
            return
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError):
            if time.monotonic() + pause > deadline:
                raise
            logger.warning("JetStream does not answer yet; asking again in %.2fs", pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)


def inbox_prefix(user: str | None) -> str:
    """Where a NATS user's replies and pulled messages arrive: `_INBOX.<user>` (the server lets each service
    subscribe to its own only), or NATS' default `_INBOX` for a connection without a user."""
    return f"_INBOX.{user}" if user else "_INBOX"


def inbox_prefix_of(url: str) -> str:
    """The inbox prefix for a connection to `url` (its first server's user info names the user)."""
    servers = nats_servers(url)
    return inbox_prefix(urllib.parse.urlsplit(servers[0] if servers else url).username)


def liveness_options() -> dict[str, float | int]:
    """Client pings that notice a dead route to the server in seconds, not minutes.

    nats-py pings every 120 s and gives up after two unanswered pings, so a connection through a
    cluster node that was cut off (a host partition) kept "working" for minutes while nothing it
    sent arrived. NATS_PING_SECONDS (default 5) times 3 unanswered pings is how long that now lasts
    before the client reconnects to another node.
    """
    interval = float(os.environ.get("NATS_PING_SECONDS", "5") or 5)
    return {"ping_interval": max(interval, 0.5), "max_outstanding_pings": 3}


async def connect(url: str, name: str) -> nats.NATS:
    """A NATS connection that keeps reconnecting for as long as it lives (nats-server restarts are routine)."""

    async def error(exc: Exception) -> None:
        logger.warning("nats connection error", extra={"connection": name, "error": repr(exc)})

    async def disconnected() -> None:
        logger.warning("nats disconnected; reconnecting", extra={"connection": name})

    async def reconnected() -> None:
        logger.info("nats reconnected", extra={"connection": name})

    return await nats.connect(
        nats_servers(url),
        name=name,
        connect_timeout=2,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        allow_reconnect=True,
        inbox_prefix=inbox_prefix_of(url),
        error_cb=error,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        **liveness_options(),
    )
