"""A context's layers: every write locks the context first, so counters and positions stay exact.

A layer is its context's organization's (the foreign key names both). Every query first finds the context in
the caller's organization (count_read, lock_context) and filters the layers by the organization too.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from chassis import idempotency
from chassis.errors import AlreadyExists, FailedPrecondition
from chassis.resources import Page, PageRequest, check_version, found
from chassis.resources.keyset import fetch_page
from services.context import events, guards
from services.context.guards import Access
from services.context.rows import ContextRow, LayerRow
from services.context.store.transaction import Cursor, count_read, count_write, lock_context, publish, returned
from services.context.tenancy import scope


class Layers:
    """Queries over the context_layers table."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def read_all(self, context_id: uuid.UUID, access: Access) -> tuple[ContextRow, list[LayerRow]]:
        """The context (counting one read) and all its layers in merge (position) order."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            context = await count_read(cur, context_id, access)
            tenancy, params = scope("organization_id")
            await cur.execute(f"SELECT * FROM context_layers WHERE context_id = %s AND {tenancy} ORDER BY position",  # noqa: S608 fixed SQL text, values bound
                              [context_id, *params])
            return context, [LayerRow(**r) for r in await cur.fetchall()]

    async def list_page(
        self, context_id: uuid.UUID, access: Access, *, layer_type: str, page: PageRequest
    ) -> Page[LayerRow]:
        """A page of the context's layers by position (counting one read of the context)."""
        tenancy, params = scope("organization_id")
        where = f"context_id = %s AND {tenancy}"
        params = [context_id, *params]
        if layer_type:
            where += " AND layer_type = %s"
            params.append(layer_type)
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await count_read(cur, context_id, access)
            # In the read's transaction, so a denied read counts nothing and the page matches the count.
            result = await fetch_page(cur, page, select="*", from_="context_layers", where=where, params=params)
        return result.map(lambda r: LayerRow(**r))

    async def read(self, context_id: uuid.UUID, layer_id: uuid.UUID, access: Access) -> LayerRow:
        """One layer of the context, counting one read of the context."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await count_read(cur, context_id, access)
            tenancy, params = scope("organization_id")
            await cur.execute(f"SELECT * FROM context_layers WHERE id = %s AND context_id = %s AND {tenancy}",  # noqa: S608 fixed SQL text, values bound
                              [layer_id, context_id, *params])
            # Raised inside the transaction, so an unknown layer's read is not counted.
            return LayerRow(**found(await cur.fetchone(), "layer", layer_id))

    async def add(
        self, context_id: uuid.UUID, access: Access, *, name: str, layer_type: str, data: dict[str, Any],
        size: int, position: int, max_context_bytes: int,
    ) -> tuple[LayerRow, ContextRow]:
        """Insert a layer at a position (0 appends) into an active context (LayerAdded); update its counters."""
        try:
            async with (self._pool.connection() as conn, conn.transaction(),
                        conn.cursor(row_factory=dict_row) as cur):
                await idempotency.claim(conn)  # first: a repeat is answered even if the context changed since
                context = await lock_context(cur, context_id, access)
                guards.check_layers_writable(context)
                _check_room(context, size, max_context_bytes)
                if not position:
                    await cur.execute(
                        "SELECT coalesce(max(position), 0) + 1 AS next FROM context_layers WHERE context_id = %s",
                        (context_id,),
                    )
                    position = returned(await cur.fetchone())["next"]
                await cur.execute(
                    "INSERT INTO context_layers (id, context_id, name, layer_type, position, data, size_bytes,"
                    " organization_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
                    (uuid.uuid4(), context_id, name, layer_type, position, Jsonb(data), size, context.organization_id),
                )
                layer = LayerRow(**returned(await cur.fetchone()))
                context = await count_write(cur, context, layers=1, size=size)
                await publish(cur, events.layer_added(layer), events.layer_subject(context.id, layer.id))
        except psycopg.errors.UniqueViolation as exc:
            raise _duplicate(exc, name, position) from None
        return layer, context

    async def update(
        self, context_id: uuid.UUID, layer_id: uuid.UUID, access: Access, expected_version: int,
        changes: dict[str, Any], max_context_bytes: int,
    ) -> tuple[LayerRow, ContextRow]:
        """Replace fields of a layer of an active context (LayerUpdated); its version grows by one."""
        try:
            async with (self._pool.connection() as conn, conn.transaction(),
                        conn.cursor(row_factory=dict_row) as cur):
                context, layer = await _lock_writable_layer(cur, context_id, layer_id, access, expected_version)
                delta = changes["size_bytes"] - layer.size_bytes if "size_bytes" in changes else 0
                _check_room(context, delta, max_context_bytes)
                sets = [f"{column} = %s" for column in changes]
                values = [Jsonb(v) if column == "data" else v for column, v in changes.items()]
                await cur.execute(
                    f"UPDATE context_layers SET {', '.join(sets)}, version = version + 1, updated_at = now()"  # noqa: S608 fixed SQL text, values bound
                    " WHERE id = %s RETURNING *",
                    [*values, layer.id],
                )
                updated = LayerRow(**returned(await cur.fetchone()))
                context = await count_write(cur, context, size=delta)
                await publish(cur, events.layer_updated(updated, changes), events.layer_subject(context.id, updated.id))
        except psycopg.errors.UniqueViolation as exc:
            raise _duplicate(exc, changes.get("name", ""), changes.get("position")) from None
        return updated, context

    async def delete(
        self, context_id: uuid.UUID, layer_id: uuid.UUID, access: Access, expected_version: int
    ) -> ContextRow:
        """Delete a layer of an active context (LayerRemoved); update the context's counters."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            context, layer = await _lock_writable_layer(cur, context_id, layer_id, access, expected_version)
            await cur.execute("DELETE FROM context_layers WHERE id = %s RETURNING now() AS removed_at", (layer.id,))
            removed_at = returned(await cur.fetchone())["removed_at"]
            context = await count_write(cur, context, layers=-1, size=-layer.size_bytes)
            await publish(cur, events.layer_removed(layer, removed_at), events.layer_subject(context.id, layer.id))
            return context


