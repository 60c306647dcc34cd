"""Signing keys: RS256 (RSA 2048) keys in PostgreSQL, their private halves sealed with the identity cipher.

States (docs/identity.md): `next` is published in the JWKS and signs nothing yet, `current` signs,
`retiring` signs nothing more and stays published until the last token it signed has expired
(retired_at + the access token lifetime); then the row is deleted. A rotation promotes `next` only once
it has been published for IDENTITY_KEY_PUBLISH_LEAD, so no gateway ever meets a token signed by a key
it has not fetched; the rotation also creates the following `next` at once, so the one after can come
as soon as the lead has passed again.

Every replica signs with the key the database calls current: it re-reads the keys every few seconds
(`run_reload`), and the replica that rotates re-reads at once. During those seconds another replica may
still sign with the key just retired, which is still published, so its tokens verify.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc.jwk import KeySet, RSAKey
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from chassis.crypto import Cipher, Sealed
from chassis.errors import FailedPrecondition
from chassis.idempotency import claim
from services.identity.oauth.config import ALG, OAuthConfig

logger = logging.getLogger(__name__)

_LOCK = "protomesh.identity.signing_keys"
"""Advisory lock serialising key creation and rotation across replicas."""


@dataclass(frozen=True)
class KeyRow:
    """A signing key's public side and its rotation times."""

    kid: str
    alg: str
    state: str
    public_jwk: dict[str, Any]
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None

    def expires_at(self, access_token_ttl: int) -> datetime | None:
        """When it leaves the JWKS: the last token it signed has expired by then."""
        return self.retired_at + timedelta(seconds=access_token_ttl) if self.retired_at else None


def _new_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"use": "sig", "alg": ALG}, private=True, auto_kid=True)


