"""The generation of each cache scope, shared by every replica in a NATS KV bucket.

A scope is one organization's answers of one service (or `all`, a platform admin's cross-organization
answers). A kept answer is given again only while its scope's generation is the one it was computed under;
a write changes the generation before its call answers, so the next read, on any replica, misses. One KV
read per cached read: the price of never giving an answer older than a write the client saw acknowledged
(docs/caching.md says why not a push of invalidations).
"""

from __future__ import annotations

import asyncio
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

    async def open(self) -> None:
        """Bind (or create) the bucket."""
        try:
            self._kv = await self._js.key_value(BUCKET)
        except nats.js.errors.BucketNotFoundError:
            try:
                self._kv = await self._js.create_key_value(KeyValueConfig(
                    bucket=BUCKET, history=1, ttl=BUCKET_MAX_AGE_SECONDS, storage=StorageType.FILE, direct=True,
                    description="protomesh cache: the generation of each service's cache scopes"))
            except nats.js.errors.BadRequestError:
                self._kv = await self._js.key_value(BUCKET)  # another replica created it first

    def _key(self, scope: str) -> str:
        return f"{self._service}.{scope}"

    async def current(self, scope: str) -> str | None:
        """The scope's generation; None when it cannot be read (NATS away): the caller must not use the cache."""
        if self._kv is None:
            return None
        try:
            entry = await asyncio.wait_for(self._kv.get(self._key(scope), validate_keys=False), TIMEOUT_SECONDS)
        except nats.js.errors.KeyNotFoundError:
            return INITIAL
        except (TimeoutError, nats.errors.Error) as exc:
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
