"""A steady, bounded load on the mesh: context writes and reads over REST and gRPC, through the gateway.

Every write carries a request id (AIP-155), so a client may send it again after a failure without
doubling it: `retry_failed` does exactly that once, after the fault, and counts what a retry saved.
Each write makes a ContextCreated event (the transactional outbox) that the notification service's
consumer handles, which is what the event checks follow.
"""

from __future__ import annotations

import contextlib
import functools
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc

from chassis.tooling.mesh_testing import RestClient, mesh_channel
from chassis.tooling.supervisor import Mesh
from protomesh.context.v1 import context_service_pb2 as pb
from protomesh.context.v1 import context_service_pb2_grpc as pb_grpc

CALL_TIMEOUT_SECONDS = 5.0
"""A client's deadline per call: a hung replica must be routed around well within it."""
PAUSE_SECONDS = 0.2
"""Between a worker's write-and-read pairs: two workers send at most about twenty calls a second, half writes."""


class CallFailed(Exception):
    """A REST call answered with an error status."""


@dataclass(frozen=True)
class Timing:
    """How long a case runs its load before, during (the fault's hold) and after the fault."""

    before: float
    hold: float
    after: float


@dataclass
class Call:
    """One request the load sent and how it ended."""

    kind: str
    """rest-write, rest-read, grpc-write or grpc-read."""
    key: str
    """A write's request id (and context name); a read's context id."""
    at: float
    ok: bool
    error: str = ""