async def _lock_writable_layer(
    cur: Cursor, context_id: uuid.UUID, layer_id: uuid.UUID, access: Access, expected_version: int
) -> tuple[ContextRow, LayerRow]:
    """The context and its layer, both locked, for a write the context's state and the layer's version allow."""
    context = await lock_context(cur, context_id, access)
    guards.check_layers_writable(context)
    # The context was found in the caller's organization, and its layers are in the same one (foreign key).
    await cur.execute("SELECT * FROM context_layers WHERE id = %s AND context_id = %s FOR UPDATE",
                      (layer_id, context_id))
    layer = LayerRow(**found(await cur.fetchone(), "layer", layer_id))
    check_version("layer", layer.id, layer.version, expected_version)
    return context, layer


def _duplicate(exc: psycopg.errors.UniqueViolation, name: str, position: int | None) -> AlreadyExists:
    if exc.diag.constraint_name == "context_layers_position_key":
        return AlreadyExists(f"position {position} is taken by another layer of this context",
                             metadata={"field": "position"})
    return AlreadyExists(f"this context already has a layer named {name!r}", metadata={"field": "name"})


def _check_room(context: ContextRow, delta: int, max_context_bytes: int) -> None:
    if delta > 0 and context.size_bytes + delta > max_context_bytes:
        raise FailedPrecondition(
            f"context {context.id} would hold {context.size_bytes + delta} bytes of layer data; "
            f"at most {max_context_bytes} (CONTEXT_MAX_CONTEXT_BYTES); remove or shrink layers first",
            metadata={"size_bytes": str(context.size_bytes), "max_context_bytes": str(max_context_bytes)},
        )
