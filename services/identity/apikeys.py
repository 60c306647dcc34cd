"""API keys: their format, their keyed hash, and the check the gateway's ext_authz makes on every call.

A key is `pmk_<prefix>_<secret>`: `prefix` (12 hex characters) is public and finds the row; the whole
key is checked by HMAC-SHA256 under a pepper that lives outside the database (like the mesh's other
keys: IDENTITY_APIKEY_PEPPER, IDENTITY_APIKEY_PEPPER_FILE, or a generated file under the state dir).
A fast keyed hash suits keys (unlike passwords): they carry 256 random bits, so nothing is guessable,
and the check runs on every call through the gateway.

`ApiKeyVerifier.authenticate` is what the identity replica's ext_authz handler calls. It keeps found
keys for at most IDENTITY_APIKEY_CACHE_SECONDS (1 s by default, never more than 2 s), so a revoked
key stops working within ~2 seconds on every replica while a busy key costs one HMAC per call, not a
query. Each key has a token bucket (its own rate and burst, or the service's defaults) in each
replica; last_used_at is written at most every IDENTITY_APIKEY_LAST_USED_INTERVAL per key and replica.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from chassis.config import ConfigError
from chassis.crypto import STATE_DIR_ENV, generated_key_file
from services.identity.rows import ApiKeyRow

logger = logging.getLogger(__name__)

KEY_PREFIX = "pmk"
"""Every key starts `pmk_`, so secret scanners and people recognise a protomesh key."""
PEPPER_ENV = "IDENTITY_APIKEY_PEPPER"
PEPPER_FILE_ENV = "IDENTITY_APIKEY_PEPPER_FILE"
PEPPER_BYTES = 32
_KEY = re.compile(r"^pmk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_PREFIX_BYTES = 6
_SECRET_BYTES = 32


# --- the key and its hash ------------------------------------------------------------------------


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: the whole key (shown once), its public prefix and its keyed hash."""

    key: str
    prefix: str
    secret_hash: bytes

    def __repr__(self) -> str:  # the key must never reach a log line through a repr
        return f"NewKey(prefix={self.prefix!r})"


def parse_key(presented: str) -> str | None:
    """The prefix of a well-formed key, or None (so a malformed one costs no query)."""
    match = _KEY.match(presented.strip())
    return match.group(1) if match else None


def key_hash(pepper: bytes, key: str) -> bytes:
    """HMAC-SHA256 of the whole key under the pepper: what the database keeps."""
    return hmac.new(pepper, key.strip().encode(), hashlib.sha256).digest()


def generate_key(pepper: bytes) -> NewKey:
    """A new random key (256-bit secret) with its prefix and hash."""
    prefix = secrets.token_hex(_PREFIX_BYTES)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    return NewKey(key, prefix, key_hash(pepper, key))


def load_pepper(env: Mapping[str, str] | None = None, default_state_dir: Path | None = None) -> bytes:
    """The HMAC pepper: IDENTITY_APIKEY_PEPPER (base64 of 32 bytes), IDENTITY_APIKEY_PEPPER_FILE, or a file
    generated once (0600) under <state dir>/identity/apikey-pepper/ that every local replica shares."""
    env = os.environ if env is None else env
    if env.get(PEPPER_ENV, "").strip():
        return _decode(env[PEPPER_ENV].encode(), PEPPER_ENV)
    if env.get(PEPPER_FILE_ENV, "").strip():
        path = Path(env[PEPPER_FILE_ENV].strip())
        try:
            return _decode(path.read_bytes(), f"{PEPPER_FILE_ENV}={path}")
        except OSError as exc:
            raise ConfigError(f"{PEPPER_FILE_ENV}={path}: cannot read it ({exc.strerror})") from None
    state_dir = Path(env.get(STATE_DIR_ENV, "").strip() or default_state_dir or ".protomesh")
    path, created = generated_key_file(state_dir / "identity", "apikey-pepper")
    logger.warning("no %s set: %s the pepper file %s (mode 0600); keep it, or every API key stops working",
                   PEPPER_ENV, "generated" if created else "using", path)
    return _decode(path.read_bytes(), str(path))


def _decode(raw: bytes, where: str) -> bytes:
    try:
        pepper = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where} is not base64 (want 32 random bytes, base64-encoded)") from None
    if len(pepper) != PEPPER_BYTES:
        raise ConfigError(f"{where} decodes to {len(pepper)} bytes; want {PEPPER_BYTES}")
    return pepper


# --- rate limits -----------------------------------------------------------------------------------


class TokenBuckets:
    """One token bucket per key: `take` answers 0 when a call may go, else the seconds until it may."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[uuid.UUID, tuple[float, float]] = {}
        """key id -> (tokens, when last refilled)."""

    def take(self, key_id: uuid.UUID, rate: float, burst: int) -> float:
        """Take one token of the key's bucket (refilled at `rate` per second, holding `burst`)."""
        now = self._clock()
        tokens, last = self._buckets.get(key_id, (float(burst), now))
        tokens = min(float(burst), tokens + (now - last) * rate)
        if tokens >= 1.0:
            self._buckets[key_id] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key_id] = (tokens, now)
        return (1.0 - tokens) / rate

    def forget(self, key_id: uuid.UUID) -> None:
        """Drop a key's bucket (revoked keys)."""
        self._buckets.pop(key_id, None)


