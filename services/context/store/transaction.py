"""What every context write shares inside its transaction: the row lock, read and write counting, events."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from google.protobuf.message import Message
from psycopg.types.json import Jsonb

from chassis.events import outbox
from chassis.resources import found
from services.context import events
from services.context.guards import Access
from services.context.rows import ContextRow
from services.context.tenancy import scope

Cursor = psycopg.AsyncCursor[Any]
"""A dict_row cursor inside the caller's transaction."""

# A context whose expiry has passed is expired even before the cleanup job has marked it.
STATUS = "CASE WHEN status <> 'expired' AND expires_at <= now() THEN 'expired' ELSE status END"
CONTEXT_COLUMNS = f"""
    id, name, type, {STATUS} AS status, owner, shared_with, metadata, tags, layer_count, size_bytes,
    access_count, version, expires_at, created_at, updated_at, last_accessed_at, organization_id
"""
USAGE_UPSERT = """
    INSERT INTO context_usage (context_id, context_type, organization_id, hour, reads, writes)
    VALUES (%s, %s, %s, date_trunc('hour', now(), 'UTC'), %s, %s)
    ON CONFLICT (context_id, hour) DO UPDATE
    SET reads = context_usage.reads + EXCLUDED.reads, writes = context_usage.writes + EXCLUDED.writes
"""


async def publish(cur: Cursor, event: Message, subject: str) -> None:
    """Queue a domain event in the cursor's transaction (published after commit, dropped on rollback)."""
    await outbox.add(cur.connection, event, subject=subject, source=events.SOURCE)


async def lock_context(cur: Cursor, context_id: uuid.UUID, access: Access) -> ContextRow:
    """The context, locked for this transaction; NOT_FOUND (also another organization's) or PERMISSION_DENIED
    (off its access list) otherwise."""
    tenancy, params = scope("organization_id")
    await cur.execute(f"SELECT {CONTEXT_COLUMNS} FROM contexts WHERE id = %s AND {tenancy} FOR UPDATE",  # noqa: S608 fixed SQL text, values bound
                      [context_id, *params])
    context = ContextRow(**found(await cur.fetchone(), "context", context_id))
    access.check(context)
    return context


async def count_read(cur: Cursor, context_id: uuid.UUID, access: Access) -> ContextRow:
    """Count one read of the context and return it; the caller's transaction rolls it back if denied.
    Another organization's context is NOT_FOUND (and not counted)."""
    tenancy, params = scope("organization_id")
    await cur.execute(
        "UPDATE contexts SET access_count = access_count + 1, last_accessed_at = now()"  # noqa: S608 fixed SQL text, values bound
        f" WHERE id = %s AND {tenancy} RETURNING {CONTEXT_COLUMNS}",
        [context_id, *params],
    )
    context = ContextRow(**found(await cur.fetchone(), "context", context_id))
    access.check(context)
    await cur.execute(USAGE_UPSERT, (context_id, context.type, context.organization_id, 1, 0))
    return context


async def count_write(
    cur: Cursor, context: ContextRow, *, layers: int = 0, size: int = 0, changes: dict[str, Any] | None = None,
) -> ContextRow:
    """Apply counter deltas and field changes to a locked context, count one write, return it.

    The context was locked by lock_context, which found it in the caller's organization: its id is enough here."""
    sets = ["layer_count = layer_count + %s", "size_bytes = size_bytes + %s",
            "access_count = access_count + 1", "last_accessed_at = now()"]
    values: list[Any] = [layers, size]
    if changes:
        for column, value in changes.items():
            sets.append(f"{column} = %s")
            values.append(Jsonb(value) if column == "metadata" else value)
        sets += ["version = version + 1", "updated_at = now()"]
    await cur.execute(
        f"UPDATE contexts SET {', '.join(sets)} WHERE id = %s RETURNING {CONTEXT_COLUMNS}",  # noqa: S608 fixed SQL text, values bound
        [*values, context.id],
    )
    row = returned(await cur.fetchone())
    await cur.execute(USAGE_UPSERT, (context.id, context.type, context.organization_id, 0, 1))
    return ContextRow(**row)


def returned(row: dict[str, Any] | None) -> dict[str, Any]:
    """The row of an INSERT/UPDATE ... RETURNING on a row this transaction holds, which is always there."""
    assert row is not None, "INSERT/UPDATE ... RETURNING on a locked row returns it"  # noqa: S101 an invariant, not a check
    return row
