"""Registered OAuth clients, asynchronously (for ClientService and the bootstrap)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from chassis.idempotency import claim
from chassis.resources import Key, Keyset, Page, PageRequest
from chassis.resources.keyset import fetch_page
from services.identity.oauth.models import Client, hash_secret
from services.identity.oauth.store import client_from_row

CLIENTS = Keyset("oauth_clients", (Key("created_at", datetime), Key("client_id", str)), descending=True)
"""Newest first, ties broken by client id."""
_SELECT = "*"


def new_client_id() -> str:
    return f"pmc_{secrets.token_hex(10)}"


def new_client_secret() -> str:
    """256 random bits: shown once at registration, stored only as an argon2id hash."""
    return f"pmcs_{secrets.token_urlsafe(32)}"


class ClientStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def register(self, *, name: str, organization_id: str | None, grant_types: Sequence[str],
                       redirect_uris: Sequence[str], scopes: Sequence[str], roles: Sequence[str], public: bool,
                       created_by: str, client_id: str | None = None,
                       conn: psycopg.AsyncConnection[Any] | None = None) -> tuple[Client, str | None]:
        """Register a client; (the client, its secret) — the secret only for a confidential client, only now."""
        secret = None if public else new_client_secret()
        values = (client_id or new_client_id(), name, organization_id, list(grant_types), list(redirect_uris),
                  list(scopes), list(roles), public, hash_secret(secret) if secret else None, created_by)
        query = ("INSERT INTO oauth_clients (client_id, name, organization_id, grant_types, redirect_uris, scopes,"  # noqa: S608 only module constants are interpolated; every value is a %s parameter
                 " roles, public, secret_hash, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                 f" RETURNING {_SELECT}")
        if conn is not None:
            return await _insert(conn, query, values), secret
        async with self._pool.connection() as own, own.transaction():
            await claim(own)
            return await _insert(own, query, values), secret

    async def get(self, client_id: str, organization_id: uuid.UUID | None = None) -> Client | None:
        """One client (of the organization, when given: the tenancy filter of ClientService), or None."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT * FROM oauth_clients WHERE client_id = %s"
                              " AND (%s::uuid IS NULL OR organization_id = %s::uuid)",
                              (client_id, organization_id, organization_id))
            row = await cur.fetchone()
        return client_from_row(row) if row else None

    async def list(self, organization_id: str | None, include_disabled: bool, page: PageRequest) -> Page[Client]:
        where = "(%s::uuid IS NULL OR organization_id = %s::uuid) AND (%s OR disabled_at IS NULL)"
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = await fetch_page(cur, page, select=_SELECT, from_="oauth_clients", where=where,
                                    params=[organization_id, organization_id, include_disabled])
        return rows.map(client_from_row)

    async def disable(self, client_id: str, organization_id: uuid.UUID | None = None) -> Client | None:
        """Disable a client (of the organization, when given; idempotent): no more tokens, and its refresh
        tokens are revoked at once."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("UPDATE oauth_clients SET disabled_at = coalesce(disabled_at, now())"  # noqa: S608 only module constants are interpolated; every value is a %s parameter
                              " WHERE client_id = %s AND (%s::uuid IS NULL OR organization_id = %s::uuid)"
                              f" RETURNING {_SELECT}", (client_id, organization_id, organization_id))
            row = await cur.fetchone()
            if row is not None:
                await cur.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE client_id = %s"
                                  " AND revoked_at IS NULL", (client_id,))
        return client_from_row(row) if row else None


async def _insert(conn: psycopg.AsyncConnection[Any], query: str, values: tuple[Any, ...]) -> Client:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, values)
        row = await cur.fetchone()
    assert row is not None  # noqa: S101 narrows a type for mypy, not a check of input: under -O only the error raised would differ
    return client_from_row(row)
