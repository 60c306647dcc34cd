"""Safe retries of writes (AIP-155): a write carrying a key is applied once; a repeat gets the first answer.

A servicer method that creates or changes something is decorated with `@idempotent(ResponseType)`.
The key is the request's `request_id`, or else the `idempotency-key` metadata (Envoy forwards the
REST `Idempotency-Key` header as that metadata). Keys are scoped per method. The write's store
calls `await claim(conn)` as the first statement of the write's own transaction: the key then
commits or rolls back together with the write, so no crash can leave one without the other.

- A repeat of a committed key with the same request is answered with the recorded response,
  without running the servicer again.
- The same key with a different request is ABORTED (HTTP 409): AIP-155 leaves the code open;
  ABORTED is the "conflict, do not blindly retry" code and, unlike ALREADY_EXISTS, does not
  suggest that the resource itself is a duplicate.
- Two attempts racing with one key meet on the key's primary key inside their transactions: the
  second waits for the first to commit (at most LOCK_WAIT; a first attempt on a frozen replica
  holds its lock, so the second answers UNAVAILABLE, which callers retry), then rolls back and
  answers with the first's response.

The response is recorded right after the servicer returns, outside the write's transaction (it is
usually built after the commit). If a replica dies in that gap a repeat finds the key without an
answer: it waits up to ANSWER_WAIT for one, then says ABORTED that the write was applied but its
answer was lost. Keys expire after WINDOW; lookups ignore older keys and a sweep deletes them.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, TypeVar

import grpc
import psycopg
from google.protobuf.message import Message
from psycopg_pool import AsyncConnectionPool

from chassis.callcontext import current_call
from chassis.errors import Aborted, FieldViolation, InvalidArgument, Unavailable

logger = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
"""How long a key is remembered: a repeat after this is a new request (AIP-155 suggests at least hours)."""
METADATA_KEY = "idempotency-key"
"""The gRPC metadata carrying the key when the request has no request_id (REST: the Idempotency-Key header)."""
MAX_KEY_LENGTH = 64
LOCK_WAIT = "3s"
"""How long a claim waits on a concurrent attempt with the same key before answering UNAVAILABLE."""
ANSWER_WAIT = 5.0
"""How long a repeat waits for the first attempt's answer to be recorded."""
ANSWER_LOST_AFTER = 120.0
"""A claim this old without an answer is given up on: its replica died between commit and recording it."""
SWEEP_EVERY = 600.0
"""Seconds between expiry sweeps in one replica (a sweep runs on the next keyed write after that)."""

_WINDOW_SQL = f"interval '{int(WINDOW.total_seconds())} seconds'"


class _HasPool(Protocol):
    @property
    def pool(self) -> AsyncConnectionPool | None: ...


class _Servicer(Protocol):
    """A servicer as the chassis builds it: it keeps its replica (whose pool holds the keys)."""

    @property
    def _replica(self) -> _HasPool: ...


S = TypeVar("S", bound=_Servicer)
Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)
Method = Callable[[S, Req, grpc.aio.ServicerContext], Awaitable[Resp]]


@dataclass
class _Attempt:
    method: str
    key: str
    request_hash: bytes
    claimed: bool = False


class _Repeat(Exception):
    """Raised by claim() when the key is already taken: the write's transaction rolls back."""


_current: ContextVar[_Attempt | None] = ContextVar("protomesh_idempotency", default=None)
_next_sweep = 0.0