@dataclass
class Load:
    """Two workers (REST, gRPC) alternating a write and a read of an acknowledged write, until `stop`."""

    mesh: Mesh
    tag: str
    """Prefix of every context name this load writes (the checks find its writes by it)."""
    acked: dict[str, str] = field(default_factory=dict)
    """request id -> context id of every acknowledged write."""
    calls: list[Call] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)
    started_at: float = 0.0
    stopped_at: float = 0.0

    def start(self) -> None:
        """Start both workers."""
        self.started_at = time.monotonic()
        for worker in (self._rest_worker, self._grpc_worker):
            thread = threading.Thread(target=worker, name=f"load-{worker.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop both workers; each finishes its current call (bounded by CALL_TIMEOUT_SECONDS)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CALL_TIMEOUT_SECONDS * 3)
        self.stopped_at = time.monotonic()

    @contextlib.contextmanager
    def running(self) -> Iterator[Load]:
        """The load runs inside the block and is stopped when it ends, however it ends."""
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def wait(self, seconds: float) -> None:
        """Let the load run for `seconds` (the fault's duration: nothing to poll for)."""
        self._stop.wait(seconds)

    # --- figures ------------------------------------------------------------------------------------

    @property
    def failed(self) -> list[Call]:
        """Calls that did not succeed."""
        with self._lock:
            return [call for call in self.calls if not call.ok]

    def count(self, suffix: str) -> int:
        """Calls of a kind ending in suffix ("write", "read")."""
        with self._lock:
            return sum(1 for call in self.calls if call.kind.endswith(suffix))

    def error_span(self, since: float) -> float:
        """Seconds from `since` to the end of the last failed call after it (0 when none failed)."""
        late = [call.at for call in self.failed if call.at >= since]
        return max(late) - since if late else 0.0

    def summary(self) -> str:
        """e.g. "41 writes, 40 reads in 9.8 s"."""
        return (f"{self.count('write')} writes + {self.count('read')} reads in "
                f"{self.stopped_at - self.started_at:.1f}s")

    # --- workers ------------------------------------------------------------------------------------

    def _record(self, kind: str, key: str, action: Callable[[], str | None]) -> None:
        started = time.monotonic()
        try:
            context_id = action()
            call = Call(kind, key, started, ok=True)
        except (grpc.RpcError, OSError, CallFailed) as error:
            context_id = None
            call = Call(kind, key, started, ok=False, error=_describe(error))
        with self._lock:
            self.calls.append(call)
            if context_id and kind.endswith("write"):
                self.acked[key] = context_id

    def _known_id(self) -> str | None:
        with self._lock:
            return random.choice(list(self.acked.values())) if self.acked else None

    def _rest_worker(self) -> None:
        rest = RestClient.for_mesh(self.mesh, timeout=CALL_TIMEOUT_SECONDS)
        while not self._stop.is_set():
            key = self.new_key()
            self._record("rest-write", key, functools.partial(rest_write, rest, key))
            known = self._known_id()
            if known:
                self._record("rest-read", known, functools.partial(rest_read, rest, known))
            self._stop.wait(PAUSE_SECONDS)

    def _grpc_worker(self) -> None:
        with mesh_channel(self.mesh) as channel:
            stub = pb_grpc.ContextServiceStub(channel)
            while not self._stop.is_set():
                key = self.new_key()
                self._record("grpc-write", key, functools.partial(grpc_write, stub, key))
                known = self._known_id()
                if known:
                    self._record("grpc-read", known, functools.partial(grpc_read, stub, known))
                self._stop.wait(PAUSE_SECONDS)

    def new_key(self) -> str:
        """A fresh request id, also the context's name (so a doubled write shows as two rows of one name)."""
        return f"{self.tag}-{uuid.uuid4()}"

    # --- after the fault ------------------------------------------------------------------------------

    def retry_failed(self, threads: int = 8) -> tuple[int, int]:
        """Send every failed call once more (a write with its request id), `threads` at a time;
        (failed, saved by the retry)."""
        failed = self.failed
        rest = RestClient.for_mesh(self.mesh, timeout=CALL_TIMEOUT_SECONDS)
        with mesh_channel(self.mesh) as channel:
            stub = pb_grpc.ContextServiceStub(channel)

            def retry(call: Call) -> bool:
                again: dict[str, Callable[[], str | None]] = {
                    "rest-write": lambda: rest_write(rest, call.key),
                    "grpc-write": lambda: grpc_write(stub, call.key),
                    "rest-read": lambda: rest_read(rest, call.key),
                    "grpc-read": lambda: grpc_read(stub, call.key),
                }
                try:
                    context_id = again[call.kind]()
                except (grpc.RpcError, OSError, CallFailed):
                    return False
                if context_id and call.kind.endswith("write"):
                    with self._lock:
                        self.acked[call.key] = context_id
                return True

            with ThreadPoolExecutor(threads) as pool:
                saved = sum(pool.map(retry, failed))
        return len(failed), saved


def request_id(key: str) -> str:
    """The request id of a write's key (its UUID part; the key is also the context's name)."""
    return key[-36:]


def rest_write(rest: RestClient, key: str) -> str:
    """Create context `key` over REST (request id `key`); its id."""
    reply = rest.post("/v1/contexts", {"name": key, "type": "session", "request_id": request_id(key)})
    if reply.status != 200:
        raise CallFailed(f"REST write: HTTP {reply.status} {str(reply.body)[:120]}")
    return str(reply.body["context"]["context_id"])


def rest_read(rest: RestClient, context_id: str) -> None:
    """Read a context over REST."""
    reply = rest.get(f"/v1/contexts/{context_id}")
    if reply.status != 200:
        raise CallFailed(f"REST read: HTTP {reply.status} {str(reply.body)[:120]}")


def grpc_write(stub: pb_grpc.ContextServiceStub, key: str) -> str:
    """Create context `key` over gRPC (request id `key`); its id."""
    reply = stub.CreateContext(pb.CreateContextRequest(name=key, type="session", request_id=request_id(key)),
                               timeout=CALL_TIMEOUT_SECONDS)
    return str(reply.context.context_id)


def grpc_read(stub: pb_grpc.ContextServiceStub, context_id: str) -> None:
    """Read a context over gRPC."""
    stub.GetContext(pb.GetContextRequest(context_id=context_id), timeout=CALL_TIMEOUT_SECONDS)


def _describe(error: BaseException) -> str:
    if isinstance(error, grpc.RpcError) and isinstance(error, grpc.Call):
        return f"{error.code().name}: {error.details()}"
    return f"{type(error).__name__}: {error}"
