"""Service registry: one interface, two backends (NATS JetStream KV embedded default; Consul via py-consul)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import nats
import nats.errors
import nats.js.errors
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from chassis import tls
from chassis.events.streams import inbox_prefix_of, liveness_options, nats_servers, stream_replicas

if TYPE_CHECKING:
    from chassis.health import HealthMonitor

logger = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 5.0


@dataclass(frozen=True)
class Instance:
    """One registered replica of a service."""

    service: str
    instance_id: str
    address: str
    port: int
    version: str = ""
    tags: tuple[str, ...] = ()
    serving: bool = True
    heartbeat_at: float = 0.0
    ttl: float = DEFAULT_TTL_SECONDS
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """host:port to dial."""
        return f"{self.address}:{self.port}"

    def alive(self, now: float | None = None) -> bool:
        """Whether the last heartbeat is younger than the TTL."""
        return (now or time.time()) - self.heartbeat_at <= self.ttl

    def to_json(self) -> bytes:
        """The registry entry."""
        return json.dumps({**asdict(self), "tags": list(self.tags)}).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Instance:
        """Parse a registry entry."""
        data = json.loads(raw)
        data["tags"] = tuple(data.get("tags", ()))
        return cls(**data)


class Registry(Protocol):
    """What every backend offers."""

    async def register(self, instance: Instance) -> None:
        """Add (or refresh) an instance."""

    async def heartbeat(self, instance: Instance) -> None:
        """Tell the registry the instance is still alive (and whether it is serving)."""

    async def deregister(self, instance: Instance) -> None:
        """Remove an instance at once."""

    async def instances(self, service: str, *, healthy_only: bool = True) -> list[Instance]:
        """Healthy (or, with healthy_only=False, all live) instances of a service, sorted by instance id."""

    def watch(self, service: str, *, healthy_only: bool = True) -> AsyncIterator[list[Instance]]:
        """The healthy instances now, then again every time they change.

        With healthy_only=False: every live instance, serving or not (the gateway wants those too,
        so its own health checks decide, and a replica whose database is down can still say why).
        """

    async def close(self) -> None:
        """Release connections."""


def _key(service: str, instance_id: str) -> str:
    return f"{service}.{instance_id}"


class NatsKvRegistry:
    """Registry in a JetStream key-value bucket: one key per instance, refreshed by heartbeats.

    An entry counts only while its last heartbeat is younger than its TTL, so a replica killed
    with SIGKILL drops out within its TTL even though nobody deletes its key; the bucket's max
    age removes such leftovers from storage. Watchers see puts and deletes at once and re-check
    ages on a timer for expiries.
    """

    BUCKET = "protomesh_registry"
    BUCKET_MAX_AGE_SECONDS = 300.0

    def __init__(self, nc: nats.NATS, *, owns_connection: bool = False) -> None:
        self._nc = nc
        self._owns = owns_connection
        self._kv: KeyValue | None = None
        self._answered_at = 0.0
        """When the bucket last answered a status request (monotonic; see _takes_requests)."""

    @classmethod
    async def connect(cls, url: str) -> NatsKvRegistry:
        """A registry with its own NATS connection."""
        nc = await nats.connect(nats_servers(url), name="protomesh-registry", max_reconnect_attempts=-1,
                                reconnect_time_wait=0.5,
                                inbox_prefix=inbox_prefix_of(url), **liveness_options())
        return cls(nc, owns_connection=True)

    def jetstream(self) -> Any:
        """The JetStream context of the registry's connection (shared breaker state uses it too)."""
        return self._nc.jetstream()

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            js = self._nc.jetstream()
            try:
                self._kv = await js.key_value(self.BUCKET)
            except nats.js.errors.BucketNotFoundError:
                try:
                    self._kv = await js.create_key_value(KeyValueConfig(
                        bucket=self.BUCKET, history=1, ttl=self.BUCKET_MAX_AGE_SECONDS, storage=StorageType.FILE,
                        replicas=stream_replicas(), description="protomesh service registry: one key per replica"))
                except nats.js.errors.BadRequestError:
                    self._kv = await js.key_value(self.BUCKET)  # another replica created it first
        return self._kv

    async def register(self, instance: Instance) -> None:
        await self.heartbeat(instance)

    async def heartbeat(self, instance: Instance) -> None:
        kv = await self._bucket()
        stamped = Instance(**{**asdict(instance), "heartbeat_at": time.time()})
        await kv.put(_key(instance.service, instance.instance_id), stamped.to_json())

    async def deregister(self, instance: Instance) -> None:
        kv = await self._bucket()
        await kv.delete(_key(instance.service, instance.instance_id))

    async def _all(self, service: str) -> dict[str, Instance]:
        kv = await self._bucket()
        found: dict[str, Instance] = {}
        watcher = await kv.watch(f"{service}.*", ignore_deletes=True)
        try:
            while True:
                entry = await watcher.updates(timeout=2)
                if entry is None:
                    break
                if entry.value:
                    found[entry.key] = Instance.from_json(entry.value)
        finally:
            await watcher.stop()
        return found

    async def instances(self, service: str, *, healthy_only: bool = True) -> list[Instance]:
        now = time.time()
        return sorted((i for i in (await self._all(service)).values()
                       if i.alive(now) and (i.serving or not healthy_only)), key=lambda i: i.instance_id)

    async def watch(self, service: str, *, healthy_only: bool = True) -> AsyncIterator[list[Instance]]:
        kv = await self._bucket()
        known: dict[str, Instance] = {}
        watcher = await kv.watch(f"{service}.*")
        reconnects = self._nc.stats["reconnects"]
        last: list[Instance] | None = None
        check_every = DEFAULT_TTL_SECONDS / 5
        replayed = False  # the watcher first replays current values, then sends None once
        try:
            while True:
                if self._nc.stats["reconnects"] != reconnects:
                    # The watcher's consumer may have gone with the old connection (a restarted cluster
                    # forgets it), and then no update ever came again: a new watcher replays every entry.
                    await watcher.stop()
                    watcher = await kv.watch(f"{service}.*")
                    reconnects = self._nc.stats["reconnects"]
                if not self._nc.is_connected:
                    # An unreachable registry says nothing about the replicas: keep the last view instead
                    # of letting every entry age out (the gateway would route to no one until it is back).
                    await asyncio.sleep(check_every)
                    continue
                try:
                    entry = await watcher.updates(timeout=check_every)
                    if entry is None:
                        replayed = True
                except nats.errors.TimeoutError:
                    entry = None
                if entry is not None:
                    if entry.operation in ("DEL", "PURGE") or not entry.value:
                        known.pop(entry.key, None)
                    else:
                        known[entry.key] = Instance.from_json(entry.value)
                if not replayed:
                    continue
                now = time.time()
                live = sorted((i for i in known.values() if i.alive(now) and (i.serving or not healthy_only)),
                              key=lambda i: i.instance_id)
                aged_out = last is not None and any(
                    not i.alive(now) for i in known.values() if i.target in {seen.target for seen in last})
                if aged_out and not await self._takes_requests(kv):
                    # Connected, but the bucket has no leader (a cluster losing or regaining its quorum):
                    # the missing heartbeats are the registry's outage, not the replicas'. Keep the view.
                    continue
                if last is None or [i.target for i in live] != [i.target for i in last]:
                    last = live
                    yield live
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()

    async def _takes_requests(self, kv: KeyValue) -> bool:
        """Whether the bucket answers now (its stream has a leader); asked at most once a second."""
        now = time.monotonic()
        if now - self._answered_at < 1.0:
            return True
        try:
            await asyncio.wait_for(kv.status(), timeout=1.0)
        except Exception:  # a timeout, no responders, no leader: all mean the registry is away
            return False
        self._answered_at = now
        return True

    async def close(self) -> None:
        if self._owns:
            await self._nc.close()


