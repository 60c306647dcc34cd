"""Password sign-in for the login and device pages, rate limited per account and per address.

Failed attempts are counted in PostgreSQL (table login_failures, a fixed window per key), so every
replica agrees: an account (keyed by a hash of the email, whether or not such a user exists) or an
address with too many failures in the window is refused with 429 and Retry-After until the window ends,
even with the right password. An unknown email, a wrong password and a disabled user get one and the
same answer, and an unknown email costs the same argon2 verification as a known one, so neither the
answer nor its timing tells whether an account exists.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.identity.oauth.config import OAuthConfig
from services.identity.oauth.models import User
from services.identity.oauth.store import OAuthStore

_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("protomesh: no such user")
"""Verified against when the email is unknown, so that case takes as long as a wrong password."""

FAILED = "The email or password is not right."
"""The one answer to an unknown email, a wrong password and a disabled user."""


@dataclass(frozen=True)
class LoginOutcome:
    user: User | None = None
    retry_after: int = 0
    """Seconds until another attempt is allowed (429), or 0."""

    @property
    def limited(self) -> bool:
        return self.retry_after > 0


def address_key(address: str) -> str:
    return f"address:{address}"


def account_key(email: str) -> str:
    return "account:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


class LoginGuard:
    """Checks an email and password, with the failure limits of the config."""

    def __init__(self, store: OAuthStore, config: OAuthConfig) -> None:
        self._store = store
        self._config = config

    def sign_in(self, email: str, password: str, address: str) -> LoginOutcome:
        keys = {account_key(email): self._config.login_max_failures_per_account,
                address_key(address): self._config.login_max_failures_per_address}
        wait = self._retry_after(keys)
        if wait:
            return LoginOutcome(retry_after=wait)
        found = self._store.user_by_email(email) if email.strip() else None
        user, password_hash = found if found else (None, _DUMMY_HASH)
        ok = _verify(password_hash or _DUMMY_HASH, password) and user is not None and user.active
        if not ok:
            self._record_failure(list(keys))
            return LoginOutcome()
        self._store.execute("DELETE FROM login_failures WHERE key = %s", (account_key(email),))
        return LoginOutcome(user=user)

    def _retry_after(self, limits: dict[str, int]) -> int:
        rows = self._store.fetch_all(
            "SELECT key, failures, ceil(extract(epoch FROM window_start + make_interval(secs => %s) - now()))::int"
            " AS remaining FROM login_failures WHERE key = ANY(%s)", (self._config.login_failure_window, list(limits)))
        waits = [row["remaining"] for row in rows if row["remaining"] > 0 and row["failures"] >= limits[row["key"]]]
        return max(waits, default=0)

    def _record_failure(self, keys: list[str]) -> None:
        window = self._config.login_failure_window
        for key in keys:
            self._store.execute(
                "INSERT INTO login_failures (key, window_start, failures) VALUES (%s, now(), 1)"
                " ON CONFLICT (key) DO UPDATE SET"
                " failures = CASE WHEN login_failures.window_start + make_interval(secs => %s) > now()"
                "   THEN login_failures.failures + 1 ELSE 1 END,"
                " window_start = CASE WHEN login_failures.window_start + make_interval(secs => %s) > now()"
                "   THEN login_failures.window_start ELSE now() END", (key, window, window))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return bool(_HASHER.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False
