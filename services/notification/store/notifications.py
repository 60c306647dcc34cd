"""Notifications: made by the event consumer, listed, read and resent by the servicer.

A notification is in its subscription's organization (stamped when the consumer makes it); the servicer's
queries are the caller's organization's (chassis.authz.organization_scope).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from chassis.authz import organization_scope as scope
from chassis.resources import Page, PageRequest
from chassis.resources.keyset import fetch_page
from services.notification.rows import AttemptRow, NotificationRow, SubscriptionRow
from services.notification.store.base import Queries

NOTIFICATION_NAMESPACE = uuid.UUID("0c6f4c1e-5b7e-4f55-9d0e-6a4f1d2b7c31")
"""Namespace of notification ids: uuid5(subscription id / event id)."""


def notification_id(subscription_id: uuid.UUID, event_id: str) -> uuid.UUID:
    """The id of the notification of one event for one subscription: the same on every redelivery."""
    return uuid.uuid5(NOTIFICATION_NAMESPACE, f"{subscription_id}/{event_id}")


@dataclass(frozen=True)
class NotificationFilter:
    """ListNotifications filters."""

    state: str = ""
    subscription_id: uuid.UUID | None = None
    event_type: str = ""
    event_subject: str = ""

    def where(self) -> tuple[sql.Composable, list[Any]]:
        """SQL conditions (joined by AND) and their parameters, the caller's organization first."""
        tenancy, params = scope()
        clauses = [tenancy]
        for column, value in (("state", self.state), ("subscription_id", self.subscription_id),
                              ("event_type", self.event_type), ("event_subject", self.event_subject)):
            if value:
                clauses.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
                params.append(value)
        return sql.SQL(" AND ").join(clauses), params


class NotificationStore(Queries):
    """The notifications table, with each notification's delivery attempts when it is read."""

    @staticmethod
    async def create_for_event(
        conn: psycopg.AsyncConnection, subscriptions: Sequence[SubscriptionRow], *, event_id: str, event_type: str,
        event_subject: str, event_source: str, event_time: datetime, event_data: dict[str, Any], max_attempts: int,
    ) -> list[uuid.UUID]:
        """One PENDING notification per subscription; returns the ids actually inserted (none on a redelivery).

        Each id's advisory lock is held until the transaction ends, so a worker that receives the
        delivery task before this commits waits for the row instead of missing it.
        """
        created = []
        for subscription in subscriptions:
            nid = notification_id(subscription.id, event_id)
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (str(nid),))
            cur = await conn.execute(
                "INSERT INTO notifications (id, organization_id, subscription_id, subscription_name, event_id,"
                " event_type, event_subject, event_source, event_time, event_data, max_attempts, next_attempt_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())"
                " ON CONFLICT DO NOTHING RETURNING id",
                (nid, subscription.organization_id, subscription.id, subscription.name, event_id, event_type,
                 event_subject, event_source,
                 event_time, Jsonb(event_data), max_attempts),
            )
            if await cur.fetchone():
                created.append(nid)
        return created


    async def _with_attempts(self, rows: list[dict[str, Any]]) -> list[NotificationRow]:
        ids = [r["id"] for r in rows]
        attempts: dict[uuid.UUID, list[AttemptRow]] = {i: [] for i in ids}
        if ids:
            for a in await self._all("SELECT * FROM delivery_attempts WHERE notification_id = ANY(%s)"
                                     " ORDER BY notification_id, delivery, attempt", (ids,)):
                attempts[a["notification_id"]].append(AttemptRow(**a))
        return [NotificationRow(**r, attempts=attempts[r["id"]]) for r in rows]

    async def get(self, nid: uuid.UUID) -> NotificationRow | None:
        """One notification of the caller's organization with its attempts, or None."""
        tenancy, params = scope()
        row = await self._one(sql.SQL("SELECT * FROM notifications WHERE id = %s AND {}").format(tenancy),
                              [nid, *params])
        return (await self._with_attempts([row]))[0] if row else None

    async def list_page(self, flt: NotificationFilter, page: PageRequest) -> Page[NotificationRow]:
        """A page of notifications with their attempts and how many match in all."""
        where, params = flt.where()
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            raw = await fetch_page(cur, page, select="*", from_="notifications", where=where, params=params)
        return Page(await self._with_attempts(raw.items), raw.next_page_token, raw.total_size)

    async def count(self) -> int:
        """How many notifications the caller's organization has."""
        tenancy, params = scope()
        row = await self._one(sql.SQL("SELECT count(*) AS n FROM notifications WHERE {}").format(tenancy), params)
        return int(row["n"]) if row else 0

    async def start_new_delivery(self, nid: uuid.UUID, max_attempts: int) -> tuple[NotificationRow | None, str]:
        """Make a DELIVERED or FAILED notification PENDING on its next delivery.

        Returns (row, "") on success, (None, "") when there is no such notification (in the caller's
        organization), and (None, state) when its current delivery is not finished.
        """
        tenancy, params = scope()
        row = await self._one_keyed(
            sql.SQL("UPDATE notifications SET delivery = delivery + 1, attempt_count = 0, state = 'PENDING',"
                    " max_attempts = %s, last_error = '', next_attempt_at = now(), lease_until = NULL,"
                    " delivered_at = NULL, updated_at = now()"
                    " WHERE id = %s AND {} AND state IN ('DELIVERED', 'FAILED') RETURNING *").format(tenancy),
            [max_attempts, nid, *params],
        )
        if row:
            return (await self._with_attempts([row]))[0], ""
        current = await self._one(sql.SQL("SELECT state FROM notifications WHERE id = %s AND {}").format(tenancy),
                                  [nid, *params])
        return None, current["state"] if current else ""

