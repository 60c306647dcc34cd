"""The context service's PostgreSQL access: every query it makes, in one place.

Every write to a context or its layers first locks the context's row (SELECT ... FOR UPDATE),
checks access, state and version under that lock, and updates the context's counters in the
same transaction. So layer_count, size_bytes and access_count stay exact under concurrent
writers, appended positions never collide, and a stale expected_version is always noticed.
Reads count themselves with one UPDATE of the same row, rolled back if access is denied.
Every write also puts its domain event (services.context.events) in the outbox in the same
transaction, so the relay publishes it after commit, and a write that rolls back publishes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from google.protobuf.message import Message
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from chassis.db import contains_pattern
from chassis.errors import AlreadyExists, FailedPrecondition
from chassis.events import outbox
from chassis.resources import Page, PageRequest, check_version, found
from chassis.resources.keyset import fetch_page
from services.context import events, guards
from services.context.guards import Access

# A context whose expiry has passed is expired even before the cleanup job has marked it.
_STATUS = "CASE WHEN status <> 'expired' AND expires_at <= now() THEN 'expired' ELSE status END"
_CONTEXT_COLUMNS = f"""
    id, name, type, {_STATUS} AS status, owner, shared_with, metadata, tags, layer_count, size_bytes,
    access_count, version, expires_at, created_at, updated_at, last_accessed_at
"""
_USAGE_UPSERT = """
    INSERT INTO context_usage (context_id, context_type, hour, reads, writes)
    VALUES (%s, %s, date_trunc('hour', now(), 'UTC'), %s, %s)
    ON CONFLICT (context_id, hour) DO UPDATE
    SET reads = context_usage.reads + EXCLUDED.reads, writes = context_usage.writes + EXCLUDED.writes
