"""Deliveries, the worker's side: claiming an attempt, recording its outcome, the sweeper's queries.

These are the service's own housekeeping, not a caller's: they find rows by id (from a task the consumer
queued) or by due time across organizations, and the worker then acts within the row's organization
(chassis.acting_for in services.notification.delivery). A notification is only ever sent through a
subscription of its own organization: the claim looks the subscription up with both.
"""

from __future__ import annotations

import uuid

from psycopg.rows import dict_row

from services.notification.rows import Claim, NotificationRow, SubscriptionRow
from services.notification.store.base import Queries

FINAL_STATES = ("DELIVERED", "FAILED")
ABANDONED_ERROR = "the replica making this attempt stopped before recording its outcome; the receiver may have it"


class DeliveryStore(Queries):
    """Attempts and the delivery state of notifications, under row and advisory locks."""

    async def claim(self, nid: uuid.UUID, delivery: int, *, worker: str, lease_seconds: float) -> Claim:
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
            await cur.execute("SELECT * FROM subscriptions WHERE id = %s AND organization_id = %s",
                              (row.subscription_id, row.organization_id))
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

    async def finish(self, nid: uuid.UUID, delivery: int, attempt: int, *, outcome: str, status_code: int,
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

    async def overdue(self, grace_seconds: float, limit: int = 100) -> list[tuple[uuid.UUID, int]]:
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

