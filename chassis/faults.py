"""Failure toggles at run time: added latency and aborts per service and per method, without restarts.

A toggle lives in the JetStream KV bucket `protomesh_faults`, beside the registry, one key per scope:
`<service>.all` (every method of the service) or `<service>.<Method>`. `protomesh fault set` writes it;
two places read it:

- inside the replicas, every call a ServiceClient makes to the toggled service goes through `FaultWatch.inject`
  inside its breaker and retries, so an injected failure is seen by the caller's resilience exactly as a
  real one would be (it counts toward the breaker, is retried if the method is idempotent);
- at the gateway, chassis.tooling.gateway_faults mirrors the toggles into Envoy's fault filter through its
  runtime (admin /runtime_modify), so calls from outside the mesh meet the same faults.

Every toggle carries its own end (`expires_at`): readers ignore an expired toggle by themselves, so it clears
even if nobody deletes it; the gateway sync deletes expired keys as it goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Any

import grpc
import nats.errors
import nats.js.errors
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from chassis.events.streams import stream_replicas

logger = logging.getLogger(__name__)

BUCKET = "protomesh_faults"
ALL_METHODS = "all"
"""The key suffix of a toggle for every method of a service (RPC names are PascalCase, so it cannot clash)."""
WHERE = ("both", "gateway", "mesh")
"""Where a toggle applies: the gateway (calls from outside), the mesh (calls between services), or both."""
MAX_DURATION_SECONDS = 24 * 3600.0
MAX_DELAY_MS = 60_000
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_METHOD = re.compile(r"^[A-Z][A-Za-z0-9]{0,127}$")


class FaultError(ValueError):
    """A toggle that cannot be set; the message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass(frozen=True)
class FaultToggle:
    """One failure toggle: what to inject, into which calls, how often and until when."""

    service: str
    method: str = ALL_METHODS
    """A method name of the service (e.g. GetContext), or `all`."""
    delay_ms: int = 0
    """Latency added before the call (0: none)."""
    abort: str = ""
    """gRPC status name the call fails with (e.g. UNAVAILABLE); empty: the call goes on after the delay."""
    percent: int = 100
    """Share of the matching calls that get the fault, 1-100 (whole percent: the gateway's runtime takes integers)."""
    where: str = "both"
    """`gateway`, `mesh` or `both` (see WHERE)."""
    expires_at: float = 0.0
    """Unix time after which the toggle no longer applies (it clears itself)."""
    set_at: float = 0.0

    @property
    def key(self) -> str:
        """Its key in the bucket."""
        return f"{self.service}.{self.method}"

    @property
    def abort_code(self) -> grpc.StatusCode | None:
        """The gRPC status of its aborts, if it aborts."""
        return grpc.StatusCode[self.abort] if self.abort else None

    def active(self, now: float | None = None) -> bool:
        """Whether it still applies."""
        return (now if now is not None else time.time()) < self.expires_at

    def applies_to(self, where: str) -> bool:
        """Whether it applies at `where` (`gateway` or `mesh`)."""
        return self.where in ("both", where)

    def to_json(self) -> bytes:
        """The bucket value."""
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> FaultToggle:
        """Parse a bucket value (unknown fields, e.g. from a newer CLI, are ignored)."""
        data = json.loads(raw)
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    def describe(self, now: float | None = None) -> str:
        """One line for a person: scope, fault, share, place and time left."""
        what = " + ".join(part for part in (f"delay {self.delay_ms} ms" if self.delay_ms else "",
                                            f"abort {self.abort}" if self.abort else "") if part)
        left = max(0.0, self.expires_at - (now if now is not None else time.time()))
        return f"{self.key:<40} {what} on {self.percent}% of calls, at {self.where}, clears in {left:.0f}s"


def make_toggle(*, service: str, method: str = ALL_METHODS, delay_ms: int = 0, abort: str = "", percent: int = 100,
                where: str = "both", duration_seconds: float = 300.0, now: float | None = None) -> FaultToggle:
    """A checked toggle; FaultError names the first bad field."""
    now = now if now is not None else time.time()
    if not _NAME.match(service):
        raise FaultError("service", f"{service!r} is not a service name (lower-case letters, digits, '-')")
    if method != ALL_METHODS and not _METHOD.match(method):
        raise FaultError("method", f"{method!r} is not an RPC name (PascalCase, e.g. GetContext) or `all`")
    if not 0 <= delay_ms <= MAX_DELAY_MS:
        raise FaultError("delay", f"{delay_ms} ms is outside 0-{MAX_DELAY_MS} ms")
    abort = abort.upper()
    if abort and (abort not in grpc.StatusCode.__members__ or abort == "OK"):
        names = ", ".join(c.name for c in grpc.StatusCode if c is not grpc.StatusCode.OK)
        raise FaultError("abort", f"{abort!r} is not a gRPC status other than OK; one of {names}")
    if not delay_ms and not abort:
        raise FaultError("delay/abort", "a toggle needs a delay, an abort or both")
    if not 1 <= percent <= 100:
        raise FaultError("percent", f"{percent} is outside 1-100")
    if where not in WHERE:
        raise FaultError("where", f"{where!r} is not one of {', '.join(WHERE)}")
    if not 0 < duration_seconds <= MAX_DURATION_SECONDS:
        raise FaultError("duration", f"{duration_seconds:g}s is outside (0, {MAX_DURATION_SECONDS:.0f}s]: "
                                     "every toggle clears itself")
    return FaultToggle(service=service, method=method, delay_ms=delay_ms, abort=abort, percent=percent, where=where,
                       expires_at=now + duration_seconds, set_at=now)