"""
_LAST_24H = "date_trunc('hour', now(), 'UTC') - interval '23 hours'"


@dataclass(frozen=True)
class ContextRow:
    """A context as stored (status already EXPIRED when its expiry has passed)."""

    id: uuid.UUID
    name: str
    type: str
    status: str
    owner: str
    shared_with: list[str]
    metadata: dict[str, Any]
    tags: list[str]
    layer_count: int
    size_bytes: int
    access_count: int
    version: int
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    last_accessed_at: datetime | None


@dataclass(frozen=True)
class LayerRow:
    """A layer as stored."""

    id: uuid.UUID
    context_id: uuid.UUID
    name: str
    layer_type: str
    position: int
    data: dict[str, Any]
    size_bytes: int
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ContextFilter:
    """Filters of ListContexts."""

    type: str = ""
    status: str = ""
    tags: tuple[str, ...] = ()
    owner: str = ""
    name_contains: str = ""
    caller: str = ""

    def where(self) -> tuple[str, list[Any]]:
        """SQL conditions (joined by AND) and their parameters."""
        clauses, params = ["TRUE"], []
        if self.type:
            clauses.append("type = %s")
            params.append(self.type)
        if self.status:
            clauses.append(f"{_STATUS} = %s")
            params.append(self.status)
        if self.tags:
            clauses.append("tags @> %s")
            params.append(list(self.tags))
        if self.owner:
            clauses.append("owner = %s")
            params.append(self.owner)
        if self.name_contains:
            clauses.append("name ILIKE %s")
            params.append(contains_pattern(self.name_contains))
        if self.caller:
            clauses.append("(owner = %s OR cardinality(shared_with) = 0 OR %s = ANY(shared_with))")
            params += [self.caller, self.caller]
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class Usage:
    """Reads and writes in one window."""

    start: datetime
    end: datetime
    reads: int
    writes: int
    active_contexts: int


@dataclass(frozen=True)
class Summary:
    """Figures over all contexts."""

    total_contexts: int
    by_status: dict[str, int]
    by_type: dict[str, int]
    total_layers: int
    total_size_bytes: int
    total_access_count: int
    reads_last_24h: int
    writes_last_24h: int


def _duplicate(exc: psycopg.errors.UniqueViolation, name: str, position: int | None) -> AlreadyExists:
    if exc.diag.constraint_name == "context_layers_position_key":
        return AlreadyExists(f"position {position} is taken by another layer of this context",
                             metadata={"field": "position"})
    return AlreadyExists(f"this context already has a layer named {name!r}", metadata={"field": "name"})


class ContextStore:
    """Queries over the context schema."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    # --- helpers that run inside a caller's transaction -----------------------------------------

    @staticmethod
    async def _publish(cur: psycopg.AsyncCursor[Any], event: Message, subject: str) -> None:
        """Queue a domain event in the cursor's transaction (published after commit, dropped on rollback)."""
        await outbox.add(cur.connection, event, subject=subject, source=events.SOURCE)

    @staticmethod
    async def _lock(cur: psycopg.AsyncCursor[Any], context_id: uuid.UUID, access: Access) -> ContextRow:
        """The context, locked for this transaction; NOT_FOUND or PERMISSION_DENIED otherwise."""
        await cur.execute(f"SELECT {_CONTEXT_COLUMNS} FROM contexts WHERE id = %s FOR UPDATE", (context_id,))
        context = ContextRow(**found(await cur.fetchone(), "context", context_id))
        access.check(context)
        return context

    @staticmethod
    async def _count_read(cur: psycopg.AsyncCursor[Any], context_id: uuid.UUID, access: Access) -> ContextRow:
        """Count one read of the context and return it; the caller's transaction rolls it back if denied."""
        await cur.execute(
            "UPDATE contexts SET access_count = access_count + 1, last_accessed_at = now()"
            f" WHERE id = %s RETURNING {_CONTEXT_COLUMNS}",
            (context_id,),
        )
        context = ContextRow(**found(await cur.fetchone(), "context", context_id))
        access.check(context)
        await cur.execute(_USAGE_UPSERT, (context_id, context.type, 1, 0))
        return context

    @staticmethod
    async def _count_write(
        cur: psycopg.AsyncCursor[Any], context: ContextRow, *, layers: int = 0, size: int = 0,
        changes: dict[str, Any] | None = None,
    ) -> ContextRow:
        """Apply counter deltas and field changes to a locked context, count one write, return it."""
        sets = ["layer_count = layer_count + %s", "size_bytes = size_bytes + %s",
                "access_count = access_count + 1", "last_accessed_at = now()"]
        values: list[Any] = [layers, size]
        if changes:
            for column, value in changes.items():
                sets.append(f"{column} = %s")
                values.append(Jsonb(value) if column == "metadata" else value)
            sets += ["version = version + 1", "updated_at = now()"]
        await cur.execute(
            f"UPDATE contexts SET {', '.join(sets)} WHERE id = %s RETURNING {_CONTEXT_COLUMNS}",
            [*values, context.id],
        )
        row = await cur.fetchone()
        assert row is not None, "the context row is locked by this transaction"
        await cur.execute(_USAGE_UPSERT, (context.id, context.type, 0, 1))
        return ContextRow(**row)

    @staticmethod
    async def _lock_layer(
        cur: psycopg.AsyncCursor[Any], context_id: uuid.UUID, layer_id: uuid.UUID, expected_version: int
    ) -> LayerRow:
        await cur.execute("SELECT * FROM context_layers WHERE id = %s AND context_id = %s FOR UPDATE",
                          (layer_id, context_id))
        layer = LayerRow(**found(await cur.fetchone(), "layer", layer_id))
        check_version("layer", layer.id, layer.version, expected_version)
        return layer

    # --- contexts -------------------------------------------------------------------------------

    async def create_context(
        self, *, name: str, type_: str, owner: str, metadata: dict[str, Any], tags: list[str],
        shared_with: list[str], expires_at: datetime | None,
    ) -> ContextRow:
        """Insert a context (version 1) and its ContextCreated event."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "INSERT INTO contexts (id, name, type, owner, metadata, tags, shared_with, expires_at)"
                f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_CONTEXT_COLUMNS}",
                (uuid.uuid4(), name, type_, owner, Jsonb(metadata), tags, shared_with, expires_at),
            )
            context = ContextRow(**_required(await cur.fetchone()))
            await self._publish(cur, events.created(context), events.context_subject(context.id))
        return context

    async def list_contexts(self, flt: ContextFilter, page: PageRequest) -> Page[ContextRow]:
        """A page of contexts in the page's keyset order (newest first), with the count of all that match."""
        where, params = flt.where()
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            result = await fetch_page(cur, page, select=_CONTEXT_COLUMNS, from_="contexts", where=where, params=params)
        return result.map(lambda r: ContextRow(**r))

    async def read_context(self, context_id: uuid.UUID, access: Access) -> ContextRow:
        """The context, counting one read."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            return await self._count_read(cur, context_id, access)

    async def peek_context(self, context_id: uuid.UUID, access: Access) -> ContextRow:
        """The context without counting a read (for analytics)."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(f"SELECT {_CONTEXT_COLUMNS} FROM contexts WHERE id = %s", (context_id,))
            context = ContextRow(**found(await cur.fetchone(), "context", context_id))
        access.check(context)
        return context

    async def update_context(
        self, context_id: uuid.UUID, access: Access, expected_version: int, changes: dict[str, Any]
    ) -> ContextRow:
        """Replace fields of a context that is not expired (ContextUpdated); its version grows by one."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            context = await self._lock(cur, context_id, access)
            guards.check_context_writable(context)
            check_version("context", context.id, context.version, expected_version)
            context = await self._count_write(cur, context, changes=changes)
            await self._publish(cur, events.updated(context, changes), events.context_subject(context.id))
            return context

    async def delete_context(self, context_id: uuid.UUID, access: Access, expected_version: int) -> int:
        """Delete a context and its layers (ContextDeleted); return how many layers went with it."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            context = await self._lock(cur, context_id, access)
            check_version("context", context.id, context.version, expected_version)
            await cur.execute("DELETE FROM contexts WHERE id = %s RETURNING now() AS deleted_at", (context_id,))
            deleted_at = _required(await cur.fetchone())["deleted_at"]
            await cur.execute(_USAGE_UPSERT, (context.id, context.type, 0, 1))
            await self._publish(cur, events.deleted(context, deleted_at), events.context_subject(context.id))
            return context.layer_count

    async def change_shares(
        self, context_id: uuid.UUID, access: Access, *, add: str = "", remove: str = ""
    ) -> ContextRow:
        """Add or remove one service on the access list.

        The version grows, and ContextShared or ContextUnshared is published, only if the list changed.
        """
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            context = await self._lock(cur, context_id, access)
            guards.check_context_writable(context)
            shared = set(context.shared_with)
            if add:
                shared.add(add)
            shared.discard(remove)
            changes = {"shared_with": sorted(shared)} if shared != set(context.shared_with) else None
            context = await self._count_write(cur, context, changes=changes)
            if changes:
                await self._publish(cur, events.shares_changed(context, added=add, removed=remove),
                                    events.context_subject(context.id))
            return context

    async def count_contexts(self) -> int:
        """How many contexts exist."""
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.execute("SELECT count(*) FROM contexts")
            row = await cur.fetchone()
        return row[0] if row else 0

    # --- layers ---------------------------------------------------------------------------------

    async def read_layers(self, context_id: uuid.UUID, access: Access) -> tuple[ContextRow, list[LayerRow]]:
        """The context (counting one read) and all its layers in merge (position) order."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            context = await self._count_read(cur, context_id, access)
            await cur.execute("SELECT * FROM context_layers WHERE context_id = %s ORDER BY position", (context_id,))
            return context, [LayerRow(**r) for r in await cur.fetchall()]

    async def list_layers(
        self, context_id: uuid.UUID, access: Access, *, layer_type: str, page: PageRequest
    ) -> Page[LayerRow]:
        """A page of the context's layers by position (counting one read of the context)."""
        where, params = "context_id = %s", [context_id]
        if layer_type:
            where += " AND layer_type = %s"
            params.append(layer_type)
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await self._count_read(cur, context_id, access)
            # In the read's transaction, so a denied read counts nothing and the page matches the count.
            result = await fetch_page(cur, page, select="*", from_="context_layers", where=where, params=params)
        return result.map(lambda r: LayerRow(**r))

    async def read_layer(self, context_id: uuid.UUID, layer_id: uuid.UUID, access: Access) -> LayerRow:
        """One layer of the context, counting one read of the context."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await self._count_read(cur, context_id, access)
            await cur.execute("SELECT * FROM context_layers WHERE id = %s AND context_id = %s", (layer_id, context_id))
            # Raised inside the transaction, so an unknown layer's read is not counted.
            return LayerRow(**found(await cur.fetchone(), "layer", layer_id))

    async def add_layer(
        self, context_id: uuid.UUID, access: Access, *, name: str, layer_type: str, data: dict[str, Any],
        size: int, position: int, max_context_bytes: int,
    ) -> tuple[LayerRow, ContextRow]:
        """Insert a layer at a position (0 appends) into an active context (LayerAdded); update its counters."""
        try:
            async with (self._pool.connection() as conn, conn.transaction(),
                        conn.cursor(row_factory=dict_row) as cur):
                context = await self._lock(cur, context_id, access)
                guards.check_layers_writable(context)
                _check_room(context, size, max_context_bytes)
                if not position:
                    await cur.execute(
                        "SELECT coalesce(max(position), 0) + 1 AS next FROM context_layers WHERE context_id = %s",
                        (context_id,),
                    )
                    position = (await cur.fetchone() or {"next": 1})["next"]
                await cur.execute(
                    "INSERT INTO context_layers (id, context_id, name, layer_type, position, data, size_bytes)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING *",
                    (uuid.uuid4(), context_id, name, layer_type, position, Jsonb(data), size),
                )
                layer = LayerRow(**_required(await cur.fetchone()))
                context = await self._count_write(cur, context, layers=1, size=size)
                await self._publish(cur, events.layer_added(layer), events.layer_subject(context.id, layer.id))
        except psycopg.errors.UniqueViolation as exc:
            raise _duplicate(exc, name, position) from None
        return layer, context

    async def update_layer(
        self, context_id: uuid.UUID, layer_id: uuid.UUID, access: Access, expected_version: int,
        changes: dict[str, Any], max_context_bytes: int,
    ) -> tuple[LayerRow, ContextRow]:
        """Replace fields of a layer of an active context (LayerUpdated); its version grows by one."""
        try:
            async with (self._pool.connection() as conn, conn.transaction(),
                        conn.cursor(row_factory=dict_row) as cur):
                context = await self._lock(cur, context_id, access)
                guards.check_layers_writable(context)
                layer = await self._lock_layer(cur, context_id, layer_id, expected_version)
                delta = changes["size_bytes"] - layer.size_bytes if "size_bytes" in changes else 0
                _check_room(context, delta, max_context_bytes)
                sets = [f"{column} = %s" for column in changes]
                values = [Jsonb(v) if column == "data" else v for column, v in changes.items()]
                await cur.execute(
                    f"UPDATE context_layers SET {', '.join(sets)}, version = version + 1, updated_at = now()"
                    " WHERE id = %s RETURNING *",
                    [*values, layer.id],
                )
                updated = LayerRow(**_required(await cur.fetchone()))
                context = await self._count_write(cur, context, size=delta)
                await self._publish(cur, events.layer_updated(updated, changes),
                                    events.layer_subject(context.id, updated.id))
        except psycopg.errors.UniqueViolation as exc:
            raise _duplicate(exc, changes.get("name", ""), changes.get("position")) from None
        return updated, context

    async def delete_layer(
        self, context_id: uuid.UUID, layer_id: uuid.UUID, access: Access, expected_version: int
    ) -> ContextRow:
        """Delete a layer of an active context (LayerRemoved); update the context's counters."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            context = await self._lock(cur, context_id, access)
            guards.check_layers_writable(context)
            layer = await self._lock_layer(cur, context_id, layer_id, expected_version)
            await cur.execute("DELETE FROM context_layers WHERE id = %s RETURNING now() AS removed_at", (layer.id,))
            removed_at = _required(await cur.fetchone())["removed_at"]
            context = await self._count_write(cur, context, layers=-1, size=-layer.size_bytes)
            await self._publish(cur, events.layer_removed(layer, removed_at),
                                events.layer_subject(context.id, layer.id))
            return context

    # --- analytics ------------------------------------------------------------------------------

    async def context_usage(self, context_id: uuid.UUID) -> tuple[int, int, dict[str, int]]:
        """Reads and writes in the last 24 hours, and layers per type, of one context."""
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(
                "SELECT coalesce(sum(reads), 0), coalesce(sum(writes), 0) FROM context_usage"
                f" WHERE context_id = %s AND hour >= {_LAST_24H}",
                (context_id,),
            )
            reads, writes = await cur.fetchone() or (0, 0)
            await cur.execute(
                "SELECT layer_type, count(*) FROM context_layers WHERE context_id = %s GROUP BY layer_type",
                (context_id,),
            )
            by_type = {layer_type: n for layer_type, n in await cur.fetchall()}
        return int(reads), int(writes), by_type

    async def summary(self) -> Summary:
        """Counts and totals over all contexts, from one snapshot."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            await cur.execute(
                "SELECT count(*), coalesce(sum(layer_count), 0), coalesce(sum(size_bytes), 0),"
                " coalesce(sum(access_count), 0) FROM contexts"
            )
            total, layers, size, accesses = await cur.fetchone() or (0, 0, 0, 0)
            await cur.execute(f"SELECT {_STATUS} AS s, count(*) FROM contexts GROUP BY s")
            by_status = {status: n for status, n in await cur.fetchall()}
            await cur.execute("SELECT type, count(*) FROM contexts GROUP BY type")
            by_type = {type_: n for type_, n in await cur.fetchall()}
            await cur.execute(
                f"SELECT coalesce(sum(reads), 0), coalesce(sum(writes), 0) FROM context_usage WHERE hour >= {_LAST_24H}"
            )
            reads, writes = await cur.fetchone() or (0, 0)
        return Summary(total_contexts=total, by_status=by_status, by_type=by_type, total_layers=int(layers),
                       total_size_bytes=int(size), total_access_count=int(accesses), reads_last_24h=int(reads),
                       writes_last_24h=int(writes))

    async def usage(
        self, bounds: Sequence[datetime], *, context_id: uuid.UUID | None = None, type_: str = ""
    ) -> list[Usage]:
        """Reads, writes and distinct contexts per window; bounds are the windows' edges, oldest first."""
        filters, params = "", []
        if context_id is not None:
            filters += " AND u.context_id = %s"
            params.append(context_id)
        if type_:
            filters += " AND u.context_type = %s"
            params.append(type_)
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(
                "SELECT w.start, w.stop, coalesce(sum(u.reads), 0), coalesce(sum(u.writes), 0),"
                " count(DISTINCT u.context_id)"
                " FROM unnest(%s::timestamptz[], %s::timestamptz[]) AS w(start, stop)"
                f" LEFT JOIN context_usage u ON u.hour >= w.start AND u.hour < w.stop{filters}"
                " GROUP BY w.start, w.stop ORDER BY w.start",
                [list(bounds[:-1]), list(bounds[1:]), *params],
            )
            return [Usage(start, stop, int(r), int(w), int(n)) for start, stop, r, w, n in await cur.fetchall()]

    # --- cleanup --------------------------------------------------------------------------------

    async def expire_due(self, batch: int = 500) -> tuple[int, int]:
        """Mark up to `batch` contexts past their expiry EXPIRED and delete their layers, atomically.

        Rows another replica is expiring right now are skipped (SKIP LOCKED), so replicas can
        run this concurrently; a layer writer waiting on the row lock then sees EXPIRED. One
        ContextExpired per expired context goes into the outbox in the same transaction.
        Returns (contexts expired, layers deleted).
        """
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "WITH due AS ("
                "  SELECT id FROM contexts WHERE expires_at <= now() AND status <> 'expired'"
                "  ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED"
                "), expired AS ("
                "  UPDATE contexts c SET status = 'expired', layer_count = 0, size_bytes = 0,"
                "    version = c.version + 1, updated_at = now()"
                "  FROM due WHERE c.id = due.id"
                "  RETURNING c.id, c.name, c.type, c.owner, c.version, c.expires_at, c.updated_at"
                "), removed AS ("
                "  DELETE FROM context_layers l USING expired WHERE l.context_id = expired.id RETURNING l.context_id"
                "), per_context AS (SELECT context_id, count(*) AS n FROM removed GROUP BY context_id)"
                " SELECT e.*, coalesce(r.n, 0)::int AS deleted_layers"
                " FROM expired e LEFT JOIN per_context r ON r.context_id = e.id ORDER BY e.expires_at, e.id",
                (batch,),
            )
            rows = await cur.fetchall()
            async with conn.pipeline():  # one round trip for the batch's events, not one per context
                for row in rows:
                    await self._publish(cur, events.expired(row), events.context_subject(row["id"]))
        return len(rows), sum(row["deleted_layers"] for row in rows)

    async def prune_usage(self, retention_days: int) -> int:
        """Delete usage counters older than the retention; return how many rows went."""
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.execute("DELETE FROM context_usage WHERE hour < now() - make_interval(days => %s)",
                              (retention_days,))
            return cur.rowcount


def _required(row: dict[str, Any] | None) -> dict[str, Any]:
    assert row is not None, "INSERT/UPDATE ... RETURNING on a locked row returns it"
    return row


def _check_room(context: ContextRow, delta: int, max_context_bytes: int) -> None:
    if delta > 0 and context.size_bytes + delta > max_context_bytes:
        raise FailedPrecondition(
            f"context {context.id} would hold {context.size_bytes + delta} bytes of layer data; "
            f"at most {max_context_bytes} (CONTEXT_MAX_CONTEXT_BYTES); remove or shrink layers first",
            metadata={"size_bytes": str(context.size_bytes), "max_context_bytes": str(max_context_bytes)},
        )
