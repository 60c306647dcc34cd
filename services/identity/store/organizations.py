"""Organizations, memberships and invitations, with their events.

Membership changes of one organization are serialised by locking its row first, so the "an
organization keeps at least one owner" rule holds under concurrent demotions and removals.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from chassis import idempotency
from chassis.db import fetch_one
from chassis.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied
from chassis.resources import Page, PageRequest
from chassis.resources.keyset import fetch_page
from protomesh.identity.v1 import events_pb2
from services.identity import events
from services.identity.rows import InvitationRow, MembershipRow, OrganizationRow, UserRow
from services.identity.store._common import publish

_ORG_SELECT = "o.*, (SELECT count(*) FROM memberships m WHERE m.organization_id = o.id)::int AS member_count"
_MEMBER_SELECT = "m.organization_id, m.user_id, m.role, m.created_at, m.updated_at, u.email, u.display_name"
_MEMBER_FROM = "memberships m JOIN users u ON u.id = m.user_id"
_INVITATION_SELECT = "i.*, (i.status = 'pending' AND i.expires_at <= now()) AS expired"

ADDED = events_pb2.MEMBERSHIP_CHANGE_ADDED
ROLE_CHANGED = events_pb2.MEMBERSHIP_CHANGE_ROLE_CHANGED
REMOVED = events_pb2.MEMBERSHIP_CHANGE_REMOVED
INVITED = events_pb2.MEMBERSHIP_CHANGE_INVITED


class OrganizationStore:
    """Queries over organizations, memberships and invitations."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    # --- organizations ---------------------------------------------------------------------------

    async def create(self, *, name: str, display_name: str, created_by: str, owner: UserRow | None,
                     conn: psycopg.AsyncConnection[Any] | None = None,
                     organization_id: uuid.UUID | None = None) -> tuple[OrganizationRow, MembershipRow | None]:
        """Insert an organization (and its owner's membership) with their events; a taken name is
        ALREADY_EXISTS naming `name`. With `conn`, in the caller's transaction (the bootstrap's)."""
        if conn is not None:
            return await self._create(conn, name, display_name, created_by, owner, organization_id)
        async with self._pool.connection() as own, own.transaction():
            await idempotency.claim(own)  # first: a repeat of a keyed request stops here, not at the name
            return await self._create(own, name, display_name, created_by, owner, organization_id)

    async def _create(self, conn: psycopg.AsyncConnection[Any], name: str, display_name: str, created_by: str,
                      owner: UserRow | None, organization_id: uuid.UUID | None = None,
                      ) -> tuple[OrganizationRow, MembershipRow | None]:
        try:
            async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    "INSERT INTO organizations (id, name, display_name, created_by) VALUES (%s, %s, %s, %s)"
                    " RETURNING *, 0 AS member_count",
                    (organization_id or uuid.uuid4(), name, display_name, created_by),
                )
                org = OrganizationRow(**(await cur.fetchone() or {}))
                await publish(conn, events.organization_created(org), events.organization_subject(org.id))
                membership = None
                if owner is not None:
                    membership = await self._insert_member(cur, org.id, owner, "owner")
                    await self._membership_event(conn, membership, ADDED, "", created_by)
                    org = OrganizationRow(**{**org.__dict__, "member_count": 1})
        except psycopg.errors.UniqueViolation:
            raise AlreadyExists(f"an organization named {name!r} already exists", metadata={"field": "name"}) from None
        return org, membership

    async def get(self, organization_id: uuid.UUID) -> OrganizationRow | None:
        """One organization with its member count, or None."""
        row = await fetch_one(self._pool, f"SELECT {_ORG_SELECT} FROM organizations o WHERE o.id = %s",  # noqa: S608 only module constants are interpolated; every value is a %s parameter
                              (organization_id,))
        return OrganizationRow(**row) if row else None

    async def list_organizations(self, user_id: uuid.UUID | None, page: PageRequest,
                                 only: uuid.UUID | None = None) -> Page[OrganizationRow]:
        """One page of organizations (those the user belongs to, when given; only `only`, when given), oldest
        first."""
        where, params = "TRUE", list[Any]()
        if user_id:
            where = "EXISTS (SELECT 1 FROM memberships m WHERE m.organization_id = o.id AND m.user_id = %s)"
            params = [user_id]
        if only:
            where += " AND o.id = %s"
            params.append(only)
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = await fetch_page(cur, page, select=_ORG_SELECT, from_="organizations o", where=where,
                                    params=params, alias="o")
        return rows.map(lambda r: OrganizationRow(**r))

    async def memberships_of(self, user_id: uuid.UUID) -> list[MembershipRow]:
        """Every membership of a user (the OAuth provider reads roles for tokens from these)."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(f"SELECT {_MEMBER_SELECT} FROM {_MEMBER_FROM} WHERE m.user_id = %s"  # noqa: S608 only module constants are interpolated; every value is a %s parameter
                              " ORDER BY m.created_at, m.organization_id", (user_id,))
            return [MembershipRow(**r) for r in await cur.fetchall()]

    # --- memberships -----------------------------------------------------------------------------

    async def members(self, organization_id: uuid.UUID, role: str, page: PageRequest) -> Page[MembershipRow]:
        """One page of an organization's members, oldest first."""
        where, params = "m.organization_id = %s", list[Any]([organization_id])
        if role:
            where += " AND m.role = %s"
            params.append(role)
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = await fetch_page(cur, page, select=_MEMBER_SELECT, from_=_MEMBER_FROM, where=where,
                                    params=params, alias="m")
        return rows.map(lambda r: MembershipRow(**r))

    async def member(self, organization_id: uuid.UUID, user_id: uuid.UUID) -> MembershipRow | None:
        """One membership, or None."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return await self._member(cur, organization_id, user_id)

    async def add_member(self, organization_id: uuid.UUID, user: UserRow, role: str, by: str) -> MembershipRow:
        """Make a user a member; an existing member is ALREADY_EXISTS naming `user_id`."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await idempotency.claim(conn)
            await self._lock(cur, organization_id)
            await cur.execute("SELECT 1 FROM memberships WHERE organization_id = %s AND user_id = %s",
                              (organization_id, user.id))
            if await cur.fetchone():
                raise AlreadyExists(f"{user.email} is already a member; change the role with ChangeMemberRole",
                                    metadata={"field": "user_id"})
            membership = await self._insert_member(cur, organization_id, user, role)
            await self._membership_event(conn, membership, ADDED, "", by)
            return membership

    async def change_role(self, organization_id: uuid.UUID, user_id: uuid.UUID, role: str,
                          by: str) -> MembershipRow | None:
        """Give a member another role (None: not a member); the last owner stays owner."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await self._lock(cur, organization_id)
            current = await self._member(cur, organization_id, user_id)
            if current is None or current.role == role:
                return current
            if current.role == "owner":
                await self._keep_an_owner(cur, organization_id, "give another member the owner role first")
            await cur.execute("UPDATE memberships SET role = %s, updated_at = now()"
                              " WHERE organization_id = %s AND user_id = %s", (role, organization_id, user_id))
            changed = await self._member(cur, organization_id, user_id)
            assert changed is not None  # noqa: S101 narrows a type for mypy, not a check of input: under -O only the error raised would differ
            await self._membership_event(conn, changed, ROLE_CHANGED, current.role, by)
            return changed

    async def remove_member(self, organization_id: uuid.UUID, user_id: uuid.UUID, by: str) -> MembershipRow | None:
        """Remove a member (None: not a member); the last owner cannot be removed."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await self._lock(cur, organization_id)
            current = await self._member(cur, organization_id, user_id)
            if current is None:
                return None
            if current.role == "owner":
                await self._keep_an_owner(cur, organization_id, "give another member the owner role first")
            await cur.execute("DELETE FROM memberships WHERE organization_id = %s AND user_id = %s",
                              (organization_id, user_id))
            await publish(conn, events.membership_changed(
                organization_id=organization_id, user_id=user_id, email=current.email, change=REMOVED, role="",
                previous_role=current.role, by=by, at=await _now(cur)), events.organization_subject(organization_id))
            return current

    # --- invitations -----------------------------------------------------------------------------

    async def invite(self, organization_id: uuid.UUID, email: str, role: str, ttl: timedelta,
                     by: str) -> InvitationRow:
        """A pending invitation; a member's email or a pending invitation for it is ALREADY_EXISTS naming `email`."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await idempotency.claim(conn)
            await self._lock(cur, organization_id)
            await cur.execute("SELECT u.id FROM memberships m JOIN users u ON u.id = m.user_id"
                              " WHERE m.organization_id = %s AND u.email = %s", (organization_id, email))
            if await cur.fetchone():
                raise AlreadyExists(f"{email} is already a member", metadata={"field": "email"})
            # A pending invitation past its expiry gives way to the new one.
            await cur.execute("UPDATE invitations SET status = 'expired', closed_at = expires_at"
                              " WHERE organization_id = %s AND email = %s AND status = 'pending'"
                              " AND expires_at <= now()",
                              (organization_id, email))
            try:
                async with conn.transaction():
                    await cur.execute(
                        "INSERT INTO invitations (id, organization_id, email, role, invited_by, expires_at)"  # noqa: S608 only module constants are interpolated; every value is a %s parameter
                        f" VALUES (%s, %s, %s, %s, %s, now() + %s) RETURNING {_INVITATION_SELECT.replace('i.', '')}",
                        (uuid.uuid4(), organization_id, email, role, by, ttl),
                    )
            except psycopg.errors.UniqueViolation:
                raise AlreadyExists(f"{email} already has a pending invitation", metadata={"field": "email"}) from None
            row = InvitationRow(**(await cur.fetchone() or {}))
            await cur.execute("SELECT id FROM users WHERE email = %s", (email,))
            user = await cur.fetchone()
            await publish(conn, events.membership_changed(
                organization_id=organization_id, user_id=user["id"] if user else None, email=email, change=INVITED,
                role=role, previous_role="", by=by, at=row.created_at), events.organization_subject(organization_id))
            return row

    async def invitations(self, organization_id: uuid.UUID, status: str, page: PageRequest) -> Page[InvitationRow]:
        """One page of an organization's invitations, newest first ('expired' covers pending ones past expiry)."""
        where, params = "i.organization_id = %s", list[Any]([organization_id])
        if status == "pending":
            where += " AND i.status = 'pending' AND i.expires_at > now()"
        elif status == "expired":
            where += " AND (i.status = 'expired' OR (i.status = 'pending' AND i.expires_at <= now()))"
        elif status:
            where += " AND i.status = %s"
            params.append(status)
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = await fetch_page(cur, page, select=_INVITATION_SELECT, from_="invitations i", where=where,
                                    params=params, alias="i")
        return rows.map(lambda r: InvitationRow(**r))

    async def invitation(self, organization_id: uuid.UUID, invitation_id: uuid.UUID) -> InvitationRow | None:
        row = await fetch_one(self._pool, f"SELECT {_INVITATION_SELECT} FROM invitations i"  # noqa: S608 only module constants are interpolated; every value is a %s parameter
                              " WHERE i.id = %s AND i.organization_id = %s", (invitation_id, organization_id))
        return InvitationRow(**row) if row else None

    async def accept(self, organization_id: uuid.UUID, invitation_id: uuid.UUID,
                     user: UserRow) -> tuple[MembershipRow, InvitationRow]:
        """Make the invited user a member. Accepting again answers the same membership; another user's
        email is PERMISSION_DENIED; a cancelled or expired invitation FAILED_PRECONDITION."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await self._lock(cur, organization_id)
            await cur.execute(f"SELECT {_INVITATION_SELECT} FROM invitations i WHERE i.id = %s"  # noqa: S608 only module constants are interpolated; every value is a %s parameter
                              " AND i.organization_id = %s FOR UPDATE", (invitation_id, organization_id))
            found = await cur.fetchone()
            if found is None:
                raise NotFound("invitation", str(invitation_id))
            invitation = InvitationRow(**found)
            if invitation.email != user.email:
                raise PermissionDenied("this invitation is for another email address")
            existing = await self._member(cur, organization_id, user.id)
            if invitation.status == "accepted" and existing is not None:
                return existing, invitation
            if invitation.status != "pending" or invitation.expired:
                state = "expired" if invitation.expired else invitation.status
                raise FailedPrecondition(f"the invitation is {state}; ask for a new one")
            await cur.execute(f"UPDATE invitations i SET status = 'accepted', closed_at = now() WHERE id = %s"  # noqa: S608 only module constants are interpolated; every value is a %s parameter
                              f" RETURNING {_INVITATION_SELECT}", (invitation_id,))
            invitation = InvitationRow(**(await cur.fetchone() or {}))
            if existing is not None:
                return existing, invitation  # already a member by another way: keep their role
            membership = await self._insert_member(cur, organization_id, user, invitation.role)
            await self._membership_event(conn, membership, ADDED, "", str(user.id))
            return membership, invitation

    async def cancel(self, organization_id: uuid.UUID, invitation_id: uuid.UUID) -> InvitationRow | None:
        """Cancel a pending invitation (others are answered as they are); None when there is none."""
        row = await fetch_one(self._pool, f"UPDATE invitations i SET status = 'cancelled', closed_at = now()"  # noqa: S608 only module constants are interpolated; every value is a %s parameter
                              " WHERE id = %s AND organization_id = %s AND status = 'pending'"
                              f" RETURNING {_INVITATION_SELECT}", (invitation_id, organization_id))
        return InvitationRow(**row) if row else await self.invitation(organization_id, invitation_id)

    # --- helpers ---------------------------------------------------------------------------------

    @staticmethod
    async def _lock(cur: psycopg.AsyncCursor[Any], organization_id: uuid.UUID) -> None:
        await cur.execute("SELECT id FROM organizations WHERE id = %s FOR UPDATE", (organization_id,))
        if await cur.fetchone() is None:
            raise NotFound("organization", str(organization_id))

    @staticmethod
    async def _member(cur: psycopg.AsyncCursor[Any], organization_id: uuid.UUID,
                      user_id: uuid.UUID) -> MembershipRow | None:
        await cur.execute(f"SELECT {_MEMBER_SELECT} FROM {_MEMBER_FROM} WHERE m.organization_id = %s"  # noqa: S608 only module constants are interpolated; every value is a %s parameter
                          " AND m.user_id = %s", (organization_id, user_id))
        row = await cur.fetchone()
        return MembershipRow(**row) if row else None

    @staticmethod
    async def _insert_member(cur: psycopg.AsyncCursor[Any], organization_id: uuid.UUID, user: UserRow,
                             role: str) -> MembershipRow:
        await cur.execute("INSERT INTO memberships (organization_id, user_id, role) VALUES (%s, %s, %s)"
                          " RETURNING organization_id, user_id, role, created_at, updated_at",
                          (organization_id, user.id, role))
        row = await cur.fetchone() or {}
        return MembershipRow(**row, email=user.email, display_name=user.display_name)

    @staticmethod
    async def _keep_an_owner(cur: psycopg.AsyncCursor[Any], organization_id: uuid.UUID, hint: str) -> None:
        await cur.execute("SELECT count(*) AS n FROM memberships WHERE organization_id = %s AND role = 'owner'",
                          (organization_id,))
        counted = await cur.fetchone()
        if counted is None or counted["n"] <= 1:
            raise FailedPrecondition(f"an organization keeps at least one owner: {hint}")

    @staticmethod
    async def _membership_event(conn: psycopg.AsyncConnection[Any], row: MembershipRow,
                                change: events_pb2.MembershipChange,
                                previous_role: str, by: str) -> None:
        await publish(conn, events.membership_changed(
            organization_id=row.organization_id, user_id=row.user_id, email=row.email,
            change=change,
            role=row.role, previous_role=previous_role, by=by, at=row.updated_at),
            events.organization_subject(row.organization_id))


async def _now(cur: psycopg.AsyncCursor[Any]) -> datetime:
    """The transaction's time (what now() gives every statement of it)."""
    await cur.execute("SELECT now() AS now")
    row = await cur.fetchone()
    assert row is not None  # noqa: S101 narrows a type for mypy, not a check of input: under -O only the error raised would differ
    now: datetime = row["now"]
    return now
