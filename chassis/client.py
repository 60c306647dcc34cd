"""Discovery-aware clients: a typed stub for another service by name, balanced over its healthy replicas."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Generic, TypeVar, cast

import grpc

from chassis import tls
from chassis.callcontext import outbound_metadata
from chassis.contracts import mesh_grpc_services
from chassis.errors import Unavailable
from chassis.faults import FaultWatch
from chassis.registry import Instance, Registry
from chassis.resilience import ResilientCaller
from chassis.resilience.policy import keyed
from chassis.telemetry import client_interceptors

logger = logging.getLogger(__name__)

StubT = TypeVar("StubT")

# After a replica fails to connect, skip it this long unless it is the only one left.
EJECT_SECONDS = 2.0

# gRPC's own reconnect backoff grows to 120 s by default, and while a channel waits it fails every call at
# once with its last error: a replica that restarts would stay unreachable long after it is back. The
# caller's breaker, retries and ejection already pace calls to a failing replica, so the channel
# reconnects within seconds.
CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


class _Endpoint:
    def __init__(self, instance: Instance, stub_factory: Callable[[grpc.aio.Channel], Any]) -> None:
        self.instance = instance
        mesh_tls = tls.current()
        # Over mTLS (this replica's certificate; the callee's must name its service) unless configured plaintext.
        self.generation = mesh_tls.generation if mesh_tls else 0
        self.channel = (mesh_tls.secure_channel(instance.target, instance.service, options=CHANNEL_OPTIONS,
                                                interceptors=client_interceptors())
                        if mesh_tls else grpc.aio.insecure_channel(instance.target, options=CHANNEL_OPTIONS,
                                                                   interceptors=client_interceptors()))
        self.stub = stub_factory(self.channel)
        self.ejected_until = 0.0


class ServiceClient(Generic[StubT]):
    """Calls a service found in the registry, round robin over its healthy replicas.

    It keeps one channel per replica and follows the registry's watch as replicas come and go.
    Every call goes through the resilience policies declared in the contracts (deadline shortened
    to the caller's remaining budget, bulkhead, breaker, retries of idempotent methods on the next
    replica, fallback) and carries the caller's trace headers.
    """

    def __init__(self, registry: Registry, service: str, stub_factory: Callable[[grpc.aio.Channel], StubT], *,
                 caller: ResilientCaller | None = None, grpc_service: str | None = None,
                 fallbacks: dict[str, Callable[[BaseException], Awaitable[Any]]] | None = None,
                 jetstream: Callable[[], Any | None] | None = None) -> None:
        self.service = service
        self.grpc_service = grpc_service or _grpc_service_of(service)
        self._registry = registry
        self._stub_factory = stub_factory
        self.caller = caller or ResilientCaller()
        self._fallbacks = fallbacks or {}
        self._endpoints: dict[str, _Endpoint] = {}
        self._order = itertools.count()
        self._watch_task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.faults = FaultWatch(jetstream or _registry_jetstream(registry), service)
        """Failure toggles for this service (`protomesh fault set`), injected inside the breaker and retries."""

    async def start(self, wait: float = 0.0) -> None:
        """Start following the registry; optionally wait up to `wait` seconds for a first replica."""
        self._watch_task = asyncio.create_task(self._follow(), name=f"discovery-{self.service}")
        self.faults.start()
        if wait:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ready.wait(), wait)

    async def _follow(self) -> None:
        while True:
            try:
                async for instances in self._registry.watch(self.service):
                    self._update(instances)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the registry went away; keep the last view and watch again
                logger.warning("registry watch failed; retrying", extra={"service": self.service, "error": str(exc)})
                await asyncio.sleep(1.0)

    def _update(self, instances: list[Instance]) -> None:
        wanted = {i.target: i for i in instances}
        for target in list(self._endpoints):
            if target not in wanted:
                endpoint = self._endpoints.pop(target)
                asyncio.get_running_loop().create_task(endpoint.channel.close(grace=5))
        for target, instance in wanted.items():
            if target not in self._endpoints:
                self._endpoints[target] = _Endpoint(instance, self._stub_factory)
        if self._endpoints:
            self._ready.set()
        logger.info("instances changed", extra={"service": self.service, "targets": sorted(self._endpoints)})

    @property
    def targets(self) -> list[str]:
        """host:port of every replica currently known."""
        return sorted(self._endpoints)

    def _renew_channels(self) -> None:
        """After a certificate rotation, new channels present the new certificate (old ones close gracefully)."""
        mesh_tls = tls.current()
        if mesh_tls is None:
            return
        mesh_tls.refresh()
        for target, endpoint in list(self._endpoints.items()):
            if endpoint.generation != mesh_tls.generation:
                renewed = _Endpoint(endpoint.instance, self._stub_factory)
                renewed.ejected_until = endpoint.ejected_until
                self._endpoints[target] = renewed
                asyncio.get_running_loop().create_task(endpoint.channel.close(grace=5))

    def _pick(self) -> _Endpoint:
        self._renew_channels()
        endpoints = list(self._endpoints.values())
        if not endpoints:
            raise Unavailable(f"no healthy {self.service} replica is registered")
        now = time.monotonic()
        usable = [e for e in endpoints if e.ejected_until <= now] or endpoints
        return usable[next(self._order) % len(usable)]

    async def _invoke(self, method: str, request: Any, timeout: float | None, metadata: Any) -> Any:
        # A write carrying an idempotency key is applied once by the service, so it may be retried too.
        policy = keyed(self.caller.policies.method(self.grpc_service, method), request, metadata)
        if timeout is not None:
            policy = replace(policy, timeout=timeout)
        headers = (*outbound_metadata(), *(metadata or ()))

        async def attempt(budget: float) -> Any:
            endpoint = self._pick()  # each retry goes to the next replica
            try:
                await self.faults.inject(method, budget)
                return await getattr(endpoint.stub, method)(request, timeout=budget, metadata=headers or None)
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.UNAVAILABLE:
                    endpoint.ejected_until = time.monotonic() + EJECT_SECONDS
                raise

        return await self.caller.call(self.grpc_service, attempt, method=policy, fallback=self._fallbacks.get(method))

    @property
    def stub(self) -> StubT:
        """A stub whose every call goes to the next healthy replica."""
        return cast(StubT, _BalancedStub(self))

    async def close(self) -> None:
        """Stop following the registry and close every channel."""
        if self._watch_task:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        await self.faults.close()
        for endpoint in self._endpoints.values():
            await endpoint.channel.close()
        self._endpoints.clear()


def _registry_jetstream(registry: Registry) -> Callable[[], Any | None]:
    """The registry's JetStream context when it is NATS KV (where the failure toggles live beside it)."""
    jetstream = getattr(registry, "jetstream", None)
    return jetstream if callable(jetstream) else (lambda: None)


def _grpc_service_of(service: str) -> str:
    matches = [name for name in mesh_grpc_services() if name.startswith(f"protomesh.{service}.")]
    if not matches:
        raise ValueError(f"no gRPC service in the contracts for mesh service {service!r}")
    return matches[0]


class _BalancedStub:
    def __init__(self, client: ServiceClient[Any]) -> None:
        self._client = client

    def __getattr__(self, method: str) -> Callable[..., Any]:
        async def call(request: Any, *, timeout: float | None = None, metadata: Any = None) -> Any:
            return await self._client._invoke(method, request, timeout, metadata)

        call.__name__ = method
        return call
