"""A service's tests in a few lines: a fixture serving the service in process, with real PostgreSQL and NATS.

    # services/agent/tests/conftest.py
    from tests.support.inprocess import in_process_service

    agent = in_process_service("services.agent", env={"AGENT_WORKERS": "1"})

    # services/agent/tests/test_servicer.py
    async def test_register(agent: InProcess[AgentDeps]) -> None:
        reply = await agent.stub(AgentServiceStub).RegisterAgent(pb.RegisterAgentRequest(...))

Each use gets a database of its own on the session's PostgreSQL and, unless nats=False, a nats-server
of its own (see tests/support/infra_fixtures.py for why NATS is not shared).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Literal

import pytest

from chassis.service import Service
from chassis.testing import InProcess, serve_in_process
from tests.support.infra_fixtures import fresh_nats, session_postgres


def build_service(package: str) -> Service[Any, Any]:
    """The Service a `services.<name>` package describes, as `python -m` would build it."""
    built: Service[Any, Any] = importlib.import_module(f"{package}.app").build()
    return built


@contextlib.asynccontextmanager
async def serve_with_test_infra(config: pytest.Config, service: Service[Any, Any], *, nats: bool = True,
                                env: Mapping[str, str] | None = None) -> AsyncIterator[InProcess[Any]]:
    """Serve `service` in process on the session's PostgreSQL (a fresh database) and, if asked, a fresh NATS."""
    postgres = session_postgres(config)
    async with contextlib.AsyncExitStack() as stack:
        nats_url = (await stack.enter_async_context(fresh_nats())).url if nats else None
        yield await stack.enter_async_context(
            serve_in_process(service, database_url=postgres.url, nats_url=nats_url, env=env))


def in_process_service(package: str, *, nats: bool = True, env: Mapping[str, str] | None = None,
                       scope: Literal["function", "module", "package", "session"] = "function") -> Callable[..., Any]:
    """A pytest fixture serving `package`'s service in process for each test (or each `scope`).

    Bind it to the name tests ask for: `agent = in_process_service("services.agent")` in a conftest.
    """

    @pytest.fixture(scope=scope)
    async def served(pytestconfig: pytest.Config) -> AsyncIterator[InProcess[Any]]:
        async with serve_with_test_infra(pytestconfig, build_service(package), nats=nats, env=env) as service:
            yield service

    return served