class SigningKeys:
    """The replica's view of the signing keys: the current private key (cached) and the published set."""

    def __init__(self, pool: AsyncConnectionPool, cipher: Cipher, config: OAuthConfig) -> None:
        self._pool = pool
        self._cipher = cipher
        self._config = config
        self._current: RSAKey | None = None
        self._published = KeySet([])
        self._published_document: dict[str, Any] | None = None

    # --- what token issuing reads (from worker threads too: a plain attribute read) -----------------

    def signing_key(self) -> RSAKey:
        """The private key new tokens are signed with."""
        if self._current is None:
            raise RuntimeError("no current signing key loaded yet")
        return self._current

    def published_document(self) -> dict[str, Any] | None:
        """The JWKS document as last loaded (None before the first load). The JWKS endpoint serves this, not a
        fresh read: the keys are public and change only by a rotation published a lead time ahead, so a gateway
        refetching while PostgreSQL is away still gets them (a failed refetch would fail every bearer call)."""
        return self._published_document

    def published_keys(self) -> KeySet:
        """The published public keys as last loaded (at most a reload interval old), to verify our tokens."""
        return self._published

    # --- database ------------------------------------------------------------------------------------

    async def rows(self) -> list[KeyRow]:
        """Every key row, newest first."""
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT kid, alg, state, public_jwk, created_at, activated_at, retired_at"
                              " FROM signing_keys ORDER BY created_at DESC")
            return [KeyRow(**row) for row in await cur.fetchall()]

    async def published(self) -> list[KeyRow]:
        """The keys in the JWKS: next, current, and retiring ones whose tokens may still be unexpired."""
        now = await self._now()
        ttl = self._config.access_token_ttl
        return [row for row in await self.rows()
                if row.state != "retiring" or (row.expires_at(ttl) or now) > now]

    async def jwks(self) -> dict[str, Any]:
        """The JWKS document (public keys only), read fresh from the database."""
        return {"keys": [row.public_jwk for row in await self.published()]}

    async def verification_keys(self) -> KeySet:
        """The published keys as a joserfc KeySet, to verify tokens this service issued."""
        return KeySet.import_key_set(await self.jwks())  # type: ignore[arg-type]

    async def ensure(self) -> None:
        """Create the first `current` key (and a `next`) when there are none; then load the current one.

        Replicas starting together serialise on an advisory lock, so exactly one creates them.
        """
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_LOCK,))
            cur = await conn.execute("SELECT state FROM signing_keys WHERE state IN ('current', 'next')")
            states = {row[0] for row in await cur.fetchall()}
            if "current" not in states:
                await self._insert(conn, "current")
                logger.info("created the first signing key")
            if "next" not in states:
                await self._insert(conn, "next")
        await self.reload()

    async def reload(self) -> None:
        """Load the published keys, and the current private key if it changed since the last load."""
        document = await self.jwks()
        self._published = KeySet.import_key_set(document)  # type: ignore[arg-type]
        self._published_document = document
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("SELECT kid, private_sealed, private_nonce, cipher_key_id FROM signing_keys"
                              " WHERE state = 'current'")
            row = await cur.fetchone()
        if row is None:
            return
        if self._current is not None and self._current.kid == row["kid"]:
            return
        sealed = Sealed(bytes(row["private_sealed"]), bytes(row["private_nonce"]), row["cipher_key_id"])
        private = json.loads(self._cipher.open_bytes(sealed, row["kid"], what="signing key"))
        self._current = RSAKey.import_key(private)
        logger.info("signing with key", extra={"kid": row["kid"]})

    async def run_reload(self) -> None:
        """Re-read the current key every few seconds (a rotation made by another replica)."""
        while True:
            await asyncio.sleep(self._config.key_reload_interval)
            try:
                await self.reload()
            except Exception:
                # PostgreSQL away for a moment: keep signing with the key we have (it is still published).
                logger.warning("could not reload the signing keys", exc_info=True)

    async def rotate(self) -> list[KeyRow]:
        """Promote `next` to current (if published long enough), retire the current, create a new `next`.

        FailedPrecondition when the `next` key has not been published for IDENTITY_KEY_PUBLISH_LEAD yet.
        Returns the keys after the rotation.
        """
        lead = self._config.key_publish_lead
        async with self._pool.connection() as conn, conn.transaction():
            await claim(conn)  # the call's idempotency key (RotateSigningKeyRequest.request_id), if any
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_LOCK,))
            cur = await conn.execute("SELECT kid, extract(epoch FROM now() - created_at) FROM signing_keys"
                                     " WHERE state = 'next'")
            row = await cur.fetchone()
            if row is None:
                # Only after someone deleted it by hand: publish one now, rotate after the lead.
                await self._insert(conn, "next")
                raise FailedPrecondition(f"there was no published next key; one is published now and can "
                                         f"sign in {lead:g}s: rotate again then")
            age = float(row[1])
            if age < lead:
                raise FailedPrecondition(
                    f"the next key {row[0]} has been published for {age:.0f}s; it may sign only after "
                    f"{lead:g}s (IDENTITY_KEY_PUBLISH_LEAD), so gateways have fetched it: retry in "
                    f"{lead - age:.0f}s", metadata={"retry_after_seconds": str(int(lead - age) + 1)})
            await conn.execute("UPDATE signing_keys SET state = 'retiring', retired_at = now()"
                               " WHERE state = 'current'")
            await conn.execute("UPDATE signing_keys SET state = 'current', activated_at = now() WHERE kid = %s",
                               (row[0],))
            await self._insert(conn, "next")
            await conn.execute("DELETE FROM signing_keys WHERE state = 'retiring'"
                               " AND retired_at + make_interval(secs => %s) < now()",
                               (self._config.access_token_ttl,))
        logger.info("rotated the signing keys", extra={"kid": row[0]})
        await self.reload()
        return await self.rows()

    async def _insert(self, conn: Any, state: str) -> None:
        key = _new_key()
        kid = str(key.kid)
        sealed = self._cipher.seal_bytes(json.dumps(key.as_dict(private=True)).encode(), kid)
        await conn.execute(
            "INSERT INTO signing_keys (kid, alg, state, public_jwk, private_sealed, private_nonce, cipher_key_id,"
            " activated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, CASE WHEN %s::text = 'current' THEN now() END)",
            (kid, ALG, state, json.dumps(key.as_dict(private=False)), sealed.ciphertext, sealed.nonce,
             sealed.key_id, state))

    async def _now(self) -> datetime:
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT now()")
            row = await cur.fetchone()
            assert row is not None  # noqa: S101 narrows a type for mypy, not a check of input: under -O only the error raised would differ
            now: datetime = row[0]
            return now


def by_state(rows: Sequence[KeyRow], state: str) -> KeyRow | None:
    """The first key in a state (there is at most one current and one next)."""
    return next((r for r in rows if r.state == state), None)
