"""Subscriptions: their CRUD for the servicer, and matching for the event consumer."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from chassis.errors import AlreadyExists
from chassis.resources import Page, PageRequest
from chassis.resources.keyset import fetch_page
from services.notification.matching import candidate_patterns
from services.notification.rows import SubscriptionRow
from services.notification.store.base import Queries


class SubscriptionStore(Queries):
    """The subscriptions table."""

    async def create(self, subscription_id: uuid.UUID, values: dict[str, Any]) -> SubscriptionRow:
        """Insert a subscription (its id chosen by the caller, who seals the secret to it); a taken name raises
        AlreadyExists."""
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
        assert row is not None
        return SubscriptionRow(**row)

    async def get(self, subscription_id: uuid.UUID) -> SubscriptionRow | None:
        """One subscription, or None."""
        row = await self._one("SELECT * FROM subscriptions WHERE id = %s", (subscription_id,))
        return SubscriptionRow(**row) if row else None

    async def list_page(self, channel: str, page: PageRequest) -> Page[SubscriptionRow]:
        """A page of subscriptions (on one channel, or all when channel is empty) and how many match in all."""
        where, params = ("channel = %s", [channel]) if channel else ("TRUE", [])
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            raw = await fetch_page(cur, page, select="*", from_="subscriptions", where=where, params=params)
        return raw.map(lambda r: SubscriptionRow(**r))

    async def update(self, subscription_id: uuid.UUID, changes: dict[str, Any]) -> SubscriptionRow | None:
        """Apply column changes; None if the subscription is gone; a taken name raises AlreadyExists."""
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder()) for column in changes
        )
        try:
            row = await self._one(
                sql.SQL("UPDATE subscriptions SET {}, updated_at = now() WHERE id = %s RETURNING *").format(
                    assignments),
                [*changes.values(), subscription_id],
            )
        except psycopg.errors.UniqueViolation:
            raise AlreadyExists(f"a subscription named {changes.get('name')!r} already exists",
                                metadata={"field": "name"}) from None
        return SubscriptionRow(**row) if row else None

    async def delete(self, subscription_id: uuid.UUID) -> bool:
        """Remove a subscription; False if there was none. Its notifications stay."""
        row = await self._one("DELETE FROM subscriptions WHERE id = %s RETURNING id", (subscription_id,))
        return row is not None

    async def count(self) -> int:
        """How many subscriptions exist."""
        row = await self._one("SELECT count(*) AS n FROM subscriptions", ())
        return int(row["n"]) if row else 0

    @staticmethod
    async def matching(conn: psycopg.AsyncConnection, event_type: str) -> list[SubscriptionRow]:
        """Enabled subscriptions whose patterns match the event type (subject globs are checked by the caller)."""
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT * FROM subscriptions WHERE enabled AND event_types && %s ORDER BY id",
                              (candidate_patterns(event_type),))
            return [SubscriptionRow(**r) for r in await cur.fetchall()]
