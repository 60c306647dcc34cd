"""Password hashing with argon2id (argon2-cffi), off the event loop.

A hash costs tens of milliseconds of CPU and 64 MiB of memory by design, so it runs in a worker
thread: the replica keeps serving other calls meanwhile. Passwords are never logged; the hash is a
PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash) that carries its own parameters, so the
parameters can be raised later and old hashes still verify (and are re-hashed on the next login).
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()
"""argon2-cffi's defaults are RFC 9106's second recommended option: argon2id, t=3, m=64 MiB, p=4."""

_DUMMY_HASH = _HASHER.hash("protomesh: a password nobody has")
"""Verified against when there is no user, so an unknown email costs what a wrong password costs
(no timing difference tells whether an account exists)."""


async def hash_password(password: str) -> str:
    """The argon2id PHC string of a password."""
    return await asyncio.to_thread(_HASHER.hash, password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches the stored hash; with no hash (unknown user) it still spends the same time."""
    if stored is None:
        await asyncio.to_thread(_verify, _DUMMY_HASH, password)
        return False
    return await asyncio.to_thread(_verify, stored, password)


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash uses weaker parameters than today's (re-hash it after a successful login)."""
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True