class ConsulRegistry:
    """Registry in Consul (py-consul): Consul runs a gRPC health check and deregisters critical replicas.

    Heartbeats are not needed (Consul probes the replica itself); watchers use blocking queries
    on /v1/health/service/<name>?passing.
    """

    def __init__(self, address: str, *, check_interval: str = "1s", deregister_after: str = "10s",
                 wait: str = "30s") -> None:
        import consul.aio

        host, _, port = address.removeprefix("http://").partition(":")
        self._consul = consul.aio.Consul(host=host, port=int(port or 8500))
        self._check_interval = check_interval
        self._deregister_after = deregister_after
        self._wait = wait

    async def register(self, instance: Instance) -> None:
        import consul

        health_target = f"{instance.address}:{instance.port}"
        await self._consul.agent.service.register(
            instance.service, service_id=instance.instance_id, address=instance.address, port=instance.port,
            tags=list(instance.tags), meta={"version": instance.version, **instance.meta},
            check=self._check(consul.Check.grpc(health_target, self._check_interval, deregister=self._deregister_after),
                              instance.service),
        )

    @staticmethod
    def _check(check: dict[str, Any], service: str) -> dict[str, Any]:
        # A replica serving mTLS (chassis.tls) is probed over TLS: the Consul agent presents its own
        # certificate of the mesh's CA (its `tls.defaults`, see compose.yaml) and checks the replica's name.
        if tls.current() is None:
            return check
        return {**check, "grpc_use_tls": True, "TLSServerName": tls.server_name(service)}

    async def heartbeat(self, instance: Instance) -> None:
        return None

    async def deregister(self, instance: Instance) -> None:
        await self._consul.agent.service.deregister(instance.instance_id)

    @staticmethod
    def _parse(nodes: list[dict[str, Any]]) -> list[Instance]:
        found = []
        for node in nodes:
            svc = node["Service"]
            meta = dict(svc.get("Meta") or {})
            found.append(Instance(service=svc["Service"], instance_id=svc["ID"],
                                  address=svc.get("Address") or node["Node"]["Address"], port=int(svc["Port"]),
                                  version=meta.pop("version", ""), tags=tuple(svc.get("Tags") or ()),
                                  heartbeat_at=time.time(), meta=meta))
        return sorted(found, key=lambda i: i.instance_id)

    async def instances(self, service: str, *, healthy_only: bool = True) -> list[Instance]:
        _, nodes = await self._consul.health.service(service, passing=healthy_only)
        return self._parse(nodes)

    async def watch(self, service: str, *, healthy_only: bool = True) -> AsyncIterator[list[Instance]]:
        index = None
        last: list[str] | None = None
        while True:
            try:
                index, nodes = await self._consul.health.service(service, passing=healthy_only, index=index,
                                                                 wait=self._wait)
            except Exception as exc:  # Consul unreachable: keep the last view, try again shortly
                logger.warning("consul watch failed", extra={"service": service, "error": str(exc)})
                await asyncio.sleep(1)
                continue
            live = self._parse(nodes)
            targets = [i.target for i in live]
            if targets != last:
                last = targets
                yield live

    async def close(self) -> None:
        await self._consul.close()


