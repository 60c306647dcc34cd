"""Circuit breakers (purgatory): one per target, shared by every call to it in the process, or by all
replicas through NATS KV."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import nats.js.errors
from nats.js.api import KeyValueConfig
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import Context, OpenedState
from purgatory.service._async.repository import AsyncAbstractRepository
from purgatory.service._async.unit_of_work import AsyncAbstractUnitOfWork

from chassis.errors import CircuitOpen, ServiceError
from chassis.events.streams import stream_replicas

logger = logging.getLogger(__name__)

# Only these mean "the target is in trouble"; a client's own mistake (400/404/409...) must not open it.
FAILURE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                           grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})


def counts_as_failure(exc: BaseException) -> bool:
    """Whether an exception from a call is the target's fault."""
    if isinstance(exc, grpc.aio.AioRpcError | grpc.RpcError) and hasattr(exc, "code"):
        return exc.code() in FAILURE_CODES
    if isinstance(exc, ServiceError):
        return exc.code in FAILURE_CODES
    return isinstance(exc, OSError | TimeoutError | ConnectionError)


@dataclass
class Transition:
    """A breaker state change, kept for status endpoints and the fault demo."""

    target: str
    state: str
    at: float


class NatsKvBreakerStore(AsyncAbstractUnitOfWork):
    """Breaker state in a JetStream KV bucket, so one replica's discovery of an outage opens the
    breaker for every replica of the caller."""

    BUCKET = "protomesh_breakers"

    def __init__(self, js: Any, namespace: str) -> None:
        self.contexts = _KvRepository(js, namespace, self.BUCKET)

    async def initialize(self) -> None:
        await self.contexts.initialize()

    async def commit(self) -> None:
        """Writes happen as they come."""

    async def rollback(self) -> None:
        """Nothing to undo."""


class _KvRepository(AsyncAbstractRepository):
    def __init__(self, js: Any, namespace: str, bucket: str) -> None:
        self._js = js
        self._namespace = namespace
        self._bucket_name = bucket
        self._kv: Any = None
        self.messages = []

    async def initialize(self) -> None:
        try:
            self._kv = await self._js.key_value(self._bucket_name)
        except nats.js.errors.BucketNotFoundError:
            try:
                self._kv = await self._js.create_key_value(KeyValueConfig(bucket=self._bucket_name, history=1,
                                                                                    replicas=stream_replicas()))
            except nats.js.errors.BadRequestError:
                self._kv = await self._js.key_value(self._bucket_name)

    def _key(self, name: str) -> str:
        return f"{self._namespace}.{name}".replace(":", "_").replace("/", "_")

    async def _read(self, name: str) -> dict[str, Any] | None:
        try:
            entry = await self._kv.get(self._key(name))
        except nats.js.errors.KeyNotFoundError:
            return None
        return json.loads(entry.value) if entry and entry.value else None

    async def _write(self, name: str, data: dict[str, Any]) -> None:
        await self._kv.put(self._key(name), json.dumps(data).encode())

    async def get(self, name: str) -> Context | None:
        data = await self._read(name)
        return Context(**data) if data else None

    async def register(self, context: Context) -> None:
        await self._write(context.name, {"name": context.name, "threshold": context.threshold, "ttl": context.ttl,
                                         "state": context.state, "opened_at": context.opened_at,
                                         "failure_count": context.failure_count or 0})

    async def update_state(self, name: str, state: str, opened_at: float | None) -> None:
        data = await self._read(name) or {"name": name}
        data.update(state=state, opened_at=opened_at)
        await self._write(name, data)

    async def inc_failures(self, name: str, failure_count: int) -> None:
        data = await self._read(name) or {"name": name}
        data["failure_count"] = failure_count
        await self._write(name, data)

    async def reset_failure(self, name: str) -> None:
        data = await self._read(name) or {"name": name}
        data["failure_count"] = 0
        await self._write(name, data)


class BreakerBoard:
    """The breakers of one process: one per target, created on first use with the target's policy."""

    def __init__(self, store: AsyncAbstractUnitOfWork | None = None,
                 on_change: Callable[[str, str], None] | None = None) -> None:
        self._on_change = on_change
        self._factory = AsyncCircuitBreakerFactory(uow=store)
        self._factory.add_listener(self._on_event)
        self._probing: set[str] = set()
        self.transitions: list[Transition] = []
        self._initialized = False

    def _on_event(self, name: str, event_type: str, event: Any) -> None:
        if event_type == "state_changed":
            self.transitions.append(Transition(name, event.state, time.time()))
            if self._on_change:
                self._on_change(name, event.state)
            log = logger.warning if event.state == "opened" else logger.info
            log("circuit breaker %s", event.state, extra={"target": name, "state": event.state})

    async def _breaker(self, target: str, threshold: int, recovery: float) -> Any:
        if not self._initialized:
            await self._factory.initialize()
            self._initialized = True
        return await self._factory.get_breaker(target, threshold=threshold, ttl=recovery,
                                               exclude=[(BaseException, lambda e: not counts_as_failure(e))])

    @contextlib.asynccontextmanager
    async def guard(self, target: str, *, threshold: int, recovery: float) -> AsyncIterator[None]:
        """Run a call under the target's breaker; CircuitOpen when it is open (or its one probe is out)."""
        breaker = await self._breaker(target, threshold, recovery)
        probe = breaker.context.state != "closed"
        if probe:
            if target in self._probing:
                raise CircuitOpen(f"circuit to {target} is half-open and its probe call is in flight; failing fast",
                                  metadata={"target": target})
            self._probing.add(target)
        try:
            async with breaker:
                yield
        except OpenedState:
            raise CircuitOpen(f"circuit to {target} is open after repeated failures; failing fast until it "
                              f"recovers (probe in {recovery:.1f}s or less)", metadata={"target": target}) from None
        finally:
            if probe:
                self._probing.discard(target)

    async def status(self, target: str) -> dict[str, Any]:
        """State, failure count and when it opened."""
        async with self._factory.uow as uow:
            context = await uow.contexts.get(target)
        if context is None:
            return {"state": "closed", "failure_count": 0, "opened_at": None}
        return {"state": context.state, "failure_count": context.failure_count or 0, "opened_at": context.opened_at,
                "threshold": context.threshold, "recovery_timeout": context.ttl}

    async def reset(self, target: str) -> None:
        """Close the breaker now (an operator says the target is fine)."""
        async with self._factory.uow as uow:
            context = await uow.contexts.get(target)
            if context is not None:
                await uow.contexts.update_state(target, "closed", None)
                await uow.contexts.reset_failure(target)
                if type(uow.contexts).__name__ == "AsyncInMemoryRepository":
                    uow.contexts.breakers.pop(target, None)  # type: ignore[attr-defined]
        self.transitions.append(Transition(target, "closed", time.time()))
        if self._on_change:
            self._on_change(target, "closed")
