"""The generation of each cache scope, shared by every replica in a NATS KV bucket.

A scope is one organization's answers of one service (or `all`, a platform admin's cross-organization
answers). A kept answer is given again only while its scope's generation is the one it was computed under;
a write changes the generation before its call answers, so the next read, on any replica, misses.

A cached read needs the generation as of its own arrival: a KV read that *began after* it arrived (docs/caching.md
says why not a push of invalidations). Concurrent reads of one scope share such KV reads: while one is in
flight, the reads arriving meanwhile wait for the next one, which starts when it ends; so under load a replica
makes about one KV read per scope per round trip, not one per request, and still none is answered with a
generation read before it arrived.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
import uuid
from collections.abc import Iterable
from typing import Any

import nats
import nats.js.errors
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from chassis.events.streams import stream_replicas

logger = logging.getLogger(__name__)

BUCKET = "protomesh_cache"
"""The KV bucket of generations; each service writes only keys under its own name (chassis.tooling.nats_auth)."""
BUCKET_MAX_AGE_SECONDS = 7200.0
"""Keys not bumped for this long are dropped (and read as the initial generation again). Longer than twice
the longest TTL (chassis.caching.rules.MAX_TTL_SECONDS), so no answer kept under the initial generation
before a bump can still be alive when its key is dropped and the initial generation comes back."""
INITIAL = "0"
"""The generation of a scope no write has bumped yet (or not for BUCKET_MAX_AGE_SECONDS)."""
ALL_ORGANIZATIONS = "all"
"""The scope of answers that span organizations (a platform admin's reads): every write bumps it too."""
TIMEOUT_SECONDS = 1.0
"""How long a generation read or bump may take; a read that times out is answered uncached."""

_KEY_SAFE = re.compile(r"[A-Za-z0-9_=-]{1,64}")


def scope_of(organization: str | None, cross_org: bool = False) -> str:
    """The scope of answers computed for `organization` (or across organizations)."""
    if cross_org:
        return ALL_ORGANIZATIONS
    if not organization:
        return "o._"
    # KV keys allow few characters; an organization id that is not a UUID or a slug is hashed.
    safe = organization if _KEY_SAFE.fullmatch(organization) else hashlib.sha256(organization.encode()).hexdigest()[:32]
    return f"o.{safe}"


class Generations:
    """Reads and bumps the generations of one service's scopes."""

    def __init__(self, nc: nats.NATS, service: str) -> None:
        self._js = nc.jetstream()
        self._service = service
        self._kv: KeyValue | None = None
        self._in_flight: dict[str, asyncio.Future[str | None]] = {}
        """Per scope: the KV read under way (it began before some of the reads now waiting arrived)."""
        self._next: dict[str, asyncio.Future[str | None]] = {}
        """Per scope: what the reads that arrived during the one in flight wait for (the next KV read)."""

    async def open(self) -> None:
        """Bind (or create) the bucket."""
        try:
            self._kv = await self._js.key_value(BUCKET)
        except nats.js.errors.BucketNotFoundError:
            try:
                self._kv = await self._js.create_key_value(KeyValueConfig(
                    bucket=BUCKET, history=1, ttl=BUCKET_MAX_AGE_SECONDS, storage=StorageType.FILE, direct=True,
                    replicas=stream_replicas(),
                    description="protomesh cache: the generation of each service's cache scopes"))
            except nats.js.errors.BadRequestError:
                self._kv = await self._js.key_value(BUCKET)  # another replica created it first

    def _key(self, scope: str) -> str:
        return f"{self._service}.{scope}"

    async def current(self, scope: str) -> str | None:
        """The scope's generation, read after this call began; None when it cannot be read (NATS away): the
        caller must not use the cache then."""
        if self._kv is None:
            return None
        if scope not in self._in_flight:
            return await asyncio.shield(self._start(scope))
        waiting = self._next.get(scope)
        if waiting is None:
            waiting = self._next[scope] = asyncio.get_running_loop().create_future()
        # Shielded: a caller that gives up (deadline, cancel) must not cancel the read others wait for.
        return await asyncio.shield(waiting)

    def _start(self, scope: str) -> asyncio.Future[str | None]:
        read = asyncio.ensure_future(self._read(scope))
        self._in_flight[scope] = read
        read.add_done_callback(lambda _: self._finished(scope))
        return read

    def _finished(self, scope: str) -> None:
        del self._in_flight[scope]
        waiting = self._next.pop(scope, None)
        if waiting is None:
            return
        # The next read begins now, after every one of its waiters arrived.
        self._start(scope).add_done_callback(functools.partial(_hand_over, waiting))

    async def _read(self, scope: str) -> str | None:
        kv = self._kv
        if kv is None:
            return None
        try:
            entry = await asyncio.wait_for(kv.get(self._key(scope), validate_keys=False), TIMEOUT_SECONDS)
        except nats.js.errors.KeyNotFoundError:
            return INITIAL
        except Exception as exc:  # NATS away, a timeout, a closing connection: this read goes uncached
            logger.debug("cache generation unreadable", extra={"scope": scope, "error": repr(exc)})
            return None
        value: Any = entry.value
        return value.decode() if isinstance(value, bytes) else INITIAL

    async def bump(self, scopes: Iterable[str]) -> bool:
        """Give each scope (and the cross-organization one) a new generation; False if any bump failed."""
        if self._kv is None:
            return False
        kv = self._kv
        wanted = sorted({*scopes, ALL_ORGANIZATIONS})
        results = await asyncio.gather(
            *(asyncio.wait_for(kv.put(self._key(scope), uuid.uuid4().hex.encode(), validate_keys=False),
                               TIMEOUT_SECONDS) for scope in wanted),
            return_exceptions=True)
        failed = [repr(r) for r in results if isinstance(r, BaseException)]
        if failed:
            logger.warning("cache generations not bumped", extra={"scopes": wanted, "errors": failed[:3]})
        return not failed


def _hand_over(waiting: asyncio.Future[str | None], read: asyncio.Future[str | None]) -> None:
    """Give the waiters of a scope the result of the read that began after they arrived (None if it was cancelled)."""
    if not waiting.done():
        waiting.set_result(None if read.cancelled() else read.result())
