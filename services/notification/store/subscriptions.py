"""Subscriptions: their CRUD for the servicer, and matching for the event consumer.

The servicer's queries are the caller's organization's (chassis.authz.organization_scope): another
organization's subscription is not found by id and in no list. Matching takes the event's organization
explicitly: a subscription is only ever matched with its own organization's events.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from chassis.authz import organization_scope as scope
from chassis.errors import AlreadyExists
from chassis.resources import Page, PageRequest, found
from chassis.resources.keyset import fetch_page
from services.notification.matching import candidate_patterns
from services.notification.rows import SubscriptionRow
from services.notification.store.base import Queries


class SubscriptionStore(Queries):
    """The subscriptions table."""

    async def create(self, subscription_id: uuid.UUID, organization: str, values: dict[str, Any]) -> SubscriptionRow:
        """Insert a subscription of `organization` (chassis.authz.creating_organization), its id chosen by the caller,
        who seals the secret to it; a name taken in that organization raises AlreadyExists."""
        values = {**values, "organization_id": organization}
        columns = ["id", *values]
        try:
            row = await self._one_keyed(
                sql.SQL("INSERT INTO subscriptions ({}) VALUES ({}) RETURNING *").format(
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                    sql.SQL(", ").join(sql.Placeholder() * len(columns)),
                ),
                [subscription_id, *values.values()],
            )
        except psycopg.errors.UniqueViolation:
            raise AlreadyExists(f"a subscription named {values['name']!r} already exists",
                                metadata={"field": "name"}) from None
        return SubscriptionRow(**found(row, "subscription", subscription_id))

    async def get(self, subscription_id: uuid.UUID) -> SubscriptionRow | None:
        """One subscription of the caller's organization, or None (another organization's too)."""
        tenancy, params = scope()
        row = await self._one(sql.SQL("SELECT * FROM subscriptions WHERE id = %s AND {}").format(tenancy),
                              [subscription_id, *params])
        return SubscriptionRow(**row) if row else None

    async def list_page(self, channel: str, page: PageRequest) -> Page[SubscriptionRow]:
        """A page of the caller's organization's subscriptions (on one channel, or all when channel is empty) and
        how many match in all."""
        where, params = scope()
        if channel:
            where, params = sql.SQL("{} AND channel = %s").format(where), [*params, channel]
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            raw = await fetch_page(cur, page, select="*", from_="subscriptions", where=where, params=params)
        return raw.map(lambda r: SubscriptionRow(**r))

    async def update(self, subscription_id: uuid.UUID, changes: dict[str, Any]) -> SubscriptionRow | None:
        """Apply column changes; None if the subscription is gone (or another organization's); a name taken in
        its organization raises AlreadyExists."""
        tenancy, params = scope()
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder()) for column in changes
        )
        try:
            row = await self._one(
                sql.SQL("UPDATE subscriptions SET {}, updated_at = now() WHERE id = %s AND {} RETURNING *").format(
                    assignments, tenancy),
                [*changes.values(), subscription_id, *params],
            )
        except psycopg.errors.UniqueViolation:
            raise AlreadyExists(f"a subscription named {changes.get('name')!r} already exists",
                                metadata={"field": "name"}) from None
        return SubscriptionRow(**row) if row else None

    async def delete(self, subscription_id: uuid.UUID) -> bool:
        """Remove a subscription of the caller's organization; False if there was none. Its notifications stay."""
        tenancy, params = scope()
        row = await self._one(sql.SQL("DELETE FROM subscriptions WHERE id = %s AND {} RETURNING id").format(tenancy),
                              [subscription_id, *params])
        return row is not None

    async def count(self) -> int:
        """How many subscriptions the caller's organization has."""
        tenancy, params = scope()
        row = await self._one(sql.SQL("SELECT count(*) AS n FROM subscriptions WHERE {}").format(tenancy), params)
        return int(row["n"]) if row else 0

    @staticmethod
    async def matching(conn: psycopg.AsyncConnection, event_type: str, organization: str) -> list[SubscriptionRow]:
        """Enabled subscriptions of the event's `organization` whose patterns match the event type (subject globs
        are checked by the caller). Never another organization's: the consumer gives the event's, not a caller's."""
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT * FROM subscriptions WHERE organization_id = %s AND enabled"
                              " AND event_types && %s ORDER BY id", (organization, candidate_patterns(event_type)))
            return [SubscriptionRow(**r) for r in await cur.fetchall()]