def effective(toggles: dict[str, FaultToggle], service: str, method: str, where: str,
              now: float | None = None) -> FaultToggle | None:
    """The toggle that governs calls to service/method at `where`: the method's own before the service's."""
    now = now if now is not None else time.time()
    for key in (f"{service}.{method}", f"{service}.{ALL_METHODS}"):
        toggle = toggles.get(key)
        if toggle is not None and toggle.active(now) and toggle.applies_to(where):
            return toggle
    return None


async def open_bucket(js: Any) -> KeyValue:
    """The toggles' bucket, created on first use by whoever needs it first."""
    try:
        return await js.key_value(BUCKET)
    except nats.js.errors.BucketNotFoundError:
        try:
            return await js.create_key_value(KeyValueConfig(
                bucket=BUCKET, history=1, storage=StorageType.FILE, replicas=stream_replicas(),
                description="protomesh failure toggles: one key per service or method (protomesh fault set)"))
        except nats.js.errors.BadRequestError:
            return await js.key_value(BUCKET)  # created by someone else meanwhile


async def read_all(kv: KeyValue, keys: str = ">") -> dict[str, FaultToggle]:
    """Every toggle in the bucket (expired ones included) whose key matches `keys`."""
    found: dict[str, FaultToggle] = {}
    async for key, toggle in _replay(kv, keys):
        if toggle is None:
            found.pop(key, None)
        else:
            found[key] = toggle
    return found


async def _replay(kv: KeyValue, keys: str) -> AsyncIterator[tuple[str, FaultToggle | None]]:
    watcher = await kv.watch(keys)
    try:
        while True:
            try:
                entry = await watcher.updates(timeout=2)
            except nats.errors.TimeoutError:
                return
            if entry is None:  # the replay of current values is over
                return
            yield entry.key, _parse(entry)
    finally:
        with contextlib.suppress(Exception):
            await watcher.stop()


def _parse(entry: Any) -> FaultToggle | None:
    if entry.operation in ("DEL", "PURGE") or not entry.value:
        return None
    try:
        return FaultToggle.from_json(entry.value)
    except (ValueError, TypeError) as exc:  # a damaged value must not stop every reader
        logger.warning("ignoring an unreadable fault toggle", extra={"key": entry.key, "error": str(exc)})
        return None


async def follow(kv: KeyValue, keys: str, toggles: dict[str, FaultToggle],
                 changed: asyncio.Event | None = None) -> None:
    """Keep `toggles` equal to the bucket's keys matching `keys` until cancelled (one watch, updates pushed)."""
    watcher = await kv.watch(keys)
    try:
        while True:
            try:
                entry = await watcher.updates(timeout=5)
            except nats.errors.TimeoutError:
                continue
            if entry is None:
                continue
            toggle = _parse(entry)
            if toggle is None:
                toggles.pop(entry.key, None)
            else:
                toggles[entry.key] = toggle
            if changed is not None:
                changed.set()
    finally:
        with contextlib.suppress(Exception):
            await watcher.stop()


class FaultWatch:
    """The toggles of one called service, as a replica's ServiceClient sees them, and their injection.

    `jetstream` gives the JetStream context to read the bucket with, or None while there is none yet (the
    registry's own connection when it is NATS KV; else the replica's event bus, which connects after the
    lifespan made its clients): the watch starts as soon as one is there. With no NATS at all nothing is injected.
    """

    def __init__(self, jetstream: Callable[[], Any | None], service: str) -> None:
        self._jetstream = jetstream
        self._service = service
        self.toggles: dict[str, FaultToggle] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start following the service's toggles."""
        self._task = asyncio.create_task(self._follow(), name=f"faults-{self._service}")

    async def _follow(self) -> None:
        while True:
            try:
                js = self._jetstream()
                if js is None:
                    await asyncio.sleep(2.0)
                    continue
                kv = await open_bucket(js)
                await follow(kv, f"{self._service}.*", self.toggles)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS away or no permission: no toggles is the safe reading
                logger.warning("fault toggles unreadable; retrying", extra={"service": self._service,
                                                                            "error": str(exc)})
                self.toggles.clear()
                await asyncio.sleep(2.0)

    async def inject(self, method: str, budget: float) -> None:
        """Before a call to `method`: wait the toggle's delay and raise its abort, for its share of calls.

        A delay longer than the call's `budget` ends the call with DEADLINE_EXCEEDED at its deadline, as a
        slow callee would.
        """
        if not self.toggles:
            return
        toggle = effective(self.toggles, self._service, method, "mesh")
        if toggle is None or random.uniform(0, 100) >= toggle.percent:  # noqa: S311 sampling a share of calls, not a secret
            return
        if toggle.delay_ms:
            delay = toggle.delay_ms / 1000
            await asyncio.sleep(min(delay, max(budget, 0.0)))
            if delay >= budget:
                raise InjectedFault(grpc.StatusCode.DEADLINE_EXCEEDED, f"{toggle.key}: injected delay of "
                                    f"{toggle.delay_ms} ms outlasted the call's deadline")
        code = toggle.abort_code
        if code is not None:
            raise InjectedFault(code, f"{toggle.key}: injected by `protomesh fault set`")

    async def close(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class InjectedFault(grpc.aio.AioRpcError):
    """A failure toggle's abort: a gRPC error like the callee's own, so breakers and retries treat it alike."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)

