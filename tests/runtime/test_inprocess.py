"""chassis.testing: a real service served in the test's process, called over a real channel, in milliseconds.

PostgreSQL is the session's; NATS a fresh server per service; no Envoy. What a service's own servicer
tests rely on is shown here on the agent and context services.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import pytest

from chassis.testing import InProcess, serve_in_process
from protomesh.agent.v1 import agent_service_pb2 as agent_pb
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub
from protomesh.context.v1 import context_service_pb2 as context_pb
from protomesh.context.v1.context_service_pb2_grpc import ContextServiceStub
from services.agent.deps import AgentDeps
from tests.support.errors import async_failure, bad_fields
from tests.support.inprocess import build_service, in_process_service, serve_with_test_infra

agent = in_process_service("services.agent", env={"AGENT_WORKERS": "1"})


async def test_register_then_get_over_a_real_channel(agent: InProcess[AgentDeps]) -> None:
    agents = agent.stub(AgentServiceStub)
    registered = (await agents.RegisterAgent(agent_pb.RegisterAgentRequest(name="calc", type="calculator"),
                                             timeout=10)).agent
    fetched = (await agents.GetAgent(agent_pb.GetAgentRequest(agent_id=registered.agent_id), timeout=10)).agent
    assert fetched == registered
    # The typed deps are the lifespan's own, with the service's settings read from the harness's env.
    assert agent.deps.settings.workers == 1
    assert agent.replica.health.serving, agent.replica.health.report()
    assert agent.replica.events is not None and agent.replica.registry is not None


async def test_errors_arrive_as_statuses_with_their_details(agent: InProcess[AgentDeps]) -> None:
    agents = agent.stub(AgentServiceStub)
    missing_name = await async_failure(agents.RegisterAgent,
                                       agent_pb.RegisterAgentRequest(type="no-such-type", description="x" * 2001))
    assert bad_fields(missing_name) == {"name", "type", "description"}
    unknown = await async_failure(agents.GetAgent, agent_pb.GetAgentRequest(agent_id=str(uuid.uuid4())))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND


async def test_background_loops_run_while_serving_and_are_cancelled_at_exit(pytestconfig: pytest.Config) -> None:
    async with serve_with_test_infra(pytestconfig, build_service("services.context"), nats=False) as context:
        loops = [t for t in asyncio.all_tasks() if t.get_name() == "context-cleanup"]
        assert len(loops) == 1 and not loops[0].done()
        info = await context.stub(ContextServiceStub).GetInfo(context_pb.GetInfoRequest(), timeout=10)
        assert info.info.name == "context"
    assert loops[0].cancelled()


async def test_two_services_in_one_test_do_not_collide(pytestconfig: pytest.Config) -> None:
    # Two agents at once (the same schema name, the same stream names) and a context beside them.
    async with (serve_with_test_infra(pytestconfig, build_service("services.agent")) as first,
                serve_with_test_infra(pytestconfig, build_service("services.agent")) as second,
                serve_with_test_infra(pytestconfig, build_service("services.context")) as context):
        assert len({first.replica.bound_port, second.replica.bound_port, context.replica.bound_port}) == 3
        assert first.database_url != second.database_url and first.nats_url != second.nats_url
        request = agent_pb.RegisterAgentRequest(name="same-name", type="calculator")
        # A shared database would refuse the second registration as ALREADY_EXISTS.
        one = (await first.stub(AgentServiceStub).RegisterAgent(request, timeout=10)).agent
        two = (await second.stub(AgentServiceStub).RegisterAgent(request, timeout=10)).agent
        assert one.agent_id != two.agent_id
        listed = await first.stub(AgentServiceStub).ListAgents(agent_pb.ListAgentsRequest(), timeout=10)
        assert [a.agent_id for a in listed.agents] == [one.agent_id]


async def test_start_up_is_quick_after_the_first(pytestconfig: pytest.Config,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    timings: list[tuple[float, float]] = []
    for _ in range(4):
        began = time.perf_counter()
        async with serve_with_test_infra(pytestconfig, build_service("services.agent")) as served:
            started = time.perf_counter()
            await served.stub(AgentServiceStub).GetInfo(agent_pb.GetInfoRequest(), timeout=10)
        timings.append((started - began, time.perf_counter() - started))
    with capsys.disabled():
        print("\nin-process agent (fresh database + nats-server): "
              + ", ".join(f"start {s * 1000:.0f} ms / call+stop {r * 1000:.0f} ms" for s, r in timings))
    # A generous bound, not a benchmark: a loaded CI machine must not fail this.
    assert min(s for s, _ in timings[1:]) < 5.0



async def test_a_start_up_failure_is_raised_by_the_harness() -> None:
    # The agent has migrations, so it needs a database: serve() fails before listening.
    with pytest.raises(RuntimeError, match="needs DATABASE_URL"):
        async with serve_in_process(build_service("services.agent")):
            pytest.fail("the agent served without a database")
