"""Contexts and their access lists."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from chassis import idempotency
from chassis.authz import creating_organization
from chassis.db import contains_pattern
from chassis.resources import Page, PageRequest, check_version, found
from chassis.resources.keyset import fetch_page
from services.context import events, guards
from services.context.guards import Access
from services.context.rows import ContextRow
from services.context.store.transaction import (
    CONTEXT_COLUMNS,
    STATUS,
    USAGE_UPSERT,
    count_read,
    count_write,
    lock_context,
    publish,
    returned,
)
from services.context.tenancy import scope


@dataclass(frozen=True)
class ContextFilter:
    """Filters of ListContexts (also what its page tokens are bound to)."""

    type: str = ""
    status: str = ""
    tags: tuple[str, ...] = ()
    owner: str = ""
    name_contains: str = ""
    reader: str = ""
    """Subject of the listing principal: only contexts it may read are listed (owner, on the list, no list)."""
    unrestricted: bool = False
    """Every context of the organizations listed is (a platform admin, who lists them all); without it,
    `reader` always restricts the list."""

    def where(self) -> tuple[str, list[Any]]:
        """SQL conditions (joined by AND) and their parameters; the caller's organization first."""
        tenancy, params = scope("organization_id")
        clauses: list[str] = [tenancy]
        if self.type:
            clauses.append("type = %s")
            params.append(self.type)
        if self.status:
            clauses.append(f"{STATUS} = %s")
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
        if not self.unrestricted:
            clauses.append("(owner = %s OR cardinality(shared_with) = 0 OR %s = ANY(shared_with))")
            params += [self.reader, self.reader]
        return " AND ".join(clauses), params


class Contexts:
    """Queries over the contexts table."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def create(
        self, *, name: str, type_: str, owner: str, metadata: dict[str, Any], tags: list[str],
        shared_with: list[str], expires_at: datetime | None,
    ) -> ContextRow:
        """Insert a context (version 1) of the caller's organization, and its ContextCreated event."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await idempotency.claim(conn)  # a keyed request's key commits with the context
            await cur.execute(
                "INSERT INTO contexts (id, name, type, owner, metadata, tags, shared_with, expires_at, organization_id)"  # noqa: S608 fixed SQL text, values bound
                f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {CONTEXT_COLUMNS}",
                (uuid.uuid4(), name, type_, owner, Jsonb(metadata), tags, shared_with, expires_at,
                 creating_organization("a context")),
            )
            context = ContextRow(**returned(await cur.fetchone()))
            await publish(cur, events.created(context), events.context_subject(context.id))
        return context

    async def list_page(self, flt: ContextFilter, page: PageRequest) -> Page[ContextRow]:
        """A page of contexts in the page's keyset order (newest first), with the count of all that match."""
        where, params = flt.where()
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            result = await fetch_page(cur, page, select=CONTEXT_COLUMNS, from_="contexts", where=where, params=params)
        return result.map(lambda r: ContextRow(**r))

    async def read(self, context_id: uuid.UUID, access: Access) -> ContextRow:
        """The context, counting one read."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            return await count_read(cur, context_id, access)

    async def peek(self, context_id: uuid.UUID, access: Access) -> ContextRow:
        """The context without counting a read (for analytics)."""
        tenancy, params = scope("organization_id")
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(f"SELECT {CONTEXT_COLUMNS} FROM contexts WHERE id = %s AND {tenancy}",  # noqa: S608 fixed SQL text, values bound
                              [context_id, *params])
            context = ContextRow(**found(await cur.fetchone(), "context", context_id))
        access.check(context)
        return context

    async def update(
        self, context_id: uuid.UUID, access: Access, expected_version: int, changes: dict[str, Any]
    ) -> ContextRow:
        """Replace fields of a context that is not expired (ContextUpdated); its version grows by one."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            context = await lock_context(cur, context_id, access)
            guards.check_context_writable(context)
            check_version("context", context.id, context.version, expected_version)
            context = await count_write(cur, context, changes=changes)
            await publish(cur, events.updated(context, changes), events.context_subject(context.id))
            return context

    async def delete(self, context_id: uuid.UUID, access: Access, expected_version: int) -> int:
        """Delete a context and its layers (ContextDeleted); return how many layers went with it."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            context = await lock_context(cur, context_id, access)
            check_version("context", context.id, context.version, expected_version)
            await cur.execute("DELETE FROM contexts WHERE id = %s RETURNING now() AS deleted_at", (context_id,))
            deleted_at = returned(await cur.fetchone())["deleted_at"]
            await cur.execute(USAGE_UPSERT, (context.id, context.type, context.organization_id, 0, 1))
            await publish(cur, events.deleted(context, deleted_at), events.context_subject(context.id))
            return context.layer_count

    async def change_shares(
        self, context_id: uuid.UUID, access: Access, *, add: str = "", remove: str = ""
    ) -> ContextRow:
        """Add or remove one principal (subject) on the access list.

        The version grows, and ContextShared or ContextUnshared is published, only if the list changed.
        """
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            context = await lock_context(cur, context_id, access)
            guards.check_context_writable(context)
            shared = set(context.shared_with)
            if add:
                shared.add(add)
            shared.discard(remove)
            changes = {"shared_with": sorted(shared)} if shared != set(context.shared_with) else None
            context = await count_write(cur, context, changes=changes)
            if changes:
                await publish(cur, events.shares_changed(context, added=add, removed=remove),
                              events.context_subject(context.id))
            return context

    async def count(self) -> int:
        """How many contexts the caller's organization has (every organization's, for a platform admin)."""
        tenancy, params = scope("organization_id")
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(f"SELECT count(*) FROM contexts WHERE {tenancy}", params)  # noqa: S608 fixed SQL text, values bound
            row = await cur.fetchone()
        return int(row[0]) if row else 0
