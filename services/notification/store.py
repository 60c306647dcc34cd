"""The notification service's PostgreSQL access: every query it makes, in one place.

Webhook secrets only pass through here sealed (ciphertext, nonce, key id); this module never sees
them in clear.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from chassis.crypto import Sealed
from chassis.db import fetch_all, fetch_one
from chassis.errors import AlreadyExists
from chassis.resources import Page, PageRequest
from chassis.resources.keyset import fetch_page
from services.notification.matching import candidate_patterns

UNFINISHED_STATES = ("PENDING", "DELIVERING", "RETRYING")
FINAL_STATES = ("DELIVERED", "FAILED")
NOTIFICATION_NAMESPACE = uuid.UUID("0c6f4c1e-5b7e-4f55-9d0e-6a4f1d2b7c31")
"""Namespace of notification ids: uuid5(subscription id / event id)."""
ABANDONED_ERROR = "the replica making this attempt stopped before recording its outcome; the receiver may have it"


def notification_id(subscription_id: uuid.UUID, event_id: str) -> uuid.UUID:
    """The id of the notification of one event for one subscription: the same on every redelivery."""
    return uuid.uuid5(NOTIFICATION_NAMESPACE, f"{subscription_id}/{event_id}")


@dataclass(frozen=True)
class SubscriptionRow:
    """A subscription as stored."""

    id: uuid.UUID
    name: str
    event_types: list[str]
    subject_filter: str
    channel: str
    email_to: list[str]
    subject_template: str
    webhook_url: str
    webhook_secret_ciphertext: bytes | None = field(repr=False)
    webhook_secret_nonce: bytes | None = field(repr=False)
    webhook_secret_key_id: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @property
    def sealed_secret(self) -> Sealed | None:
        """The webhook's secret, sealed (the store never sees it in clear); None for an email subscription."""
        ciphertext, nonce = self.webhook_secret_ciphertext, self.webhook_secret_nonce
        if ciphertext is None or nonce is None or not self.webhook_secret_key_id:
            return None
        return Sealed(bytes(ciphertext), bytes(nonce), self.webhook_secret_key_id)


def sealed_secret_columns(sealed: Sealed | None) -> dict[str, Any]:
    """The subscription columns that store a sealed webhook secret (all NULL for none)."""
    return {"webhook_secret_ciphertext": sealed.ciphertext if sealed else None,
            "webhook_secret_nonce": sealed.nonce if sealed else None,
            "webhook_secret_key_id": sealed.key_id if sealed else None}


@dataclass(frozen=True)
class AttemptRow:
    """One delivery attempt as stored."""

    notification_id: uuid.UUID
    delivery: int
    attempt: int
    outcome: str
    channel: str
    target: str
    status_code: int
    error: str
    worker: str
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class NotificationRow:
    """A notification as stored, with its attempts when they were asked for."""

    id: uuid.UUID
    subscription_id: uuid.UUID
    subscription_name: str
    event_id: str
    event_type: str
    event_subject: str
    event_source: str
    event_time: datetime
    event_data: dict[str, Any]
    state: str
    delivery: int
    attempt_count: int
    max_attempts: int
    last_error: str
    next_attempt_at: datetime | None
    lease_until: datetime | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    attempts: list[AttemptRow] = field(default_factory=list)


@dataclass(frozen=True)
class NotificationFilter:
    """ListNotifications filters."""

    state: str = ""
    subscription_id: uuid.UUID | None = None
    event_type: str = ""
    event_subject: str = ""

    def where(self) -> tuple[str, list[Any]]:
        """SQL conditions (joined by AND) and their parameters."""
        clauses, params = ["TRUE"], []
        for column, value in (("state", self.state), ("subscription_id", self.subscription_id),
                              ("event_type", self.event_type), ("event_subject", self.event_subject)):
            if value:
                clauses.append(f"{column} = %s")
                params.append(value)
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class Claim:
    """What a worker may do with a delivery task: "send" (attempt claimed), "done", "busy" or "missing"."""

    action: str
    notification: NotificationRow | None = None
    subscription: SubscriptionRow | None = None
    attempt: int = 0


