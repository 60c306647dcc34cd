"""Real PostgreSQL and NATS for tests: one PostgreSQL per test session, a fresh nats-server when asked.

PostgreSQL is started on first use and kept on the pytest config, so every tree of tests (tests/ and
each service's own tests/, which no shared conftest reaches) uses the same server; every user takes a
database of its own on it. NATS is not shared: stream names, work queues and registry buckets are
global to a server, so a service's leftovers from one test would reach the next; a server starts in
about 50 ms, so each user gets its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chassis.tooling.infra.nats import NatsProcess
from chassis.tooling.infra.postgres import PostgresProcess

_POSTGRES = pytest.StashKey[PostgresProcess]()


def session_postgres(config: pytest.Config) -> PostgresProcess:
    """The session's PostgreSQL (durability off), started on first use and stopped when pytest exits."""
    if _POSTGRES in config.stash:
        return config.stash[_POSTGRES]
    folder = Path(tempfile.mkdtemp(prefix="protomesh-test-pg-"))
    folder.chmod(0o755)  # as root PostgreSQL runs as another user that must reach its data folder
    server = PostgresProcess(folder / "data", durable=False)

    def remove() -> None:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)

    server.start()
    config.add_cleanup(remove)
    config.stash[_POSTGRES] = server
    return server


@contextlib.asynccontextmanager
async def fresh_nats() -> AsyncIterator[NatsProcess]:
    """A new nats-server with JetStream (empty streams, empty registry), removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="protomesh-test-nats-"))
    server = NatsProcess(folder / "nats", durable=False)
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(folder, ignore_errors=True)
