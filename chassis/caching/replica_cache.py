"""The cache of one replica, wrapped around the servicer by the call interceptor (chassis.interceptors).

A read whose contract declares `(protomesh.options.v1.cache)` is looked up by (method, request bytes, scope,
principal if it varies by one) after the caller's access was checked; it is answered from memory while its
scope's generation (chassis.caching.generations) is the one it was computed under. Every answer carries
`etag` and `cache-control` metadata (HTTP headers through the gateway); when the caller's `if-none-match`
names the ETag, `x-protomesh-not-modified: 1` tells the gateway to answer 304 without the body.

Every other call of a service that caches and is not a read (a write) is fenced: the organizations of the
events its transaction queued (chassis.caching.writes, noted by the outbox) get new generations before the
call answers, so a read that follows the acknowledged write misses on every replica. Work outside a call
(task workers, consumers) is invalidated when the relay publishes its events (`events_published`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

from chassis import metrics
from chassis.authz import tenant
from chassis.caching import writes
from chassis.caching.generations import Generations, scope_of
from chassis.caching.local import Entry, LocalCache
from chassis.caching.rules import CacheRule, cached_methods, method_rule
from chassis.callcontext import add_response_headers
from chassis.identity import current_principal

logger = logging.getLogger(__name__)

Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]

ETAG_HEADER = "etag"
CACHE_CONTROL_HEADER = "cache-control"
IF_NONE_MATCH_HEADER = "if-none-match"
NOT_MODIFIED_HEADER = "x-protomesh-not-modified"
"""Set on an answer whose ETag the caller's If-None-Match names; the gateway turns it into a 304 with no
body (chassis.tooling.envoy_config) and removes it."""


def etag_of(data: bytes) -> str:
    """A strong ETag of a serialized answer: the same bytes on any replica give the same tag."""
    return '"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match value names `etag` (RFC 9110 13.1.2: weak comparison, `*` matches any)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _is_write(method: str) -> bool:
    service, _, name = method.strip("/").partition("/")
    try:
        descriptor = descriptor_pool.Default().FindServiceByName(service).methods_by_name[name]
    except KeyError:
        return False
    return bool(descriptor.GetOptions().idempotency_level != descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS)


class ReplicaCache:
    """Cached reads and fenced writes of one replica; inert for a service that declares no cached read."""

    def __init__(self, service: str, grpc_services: Iterable[str]) -> None:
        self.service = service
        self.rules = cached_methods(tuple(grpc_services))
        # Events of these packages change what this service answers; others in its outbox (the audit records
        # every replica writes, even for a platform admin's reads) do not, and must not empty its cache.
        self._packages = tuple({name.rpartition(".")[0] + "." for name in grpc_services})
        self.local = LocalCache()
        self.generations: Generations | None = None
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        """Whether the service's contracts declare any cached read."""
        return bool(self.rules)

    async def start(self, events: Any) -> None:
        """Open the generations over the event bus's NATS connection and hook the relay. Without NATS the
        cache stays off (every read runs): generations are what keeps replicas from giving stale answers."""
        if not self.enabled:
            return
        nc = getattr(events, "nc", None)
        if nc is None:
            logger.warning("cached reads run uncached: the replica has no NATS connection for cache generations")
            return
        generations = Generations(nc, self.service)
        await generations.open()
        self.generations = generations
        relay = getattr(events, "relay", None)
        if relay is not None:
            relay.on_published = self.events_published

    async def stop(self) -> None:
        """Let scheduled invalidations finish (they are short and bounded)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def wrap(self, method: str, behavior: Handler) -> Handler:
        """The handler with the cache (a cached read) or the fence (a write) around it."""
        if not self.enabled:
            return behavior
        rule = method_rule(method)
        if rule is not None:
            return self._serving(rule, behavior)
        if _is_write(method):
            return self._fenced(behavior)
        return behavior

    # -- reads -----------------------------------------------------------------------------------

    def _serving(self, rule: CacheRule, behavior: Handler) -> Handler:
        service, local = self.service, self.local
        counters = {result: metrics.CACHE_LOOKUPS.labels(service, rule.method, result)
                    for result in ("hit", "miss", "stale", "bypass")}
        not_modified = metrics.CACHE_NOT_MODIFIED.labels(service, rule.method)
        entries, size = metrics.CACHE_ENTRIES.labels(service), metrics.CACHE_BYTES.labels(service)

        async def cached(request: Any, context: grpc.aio.ServicerContext) -> Any:
            # A public read may come without a principal: it shares the scope of answers that belong to none.
            who = tenant() if current_principal() is not None else None
            scope = scope_of(who.organization, who.cross_org) if who is not None else scope_of(None)
            key = (rule.method, request.SerializeToString(deterministic=True), scope,
                   who.subject if who is not None and rule.varies_by_principal else "")
            generation = await self.generations.current(scope) if self.generations is not None else None
            asked = request_directives(_metadata(context, CACHE_CONTROL_HEADER))
            entry = None if "no-cache" in asked or "no-store" in asked else local.get(key)
            if entry is not None and generation is not None and entry.generation == generation:
                counters["hit"].inc()
                response, etag = entry.response, entry.etag
            else:
                if entry is not None:
                    local.discard(key)
                counters["bypass" if generation is None or asked else "stale" if entry is not None else "miss"].inc()
                response = await behavior(request, context)
                data = response.SerializeToString(deterministic=True)
                etag = etag_of(data)
                if generation is not None and "no-store" not in asked:
                    local.put(key, Entry(response, etag, generation, time.monotonic() + rule.ttl, len(data)))
                    entries.set(len(local))
                    size.set(local.bytes)
            headers = [(ETAG_HEADER, etag), (CACHE_CONTROL_HEADER, rule.cache_control)]
            if matches(_metadata(context, IF_NONE_MATCH_HEADER), etag):
                not_modified.inc()
                headers.append((NOT_MODIFIED_HEADER, "1"))
            # Initial metadata, so the gateway sends them as HTTP headers; sent by the call's outermost layer
            # right before the answer, so a retry or hedge of the read is still possible until then.
            add_response_headers(headers)
            return response

        return cached

    # -- writes ----------------------------------------------------------------------------------

    def _fenced(self, behavior: Handler) -> Handler:
        async def fenced(request: Any, context: grpc.aio.ServicerContext) -> Any:
            touched = writes.start_noting()
            succeeded = False
            try:
                response = await behavior(request, context)
                succeeded = True
                return response
            finally:
                organizations = self._own(touched)
                if not organizations and succeeded and current_principal() is not None:
                    # A write that queued no event of its own (or whose service publishes none) still changes
                    # what the caller's organization reads.
                    organizations = {tenant().organization or ""}
                if organizations:
                    await self.invalidate(organizations, "write")

        return fenced

    async def invalidate(self, organizations: Iterable[str], trigger: str) -> None:
        """New generations for these organizations' scopes; if that fails, this replica forgets all it kept
        (others will not find the generations readable either while NATS is away)."""
        if self.generations is None:
            return  # no generations, no answers kept (every read ran uncached): nothing to invalidate
        scopes = {scope_of(org) for org in organizations}
        ok = await self.generations.bump(scopes)
        metrics.CACHE_INVALIDATIONS.labels(self.service, trigger, "ok" if ok else "failed").inc()
        if not ok:
            self.local.clear()
            metrics.CACHE_ENTRIES.labels(self.service).set(0)
            metrics.CACHE_BYTES.labels(self.service).set(0)

    def _own(self, events: Iterable[tuple[str, str]]) -> set[str]:
        """The organizations of the events that belong to this service's packages."""
        return {organization for event_type, organization in events if event_type.startswith(self._packages)}

    def events_published(self, events: Iterable[tuple[str, str]]) -> None:
        """The relay's hook: events were published (whoever wrote them); invalidate the organizations of this
        service's own events soon, without holding up the relay."""
        organizations = self._own(events)
        if self.generations is None or not organizations:
            return
        task = asyncio.create_task(self.invalidate(organizations, "event"))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


def request_directives(cache_control: str | None) -> frozenset[str]:
    """The request's `no-cache` / `no-store` directives (RFC 9111 5.2.1): the caller wants the read run, not
    answered from memory; `no-cache` still refreshes the entry, `no-store` leaves the cache untouched."""
    if not cache_control:
        return frozenset()
    found = {part.strip().lower() for part in cache_control.split(",")}
    return frozenset(found & {"no-cache", "no-store"})


def _metadata(context: grpc.aio.ServicerContext, name: str) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == name and isinstance(value, str):
            return value
    return None