async def registry_from_env(consul_address: str | None, nats_url: str | None) -> Registry | None:
    """Consul when CONSUL_HTTP_ADDR is set, else NATS KV when NATS_URL is set, else no registry."""
    if consul_address:
        return ConsulRegistry(consul_address)
    if nats_url:
        return await NatsKvRegistry.connect(nats_url)
    return None


def reachable_address(address: str) -> str:
    """The address to register: this host's own IP when `address` is merely its host name.

    A replica bound to 0.0.0.0 without ADVERTISE_HOST defaults to its host name, which names nothing for other
    hosts (a container's or pod's generated name); its IP, from the host's own table, does. An address that was
    chosen (an IP, or a name set in ADVERTISE_HOST that differs from the host name) is kept as it is.
    """
    if address != socket.gethostname():
        return address
    try:
        resolved = socket.gethostbyname(address)
    except OSError:
        return address
    return address if resolved.startswith("127.") else resolved


REGISTER_RETRY_FIRST_SECONDS = 0.5
REGISTER_RETRY_MAX_SECONDS = 30.0
"""A registry unreachable at start-up is tried again after 0.5 s, doubling (with jitter) up to every 30 s."""


class Registration:
    """Keeps one replica registered while it runs: register, heartbeat with its serving state, deregister.

    A registry that cannot be reached at start-up does not stop the replica: registering is retried in the
    background with backoff, and until it succeeds the replica's health has a failing `registry` dependency
    naming the error (NOT_SERVING with a reason), so nothing routes to a replica no one can discover. Once
    registered, a registry outage no longer touches health: heartbeats fail and are logged, and the
    replica keeps serving the callers that already know it.
    """

    def __init__(self, registry: Registry, instance: Instance, serving: Callable[[], bool],
                 health: HealthMonitor | None = None, attempt_timeout: float = 5.0) -> None:
        self._registry = registry
        self._attempt_timeout = attempt_timeout
        self._instance = replace(instance, address=reachable_address(instance.address))
        self._serving = serving
        self._health = health
        self._task: asyncio.Task[None] | None = None
        self.registered = False
        self._failure = ""
        self._attempts = 0

    def _current(self) -> Instance:
        return replace(self._instance, serving=self._serving())

    async def start(self) -> None:
        """Register now (or keep trying in the background) and heartbeat every fifth of the TTL."""
        await self._try_register()
        if self._health is not None:
            self._health.add_probe("registry", self._probe)
            self._health.poke()
        self._task = asyncio.create_task(self._beat(), name="registry-heartbeat")

    async def _try_register(self) -> None:
        self._attempts += 1
        try:
            # Bounded: a registry that accepts connections but never answers must not hold the start-up.
            await asyncio.wait_for(self._registry.register(self._current()), self._attempt_timeout)
        except Exception as exc:  # unreachable, hanging or refusing: retried with backoff, shown in health
            self._failure = f"{type(exc).__name__}: {exc}".strip()[:200]
            logger.warning("registry unreachable; registering again with backoff",
                           extra={"registry": type(self._registry).__name__, "attempt": self._attempts,
                                  "error": self._failure})
            return
        self.registered = True
        logger.info("registered", extra={"registry": type(self._registry).__name__,
                                         "target": self._instance.target, "attempts": self._attempts})
        if self._health is not None:
            self._health.poke()

    async def _probe(self) -> None:
        if not self.registered:
            raise RuntimeError(f"not registered yet ({self._attempts} attempts; last: {self._failure}); "
                               "retrying with backoff")

    async def _beat(self) -> None:
        backoff = REGISTER_RETRY_FIRST_SECONDS
        while not self.registered:
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # noqa: S311 jitter, not a secret
            backoff = min(backoff * 2, REGISTER_RETRY_MAX_SECONDS)
            await self._try_register()
        while True:
            await asyncio.sleep(self._instance.ttl / 5)
            try:
                await self._registry.heartbeat(self._current())
            except Exception as exc:  # the registry being away must not take the replica down
                logger.warning("registry heartbeat failed", extra={"error": str(exc)})

    async def stop(self) -> None:
        """Deregister at once, so the gateway and clients stop choosing this replica."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self.registered:
            return
        try:
            await self._registry.deregister(self._instance)
        except Exception as exc:
            logger.warning("registry deregistration failed; the entry expires by TTL", extra={"error": str(exc)})
