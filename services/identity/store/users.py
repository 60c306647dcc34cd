"""Users: create, read, list, rename, enable/disable and password changes, with their events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from chassis.db import contains_pattern, fetch_one
from chassis.errors import AlreadyExists
from chassis.resources import Page, PageRequest
from chassis.resources.keyset import fetch_page
from services.identity import events
from services.identity.rows import UserRow
from services.identity.store._common import publish


@dataclass(frozen=True)
class UserFilter:
    """ListUsers' filters."""

    status: str = ""
    email_contains: str = ""
    organization_id: uuid.UUID | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = ["TRUE"]
        params: list[Any] = []
        if self.status:
            clauses.append("u.status = %s")
            params.append(self.status)
        if self.email_contains:
            clauses.append("u.email ILIKE %s")
            params.append(contains_pattern(self.email_contains))
        if self.organization_id:
            clauses.append("EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id AND m.organization_id = %s)")
            params.append(self.organization_id)
        return " AND ".join(clauses), params


def _duplicate_email(email: str) -> AlreadyExists:
    return AlreadyExists(f"a user with the email {email!r} already exists", metadata={"field": "email"})


class UserStore:
    """Queries over the users table."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def create(self, *, email: str, display_name: str, password_hash: str, platform_admin: bool,
                     created_by: str, conn: psycopg.AsyncConnection[Any] | None = None) -> UserRow:
        """Insert a user and its UserCreated event; a taken email is ALREADY_EXISTS naming `email`.

        With `conn` it runs in the caller's transaction (the bootstrap creates a user and an organization
        together); otherwise in its own.
        """
        if conn is not None:
            return await self._create(conn, email, display_name, password_hash, platform_admin, created_by)
        async with self._pool.connection() as own, own.transaction():
            return await self._create(own, email, display_name, password_hash, platform_admin, created_by)

    async def _create(self, conn: psycopg.AsyncConnection[Any], email: str, display_name: str, password_hash: str,
                      platform_admin: bool, created_by: str) -> UserRow:
        try:
            async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    "INSERT INTO users (id, email, display_name, password_hash, platform_admin, created_by)"
                    " VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
                    (uuid.uuid4(), email, display_name, password_hash, platform_admin, created_by),
                )
                row = UserRow(**(await cur.fetchone() or {}))
                await publish(conn, events.user_created(row), events.user_subject(row.id))
        except psycopg.errors.UniqueViolation:
            raise _duplicate_email(email) from None
        return row

    async def get(self, user_id: uuid.UUID) -> UserRow | None:
        """One user, or None."""
        row = await fetch_one(self._pool, "SELECT * FROM users WHERE id = %s", (user_id,))
        return UserRow(**row) if row else None

    async def get_visible(self, user_id: uuid.UUID, organization_id: uuid.UUID | None) -> UserRow | None:
        """One user who is a member of the organization (any user, for None: a platform admin), or None."""
        row = await fetch_one(
            self._pool, "SELECT * FROM users u WHERE u.id = %(id)s AND (%(org)s::uuid IS NULL OR EXISTS"
            " (SELECT 1 FROM memberships m WHERE m.user_id = u.id AND m.organization_id = %(org)s::uuid))",
            {"id": user_id, "org": organization_id})
        return UserRow(**row) if row else None

    async def by_email(self, email: str) -> UserRow | None:
        """The user with this (normalised) email, or None."""
        row = await fetch_one(self._pool, "SELECT * FROM users WHERE email = %s", (email,))
        return UserRow(**row) if row else None

    async def list_users(self, flt: UserFilter, page: PageRequest) -> Page[UserRow]:
        """One page of matching users, oldest first, with the count of all that match."""
        where, params = flt.where()
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = await fetch_page(cur, page, select="u.*", from_="users u", where=where, params=params, alias="u")
        return rows.map(lambda r: UserRow(**r))

    async def rename(self, user_id: uuid.UUID, display_name: str) -> UserRow | None:
        """Set the display name; None when there is no such user."""
        row = await fetch_one(self._pool, "UPDATE users SET display_name = %s, updated_at = now() WHERE id = %s"
                              " RETURNING *", (display_name, user_id))
        return UserRow(**row) if row else None

    async def set_status(self, user_id: uuid.UUID, status: str, by: str) -> UserRow | None:
        """Disable or enable; a real change gets its event, and disabling ends every session (sessions_valid_after).

        None when there is no such user; a user already in that status is returned unchanged.
        """
        ends_sessions = ", sessions_valid_after = now()" if status == "disabled" else ""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"UPDATE users SET status = %s, updated_at = now(){ends_sessions}"  # noqa: S608 ends_sessions is one of two fixed fragments; the values are %s parameters
                " WHERE id = %s AND status <> %s RETURNING *",
                (status, user_id, status),
            )
            changed = await cur.fetchone()
            if changed is None:
                await cur.execute("SELECT * FROM users WHERE id = %s", (user_id,))
                same = await cur.fetchone()
                return UserRow(**same) if same else None
            row = UserRow(**changed)
            event = events.user_disabled(row, by) if status == "disabled" else events.user_enabled(row, by)
            await publish(conn, event, events.user_subject(row.id))
            return row

    async def set_password(self, user_id: uuid.UUID, password_hash: str, by: str) -> UserRow | None:
        """Store a new password hash and end the user's sessions (their refresh tokens are refused), with
        PasswordChanged; None when there is no such user."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "UPDATE users SET password_hash = %s, password_changed_at = now(), sessions_valid_after = now(),"
                " updated_at = now() WHERE id = %s RETURNING *",
                (password_hash, user_id),
            )
            found = await cur.fetchone()
            if found is None:
                return None
            row = UserRow(**found)
            await publish(conn, events.password_changed(row, by), events.user_subject(row.id))
            return row