class NotificationStore:
    """Queries over the notification schema."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def _one(self, query: str | sql.Composed, params: Sequence[Any]) -> dict[str, Any] | None:
        return await fetch_one(self._pool, query, params)

    async def _all(self, query: str | sql.Composed, params: Sequence[Any]) -> list[dict[str, Any]]:
        return await fetch_all(self._pool, query, params)

    # --- subscriptions ---------------------------------------------------------------------------

    async def create_subscription(self, subscription_id: uuid.UUID, values: dict[str, Any]) -> SubscriptionRow:
        """Insert a subscription (its id chosen by the caller, who seals the secret to it); a taken name raises
        AlreadyExists."""
        columns = ["id", *values]
        try:
            row = await self._one(
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

    async def get_subscription(self, subscription_id: uuid.UUID) -> SubscriptionRow | None:
        """One subscription, or None."""
        row = await self._one("SELECT * FROM subscriptions WHERE id = %s", (subscription_id,))
        return SubscriptionRow(**row) if row else None

    async def list_subscriptions(self, channel: str, page: PageRequest) -> Page[SubscriptionRow]:
        """A page of subscriptions (on one channel, or all when channel is empty) and how many match in all."""
        where, params = ("channel = %s", [channel]) if channel else ("TRUE", [])
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            raw = await fetch_page(cur, page, select="*", from_="subscriptions", where=where, params=params)
        return raw.map(lambda r: SubscriptionRow(**r))

    async def update_subscription(self, subscription_id: uuid.UUID, changes: dict[str, Any]) -> SubscriptionRow | None:
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

    async def delete_subscription(self, subscription_id: uuid.UUID) -> bool:
        """Remove a subscription; False if there was none. Its notifications stay."""
        row = await self._one("DELETE FROM subscriptions WHERE id = %s RETURNING id", (subscription_id,))
        return row is not None

    async def count_subscriptions(self) -> int:
        """How many subscriptions exist."""
        row = await self._one("SELECT count(*) AS n FROM subscriptions", ())
        return int(row["n"]) if row else 0

    # --- matching (inside the consumer's transaction) ---------------------------------------------

    @staticmethod
    async def matching_subscriptions(conn: psycopg.AsyncConnection, event_type: str) -> list[SubscriptionRow]:
        """Enabled subscriptions whose patterns match the event type (subject globs are checked by the caller)."""
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT * FROM subscriptions WHERE enabled AND event_types && %s ORDER BY id",
                              (candidate_patterns(event_type),))
            return [SubscriptionRow(**r) for r in await cur.fetchall()]

    @staticmethod
    async def create_notifications(
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
                "INSERT INTO notifications (id, subscription_id, subscription_name, event_id, event_type,"
                " event_subject, event_source, event_time, event_data, max_attempts, next_attempt_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())"
                " ON CONFLICT DO NOTHING RETURNING id",
                (nid, subscription.id, subscription.name, event_id, event_type, event_subject, event_source,
                 event_time, Jsonb(event_data), max_attempts),
            )
            if await cur.fetchone():
                created.append(nid)
        return created

    # --- notifications ---------------------------------------------------------------------------

    async def _with_attempts(self, rows: list[dict[str, Any]]) -> list[NotificationRow]:
        ids = [r["id"] for r in rows]
        attempts: dict[uuid.UUID, list[AttemptRow]] = {i: [] for i in ids}
        if ids:
            for a in await self._all("SELECT * FROM delivery_attempts WHERE notification_id = ANY(%s)"
                                     " ORDER BY notification_id, delivery, attempt", (ids,)):
                attempts[a["notification_id"]].append(AttemptRow(**a))
        return [NotificationRow(**r, attempts=attempts[r["id"]]) for r in rows]

    async def get_notification(self, nid: uuid.UUID) -> NotificationRow | None:
        """One notification with its attempts, or None."""
        row = await self._one("SELECT * FROM notifications WHERE id = %s", (nid,))
        return (await self._with_attempts([row]))[0] if row else None

    async def list_notifications(self, flt: NotificationFilter, page: PageRequest) -> Page[NotificationRow]:
        """A page of notifications with their attempts and how many match in all."""
        where, params = flt.where()
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            raw = await fetch_page(cur, page, select="*", from_="notifications", where=where, params=params)
        return Page(await self._with_attempts(raw.items), raw.next_page_token, raw.total_size)

    async def count_notifications(self) -> int:
        """How many notifications exist."""
        row = await self._one("SELECT count(*) AS n FROM notifications", ())
        return int(row["n"]) if row else 0

    async def start_new_delivery(self, nid: uuid.UUID, max_attempts: int) -> tuple[NotificationRow | None, str]:
        """Make a DELIVERED or FAILED notification PENDING on its next delivery.

        Returns (row, "") on success, (None, "") when there is no such notification, and
        (None, state) when its current delivery is not finished.
        """
        row = await self._one(
            "UPDATE notifications SET delivery = delivery + 1, attempt_count = 0, state = 'PENDING',"
            " max_attempts = %s, last_error = '', next_attempt_at = now(), lease_until = NULL,"
            " delivered_at = NULL, updated_at = now()"
            " WHERE id = %s AND state IN ('DELIVERED', 'FAILED') RETURNING *",
            (max_attempts, nid),
        )
        if row:
            return (await self._with_attempts([row]))[0], ""
        current = await self._one("SELECT state FROM notifications WHERE id = %s", (nid,))
        return None, current["state"] if current else ""

    # --- delivery (the worker's side) ------------------------------------------------------------

    async def claim_attempt(self, nid: uuid.UUID, delivery: int, *, worker: str, lease_seconds: float) -> Claim:
        """Decide what a delivery task should do and, for "send", record the attempt as IN_PROGRESS.

        One transaction, with the notification's advisory lock (waits for the consumer that is
        creating it) and its row lock (one claim at a time). An expired DELIVERING lease means the
        worker holding it stopped: its attempt is marked ABANDONED and counts toward the limit.
        """
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (str(nid),))
            await cur.execute("SELECT *, lease_until > now() AS leased FROM notifications WHERE id = %s FOR UPDATE",
                              (nid,))
            found = await cur.fetchone()
            if found is None:
                return Claim("missing")
            leased = found.pop("leased")
            row = NotificationRow(**found)
            if row.delivery != delivery or row.state in FINAL_STATES:
                return Claim("done", row)
            if row.state == "DELIVERING":
                if leased:
                    return Claim("busy", row)
                await cur.execute(
                    "UPDATE delivery_attempts SET outcome = 'ABANDONED', error = %s, finished_at = now()"
                    " WHERE notification_id = %s AND outcome = 'IN_PROGRESS'", (ABANDONED_ERROR, nid))
            if row.attempt_count >= row.max_attempts:
                await cur.execute(
                    "UPDATE notifications SET state = 'FAILED', next_attempt_at = NULL, lease_until = NULL,"
                    " last_error = %s, updated_at = now() WHERE id = %s",
                    (f"gave up after {row.attempt_count} attempts: {row.last_error or ABANDONED_ERROR}", nid))
                return Claim("done", row)
            await cur.execute("SELECT * FROM subscriptions WHERE id = %s", (row.subscription_id,))
            found_sub = await cur.fetchone()
            subscription = SubscriptionRow(**found_sub) if found_sub else None
            attempt = row.attempt_count + 1
            if subscription is None:
                await cur.execute(
                    "INSERT INTO delivery_attempts (notification_id, delivery, attempt, outcome, channel, error,"
                    " worker, finished_at) VALUES (%s, %s, %s, 'PERMANENT_FAILURE', '', %s, %s, now())",
                    (nid, delivery, attempt, "the subscription was deleted", worker))
                await cur.execute(
                    "UPDATE notifications SET state = 'FAILED', attempt_count = %s, next_attempt_at = NULL,"
                    " lease_until = NULL, last_error = 'the subscription was deleted', updated_at = now()"
                    " WHERE id = %s", (attempt, nid))
                return Claim("done", row)
            target = subscription.webhook_url if subscription.channel == "WEBHOOK" else ", ".join(subscription.email_to)
            await cur.execute(
                "INSERT INTO delivery_attempts (notification_id, delivery, attempt, outcome, channel, target, worker)"
                " VALUES (%s, %s, %s, 'IN_PROGRESS', %s, %s, %s)",
                (nid, delivery, attempt, subscription.channel, target, worker))
            await cur.execute(
                "UPDATE notifications SET state = 'DELIVERING', attempt_count = %s,"
                " lease_until = now() + make_interval(secs => %s), updated_at = now() WHERE id = %s",
                (attempt, lease_seconds, nid))
            return Claim("send", row, subscription, attempt)

    async def finish_attempt(self, nid: uuid.UUID, delivery: int, attempt: int, *, outcome: str, status_code: int,
                             error: str, retry_in: float | None) -> str | None:
        """Record an attempt's outcome and the notification's next state; returns that state.

        retry_in is None when no further attempt is allowed (the notification then fails on a
        retryable error too). Returns None when the attempt was taken over meanwhile (its lease ran
        out and another worker claimed the delivery): the attempt's outcome is still recorded.
        """
        if outcome == "DELIVERED":
            state = "DELIVERED"
        elif outcome == "RETRYABLE_FAILURE" and retry_in is not None:
            state = "RETRYING"
        else:
            state = "FAILED"
        last_error = error
        if state == "FAILED" and outcome == "RETRYABLE_FAILURE":
            last_error = f"gave up after {attempt} attempts: {error}"
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                "UPDATE delivery_attempts SET outcome = %s, status_code = %s, error = %s, finished_at = now()"
                " WHERE notification_id = %s AND delivery = %s AND attempt = %s",
                (outcome, status_code, error, nid, delivery, attempt))
            cur = await conn.execute(
                "UPDATE notifications SET state = %s, last_error = %s, lease_until = NULL, updated_at = now(),"
                " next_attempt_at = CASE WHEN %s THEN now() + make_interval(secs => %s) END,"
                " delivered_at = CASE WHEN %s THEN now() END"
                " WHERE id = %s AND delivery = %s AND attempt_count = %s AND state = 'DELIVERING'",
                (state, "" if state == "DELIVERED" else last_error, state == "RETRYING", retry_in or 0,
                 state == "DELIVERED", nid, delivery, attempt))
            return state if cur.rowcount else None

    async def overdue_deliveries(self, grace_seconds: float, limit: int = 100) -> list[tuple[uuid.UUID, int]]:
        """Unfinished deliveries overdue by more than grace (their task was lost); pushes their due time on.

        SKIP LOCKED and the pushed due time keep replicas sweeping at once from taking the same rows.
        """
        rows = await self._all(
            "UPDATE notifications SET next_attempt_at = now() + make_interval(secs => %s)"
            " WHERE id IN (SELECT id FROM notifications WHERE state IN ('PENDING', 'DELIVERING', 'RETRYING')"
            "   AND GREATEST(next_attempt_at, lease_until) < now() - make_interval(secs => %s)"
            "   ORDER BY GREATEST(next_attempt_at, lease_until) LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING id, delivery",
            (grace_seconds, grace_seconds, limit),
        )
        return [(r["id"], r["delivery"]) for r in rows]

    async def delete_finished(self, older_than_days: int, limit: int = 1000) -> int:
        """Delete up to `limit` DELIVERED or FAILED notifications (and their attempts) older than the retention."""
        rows = await self._all(
            "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications"
            " WHERE state IN ('DELIVERED', 'FAILED') AND updated_at < now() - make_interval(days => %s)"
            " LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id",
            (older_than_days, limit),
        )
        return len(rows)