def request_key(request: Message, context: grpc.aio.ServicerContext) -> str:
    """The call's idempotency key: request_id, else the idempotency-key metadata, else ""."""
    key = getattr(request, "request_id", "")
    if key:
        return str(key)
    for name, value in context.invocation_metadata() or ():
        if name == METADATA_KEY and isinstance(value, str):
            # The contract's rule covers request_id; the header gets the same limits here.
            if not value or len(value) > MAX_KEY_LENGTH or not value.isascii() or not value.isprintable():
                raise InvalidArgument([FieldViolation(
                    "Idempotency-Key", f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters (a UUID)")])
            return value
    return ""


def request_hash(request: Message) -> bytes:
    """What identifies "the same request": every field but the key itself, serialized deterministically."""
    clone = type(request)()
    clone.CopyFrom(request)
    if "request_id" in clone.DESCRIPTOR.fields_by_name:
        clone.ClearField("request_id")
    return hashlib.sha256(clone.SerializeToString(deterministic=True)).digest()


async def claim(conn: psycopg.AsyncConnection[Any]) -> None:
    """Claim the current call's key inside the write's transaction (call it first); no-op without a key.

    An expired key is taken over. A key already taken raises an internal exception that rolls the
    transaction back; @idempotent answers such a repeat with the first response.
    """
    attempt = _current.get()
    if attempt is None or attempt.claimed:
        return
    await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
    try:
        cur = await conn.execute(
            "INSERT INTO idempotency_keys (method, key, request_hash) VALUES (%s, %s, %s)"  # noqa: S608 _WINDOW_SQL is made from a constant int; the values are %s parameters
            " ON CONFLICT (method, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, response = NULL,"
            f" created_at = now() WHERE idempotency_keys.created_at < now() - {_WINDOW_SQL} RETURNING 1",
            (attempt.method, attempt.key, attempt.request_hash),
        )
    except psycopg.errors.LockNotAvailable:
        raise Unavailable("an earlier request with this idempotency key is still in progress; retry shortly") from None
    if await cur.fetchone() is None:
        raise _Repeat
    await conn.execute("SET LOCAL lock_timeout TO DEFAULT")
    attempt.claimed = True


async def _lookup(pool: AsyncConnectionPool, attempt: _Attempt) -> tuple[bytes, bytes | None, float] | None:
    """(request hash, recorded answer or None, seconds since the key was claimed) of a live key."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT request_hash, response, extract(epoch FROM now() - created_at)::float8"  # noqa: S608 _WINDOW_SQL is made from a constant int; the values are %s parameters
            " FROM idempotency_keys WHERE method = %s AND key = %s"
            f" AND created_at >= now() - {_WINDOW_SQL}",
            (attempt.method, attempt.key),
        )
        row = await cur.fetchone()
    return (bytes(row[0]), None if row[1] is None else bytes(row[1]), float(row[2])) if row else None


async def _prior(pool: AsyncConnectionPool, attempt: _Attempt, response_type: type[Resp],
                 *, must_exist: bool) -> Resp | None:
    """The recorded answer to this key, None if the key is new; waits a while for one still being made."""
    budget = ANSWER_WAIT
    call = current_call.get()
    if call is not None and call.deadline is not None:
        budget = min(budget, call.deadline - time.monotonic() - 0.2)
    until = time.monotonic() + budget
    delay = 0.05
    while True:
        found = await _lookup(pool, attempt)
        if found is None:
            if must_exist:  # the first attempt's key expired or vanished between its commit and now
                raise Unavailable("the request with this idempotency key could not be resolved; retry")
            return None
        digest, response, age = found
        if digest != attempt.request_hash:
            raise Aborted(f"idempotency key {attempt.key!r} was already used with a different request;"
                          " use a new key for a new request", metadata={"reason": "IDEMPOTENCY_KEY_REUSED"})
        if response is not None:
            return response_type.FromString(response)
        if time.monotonic() + delay > until:
            if age < ANSWER_LOST_AFTER:
                # Applied, and its replica has not recorded the answer yet (paused, or slow): a retry with
                # the same key gets that first answer once it is recorded, so say "retry", not "conflict".
                raise Unavailable("the first request with this idempotency key was applied and its answer is"
                                  " not recorded yet; retry with the same key shortly")
            raise Aborted("a request with this idempotency key was applied, but its answer was not recorded"
                          " (the replica stopped); read the resource to see the result",
                          metadata={"reason": "IDEMPOTENT_ANSWER_LOST"})
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


async def _remember(pool: AsyncConnectionPool, attempt: _Attempt, response: Message) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE idempotency_keys SET response = %s WHERE method = %s AND key = %s AND response IS NULL",
            (response.SerializeToString(), attempt.method, attempt.key),
        )


async def expire(pool: AsyncConnectionPool) -> int:
    """Delete keys older than WINDOW; returns how many."""
    async with pool.connection() as conn:
        cur = await conn.execute(f"DELETE FROM idempotency_keys WHERE created_at < now() - {_WINDOW_SQL}")  # noqa: S608 _WINDOW_SQL is made from a constant int
        return cur.rowcount


def _maybe_sweep(pool: AsyncConnectionPool) -> None:
    # Piggybacks on keyed writes instead of a loop every service would have to declare: a table with
    # no keyed writes does not grow, and lookups ignore expired keys whenever the sweep runs.
    global _next_sweep
    now = time.monotonic()
    if now < _next_sweep:
        return
    _next_sweep = now + SWEEP_EVERY

    async def sweep() -> None:
        try:
            deleted = await expire(pool)
            logger.info("expired idempotency keys", extra={"deleted": deleted})
        except Exception as exc:
            logger.warning("idempotency key sweep failed", extra={"error": str(exc)})

    asyncio.get_running_loop().create_task(sweep(), name="idempotency-sweep")


async def _first(fn: Method[S, Req, Resp], servicer: S, request: Req, context: grpc.aio.ServicerContext,
                 pool: AsyncConnectionPool, attempt: _Attempt, own_transaction: bool) -> Resp:
    """Run the write as the key's first attempt; its store claims the key (or, own_transaction, this does)."""
    if own_transaction:
        async with pool.connection() as conn, conn.transaction():
            await claim(conn)
    try:
        return await fn(servicer, request, context)
    except Exception:
        if own_transaction and attempt.claimed:
            # Nothing of ours was written: release the key so a retry may try the call again.
            async with pool.connection() as conn:
                await conn.execute("DELETE FROM idempotency_keys WHERE method = %s AND key = %s AND response IS NULL",
                                   (attempt.method, attempt.key))
        raise


def idempotent(response_type: type[Resp], *, own_transaction: bool = False) -> Callable[[Method[S, Req, Resp]],
                                                                                       Method[S, Req, Resp]]:
    """Make a servicer method answer repeats of a key with its first response.

    The method's store must call `claim(conn)` in the write's transaction. `own_transaction=True` is
    for writes that have no transaction of ours (a call to an external system): the key is claimed
    on its own before the call and released if the call fails, so only a successful call is final.
    """

    def wrap(fn: Method[S, Req, Resp]) -> Method[S, Req, Resp]:
        @functools.wraps(fn)
        async def call(self: S, request: Req, context: grpc.aio.ServicerContext) -> Resp:
            key = request_key(request, context)
            pool = self._replica.pool
            if not key or pool is None:
                return await fn(self, request, context)
            _maybe_sweep(pool)
            attempt = _Attempt(request.DESCRIPTOR.full_name, key, request_hash(request))
            prior = await _prior(pool, attempt, response_type, must_exist=False)
            if prior is not None:
                return prior
            async def apply() -> Resp:
                token = _current.set(attempt)
                try:
                    response = await _first(fn, self, request, context, pool, attempt, own_transaction)
                except _Repeat:  # another attempt with this key committed first: answer as it did
                    answer = await _prior(pool, attempt, response_type, must_exist=True)
                    assert answer is not None  # noqa: S101 narrows a type for mypy, not a check of input: under -O only the error raised would differ
                    return answer
                finally:
                    _current.reset(token)
                if attempt.claimed:
                    await _remember(pool, attempt, response)
                else:
                    logger.warning("a keyed write did not claim its key; its store lacks idempotency.claim",
                                   extra={"method": attempt.method})
                return response

            # Shielded: a caller that goes away (a crashed client, a cancelled call) must not stop a write
            # between its commit and the recording of its answer, or every repeat of the key would be told
            # the answer was lost (found by the workflow service's SIGKILL test, issue 14).
            return await asyncio.shield(asyncio.ensure_future(apply()))

        return call

    return wrap
