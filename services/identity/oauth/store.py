"""The provider's tables, read and written synchronously: Authlib's grant logic is synchronous, so the
HTTP handlers run it in worker threads (asyncio.to_thread) over a small psycopg ConnectionPool.

Every single-use thing is claimed by one conditional UPDATE (a code, a refresh token, a device code), so
two replicas (or two threads) presenting the same one cannot both win.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from services.identity.oauth.models import (
    AuthorizationCode,
    Client,
    DeviceCredential,
    Membership,
    RefreshToken,
    User,
)


def digest(secret: str) -> bytes:
    """SHA-256 of a high-entropy secret (a code or token): what is stored and looked up instead of it."""
    return hashlib.sha256(secret.encode()).digest()


def client_from_row(row: dict[str, Any]) -> Client:
    return Client(
        client_id=row["client_id"], name=row["name"],
        organization_id=str(row["organization_id"]) if row["organization_id"] else None,
        grant_types=tuple(row["grant_types"]), redirect_uris=tuple(row["redirect_uris"]),
        scopes=tuple(row["scopes"]), roles=tuple(row["roles"]), public=row["public"],
        secret_hash=row["secret_hash"], created_by=row["created_by"], created_at=row["created_at"],
        disabled_at=row["disabled_at"])


_REFRESH_COLUMNS = ("token_hash, family_id::text, family_created_at, client_id, user_id::text,"
                    " organization_id::text, scope, auth_time, expires_at, rotated_at, revoked_at")


class OAuthStore:
    """Synchronous access to the provider's tables (and the users the sign-ins are checked against)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def fetch_one(self, query: str, params: Any = ()) -> dict[str, Any] | None:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, params)
            return cur.fetchone()

    def fetch_all(self, query: str, params: Any = ()) -> list[dict[str, Any]]:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def execute(self, query: str, params: Any = ()) -> int:
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.rowcount

    # --- clients --------------------------------------------------------------------------------------

    def client(self, client_id: str) -> Client | None:
        """An enabled client, or None (a disabled client is unknown to every grant)."""
        row = self.fetch_one("SELECT * FROM oauth_clients WHERE client_id = %s AND disabled_at IS NULL", (client_id,))
        return client_from_row(row) if row else None

    # --- users (the tables of migration 001) ----------------------------------------------------------

    def user(self, user_id: str) -> User | None:
        row = self.fetch_one("SELECT id::text AS user_id, email, display_name, status, platform_admin,"
                        " sessions_valid_after FROM users WHERE id = %s", (user_id,))
        return self._with_memberships(row) if row else None

    def user_by_email(self, email: str) -> tuple[User, str] | None:
        """The user with this (normalised) email and their password hash."""
        row = self.fetch_one("SELECT id::text AS user_id, email, display_name, status, platform_admin,"
                        " sessions_valid_after, password_hash FROM users WHERE email = %s",
                        (email.strip().lower(),))
        if not row:
            return None
        return self._with_memberships(row), str(row["password_hash"] or "")

    def _with_memberships(self, row: dict[str, Any]) -> User:
        memberships = self.fetch_all(
            "SELECT m.organization_id::text AS organization_id, o.name AS organization_name, m.role"
            " FROM memberships m JOIN organizations o ON o.id = m.organization_id"
            " WHERE m.user_id = %s ORDER BY m.created_at, o.name", (row["user_id"],))
        return User(user_id=row["user_id"], email=row["email"], display_name=row["display_name"] or "",
                    active=row["status"] == "active", platform_admin=bool(row["platform_admin"]),
                    sessions_valid_after=row["sessions_valid_after"],
                    memberships=tuple(Membership(**m) for m in memberships))

    # --- authorization codes --------------------------------------------------------------------------

    def save_code(self, code: str, item: AuthorizationCode, ttl: int) -> None:
        self.execute("INSERT INTO authorization_codes (code_hash, client_id, user_id, organization_id, redirect_uri,"
                  " scope, nonce, code_challenge, code_challenge_method, auth_time, expires_at)"
                  " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s))",
                  (digest(code), item.client_id, item.user_id, item.organization_id, item.redirect_uri, item.scope,
                   item.nonce, item.code_challenge, item.code_challenge_method, item.auth_time, ttl))

    def claim_code(self, code: str, client_id: str) -> AuthorizationCode | None:
        """The code, marked used, if it is unused and unexpired and was issued to this client.

        A code presented again (RFC 6749 4.1.2: "MUST deny ... SHOULD revoke all tokens previously issued
        based on that authorization code") revokes the refresh family its first exchange started.
        """
        row = self.fetch_one(
            "UPDATE authorization_codes SET used_at = now() WHERE code_hash = %s AND client_id = %s"
            " AND used_at IS NULL AND expires_at > now() RETURNING client_id, user_id::text, organization_id::text,"
            " redirect_uri, scope, nonce, code_challenge, code_challenge_method, auth_time", (digest(code), client_id))
        if row is not None:
            return AuthorizationCode(**row)
        replayed = self.fetch_one("SELECT family_id::text FROM authorization_codes WHERE code_hash = %s"
                             " AND used_at IS NOT NULL", (digest(code),))
        if replayed and replayed["family_id"]:
            self.revoke_family(replayed["family_id"])
        return None

    def link_code_family(self, code_hash_of: str, family_id: str) -> None:
        self.execute("UPDATE authorization_codes SET family_id = %s WHERE code_hash = %s",
                  (family_id, digest(code_hash_of)))

    # --- refresh tokens -------------------------------------------------------------------------------

    def save_refresh(self, token: str, *, family_id: str | None, family_created_at: datetime | None,
                     client_id: str, user: User, scope: str, ttl: int) -> str:
        """Store a refresh token (its hash) in a family (a new one when family_id is None); the family id.

        Every token of a family expires when the family does (its first issue + the refresh lifetime):
        rotation does not stretch a session forever."""
        family = family_id or str(uuid.uuid4())
        self.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, family_created_at, client_id, user_id,"
            " organization_id, scope, auth_time, expires_at) VALUES (%s, %s, coalesce(%s, now()), %s, %s, %s, %s,"
            " to_timestamp(%s), coalesce(%s, now()) + make_interval(secs => %s))",
            (digest(token), family, family_created_at, client_id, user.user_id, user.organization_id, scope,
             user.auth_time, family_created_at, ttl))
        return family

    def claim_refresh(self, token: str, client_id: str) -> RefreshToken | None:
        """The refresh token, marked rotated, if it is live; a reused (already rotated) one revokes its family."""
        row = self.fetch_one(
            f"UPDATE refresh_tokens SET rotated_at = now() WHERE token_hash = %s AND client_id = %s"  # noqa: S608 only module constants are interpolated; every value is a %s parameter
            f" AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > now() RETURNING {_REFRESH_COLUMNS}",
            (digest(token), client_id))
        if row is not None:
            return RefreshToken(**row)
        reused = self.fetch_one("SELECT family_id::text FROM refresh_tokens WHERE token_hash = %s"
                           " AND rotated_at IS NOT NULL", (digest(token),))
        if reused:
            self.revoke_family(reused["family_id"])
        return None

    def refresh_token(self, token: str) -> RefreshToken | None:
        row = self.fetch_one(f"SELECT {_REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = %s", (digest(token),))  # noqa: S608 only module constants are interpolated; every value is a %s parameter
        return RefreshToken(**row) if row else None

    def revoke_family(self, family_id: str) -> int:
        return self.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = %s AND revoked_at IS NULL",
                         (family_id,))

    # --- access tokens --------------------------------------------------------------------------------

    def revoke_access_token(self, jti: str, expires_at: int) -> None:
        self.execute("INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (%s, to_timestamp(%s))"
                  " ON CONFLICT (jti) DO NOTHING", (jti, expires_at))
        self.execute("DELETE FROM revoked_access_tokens WHERE expires_at < now()")

    def access_token_revoked(self, jti: str) -> bool:
        return self.fetch_one("SELECT 1 AS x FROM revoked_access_tokens WHERE jti = %s", (jti,)) is not None

    # --- housekeeping ---------------------------------------------------------------------------------

    def sweep(self, failure_window: int) -> None:
        """Delete expired rows (a day after expiry, so a replay within it is still recognised as one)."""
        self.execute("DELETE FROM authorization_codes WHERE expires_at < now() - interval '1 day'")
        self.execute("DELETE FROM device_codes WHERE expires_at < now() - interval '1 day'")
        self.execute("DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'")
        self.execute("DELETE FROM revoked_access_tokens WHERE expires_at < now()")
        self.execute("DELETE FROM login_failures WHERE window_start < now() - make_interval(secs => %s)",
                     (failure_window,))

    # --- device codes ---------------------------------------------------------------------------------

    def save_device(self, device_code: str, user_code: str, client_id: str, scope: str, *, interval: int,
                    ttl: int) -> None:
        self.execute("INSERT INTO device_codes (device_code_hash, user_code, client_id, scope, interval_seconds,"
                  " expires_at) VALUES (%s, %s, %s, %s, %s, now() + make_interval(secs => %s))",
                  (digest(device_code), user_code, client_id, scope, interval, ttl))

    def poll_device(self, device_code: str) -> DeviceCredential | None:
        """The device authorization, recording this poll: a poll sooner than the interval after the previous
        one is `too_fast`, and the interval grows by 5 seconds for it and every later poll (RFC 8628 3.5)."""
        with self.pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT *, last_polled_at IS NOT NULL AND now() - last_polled_at"
                        " < make_interval(secs => interval_seconds) AS too_fast FROM device_codes"
                        " WHERE device_code_hash = %s FOR UPDATE", (digest(device_code),))
            row = cur.fetchone()
            if row is None or row["used_at"] is not None:
                return None
            interval = row["interval_seconds"] + (5 if row["too_fast"] else 0)
            cur.execute("UPDATE device_codes SET last_polled_at = now(), interval_seconds = %s"
                        " WHERE device_code_hash = %s", (interval, digest(device_code)))
        return DeviceCredential(
            client_id=row["client_id"], user_code=row["user_code"], scope=row["scope"], expires_at=row["expires_at"],
            interval_seconds=interval, too_fast=bool(row["too_fast"]),
            user_id=str(row["user_id"]) if row["user_id"] else None,
            organization_id=str(row["organization_id"]) if row["organization_id"] else None,
            approved=row["approved"])

    def claim_device_approval(self, user_code: str) -> bool:
        """Mark an approved device code used: True only for the one poll that gets the tokens."""
        return self.execute("UPDATE device_codes SET used_at = now() WHERE user_code = %s AND approved"
                         " AND used_at IS NULL", (user_code,)) == 1

    def pending_device(self, user_code: str) -> dict[str, Any] | None:
        """A device authorization still waiting for its user (for the device page)."""
        return self.fetch_one("SELECT d.user_code, d.scope, c.name AS client_name FROM device_codes d"
                         " JOIN oauth_clients c USING (client_id) WHERE d.user_code = %s AND d.approved IS NULL"
                         " AND d.expires_at > now()", (normalise_user_code(user_code),))

    def decide_device(self, user_code: str, user: User, approved: bool) -> bool:
        return self.execute("UPDATE device_codes SET user_id = %s, organization_id = %s, approved = %s,"
                         " decided_at = now() WHERE user_code = %s AND approved IS NULL AND expires_at > now()",
                         (user.user_id, user.organization_id, approved, normalise_user_code(user_code))) == 1


def normalise_user_code(user_code: str) -> str:
    """What a person typed, as Authlib generated it: upper case, one dash in the middle (RFC 8628 6.1)."""
    letters = "".join(ch for ch in user_code.upper() if ch.isalnum())
    return f"{letters[:4]}-{letters[4:]}" if len(letters) == 8 else user_code.strip().upper()