# --- the check ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyCheck:
    """What authenticate found: the principal's claims, or why not.

    - claims set, retry_after 0: the call may go on as this principal;
    - claims set, retry_after > 0: a valid key over its rate: answer 429 with Retry-After;
    - claims None: no such key, a wrong secret, revoked or expired: answer 401 (`reason` is for logs
      and never contains the key).
    """

    claims: dict[str, Any] | None
    retry_after: float = 0.0
    reason: str = ""
    refused: dict[str, Any] | None = None
    """For the audit trail: the claims of a key refused although its secret matched (revoked or expired),
    so the refusal names the key (its id, never the key); None for an unknown key or a wrong secret."""

    @property
    def allowed(self) -> bool:
        return self.claims is not None and self.retry_after == 0.0


def claims_of(row: ApiKeyRow) -> dict[str, Any]:
    """The principal claims of a key, with the claim names of an access token (docs/identity.md)."""
    return {"sub": f"apikey:{row.id}", "kind": "api_key", "org": str(row.organization_id),
            "scope": " ".join(row.scopes), "key_id": str(row.id)}


class ApiKeyVerifier:
    """Checks presented keys against the database through a short cache; one per replica."""

    def __init__(self, pool: AsyncConnectionPool, pepper: bytes, *, cache_seconds: float = 1.0,
                 default_rate: float = 20.0, default_burst: int = 40, last_used_interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._pool = pool
        self._pepper = pepper
        self._cache_seconds = min(cache_seconds, 2.0)
        self._default_rate = default_rate
        self._default_burst = default_burst
        self._last_used_interval = last_used_interval
        self._clock = clock
        self._cache: dict[str, tuple[float, ApiKeyRow | None]] = {}
        """prefix -> (until when it may be used, the row or None for no such key)."""
        self._last_used_written: dict[uuid.UUID, float] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self.buckets = TokenBuckets(clock)

    async def authenticate(self, presented: str) -> KeyCheck:
        """The ext_authz check of one call: verify the key, then take a token of its rate limit."""
        row, reason, refused = await self._verified(presented)
        if row is None:
            return KeyCheck(None, reason=reason, refused=claims_of(refused) if refused else None)
        rate = row.rate_limit_per_second or self._default_rate
        burst = row.rate_limit_burst or self._default_burst
        wait = self.buckets.take(row.id, rate, max(burst, 1))
        if wait == 0.0:
            self._touch(row.id)
        return KeyCheck(claims_of(row), retry_after=wait, reason="over its rate limit" if wait else "")

    async def verify(self, presented: str) -> dict[str, Any] | None:
        """The principal claims of a valid, accepted key, else None; no rate limit is applied."""
        row, _, _ = await self._verified(presented)
        return claims_of(row) if row else None

    def forget(self, prefix: str) -> None:
        """Drop a key from this replica's cache (after a revocation here: it stops at once on this replica)."""
        self._cache.pop(prefix, None)

    async def _verified(self, presented: str) -> tuple[ApiKeyRow | None, str, ApiKeyRow | None]:
        """(the accepted key's row, or None; why not; the row of a key refused although its secret matched)."""
        prefix = parse_key(presented)
        if prefix is None:
            return None, "not an API key (pmk_<prefix>_<secret>)", None
        row = await self._row(prefix)
        # Compared in constant time whatever was found, so timing tells nothing about the prefix.
        expected = row.secret_hash if row else b"\0" * 32
        if not hmac.compare_digest(expected, key_hash(self._pepper, presented)) or row is None:
            return None, "unknown API key", None
        if row.revoked_at is not None:
            return None, f"API key {row.prefix} is revoked", row
        if not row.accepted_at(datetime.now(UTC)):
            return None, f"API key {row.prefix} has expired", row
        return row, "", None

    async def _row(self, prefix: str) -> ApiKeyRow | None:
        now = self._clock()
        cached = self._cache.get(prefix)
        if cached and cached[0] > now:
            return cached[1]
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT * FROM api_keys WHERE prefix = %s", (prefix,))
            found = await cur.fetchone()
        row = ApiKeyRow(**found) if found else None
        if len(self._cache) > 10_000:  # garbage prefixes must not grow the cache without bound
            self._cache = {p: e for p, e in self._cache.items() if e[0] > now}
        self._cache[prefix] = (now + self._cache_seconds, row)
        return row

    def _touch(self, key_id: uuid.UUID) -> None:
        """Record the use, at most once per interval per key in this replica, without delaying the call."""
        now = self._clock()
        if now - self._last_used_written.get(key_id, -1e18) < self._last_used_interval:
            return
        self._last_used_written[key_id] = now
        task = asyncio.get_running_loop().create_task(self._write_last_used(key_id))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write_last_used(self, key_id: uuid.UUID) -> None:
        try:
            async with self._pool.connection() as conn:
                await conn.execute("UPDATE api_keys SET last_used_at = now() WHERE id = %s", (key_id,))
        except Exception as exc:  # a lost timestamp is not worth failing or retrying a call for
            logger.warning("could not record an API key's last use: %s", exc, extra={"api_key_id": str(key_id)})

    async def close(self) -> None:
        """Wait for pending last-used writes (at shutdown)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
