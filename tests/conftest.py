"""Fixtures every test tree under tests/ may use: the session's PostgreSQL and a fresh NATS per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chassis.tooling.infra.nats import NatsProcess
from chassis.tooling.infra.postgres import PostgresProcess
from tests.support.infra_fixtures import fresh_nats, session_postgres


@pytest.fixture(scope="session")
def postgres(pytestconfig: pytest.Config) -> PostgresProcess:
    """One PostgreSQL for the session (shared with in-process services); users create their own databases."""
    return session_postgres(pytestconfig)


@pytest.fixture
async def nats_server() -> AsyncIterator[NatsProcess]:
    """A fresh nats-server with JetStream per test (its streams start empty)."""
    async with fresh_nats() as server:
        yield server
