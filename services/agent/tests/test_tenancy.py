"""Tenancy (docs/authorization.md): agents and executions are their organization's, over a real channel.

A member of organization B names A's agents and executions by id in every RPC: always NOT_FOUND, exactly
like an id that does not exist, and B's lists never show them. A platform admin sees both organizations.
The organization is output only, and executions run on the task queue in their organization.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf import field_mask_pb2, struct_pb2

from chassis import db
from chassis.events.envelope import ORGANIZATION_HEADER, headers_for
from chassis.identity import Principal
from chassis.testing import InProcess, scratch_database
from protomesh.agent.v1 import agent_pb2
from protomesh.agent.v1 import agent_service_pb2 as pb
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub
from protomesh.events.v1 import envelope_pb2
from services.agent.tests.support import register, violation_texts
from tests.support.errors import async_failure
from tests.support.infra_fixtures import session_postgres

ORG_A, ORG_B = f"org-a-{uuid.uuid4().hex[:6]}", f"org-b-{uuid.uuid4().hex[:6]}"
ALICE = Principal(subject="user-alice", kind="user", organization=ORG_A, roles=frozenset({"member"}))
BOB = Principal(subject="user-bob", kind="user", organization=ORG_B, roles=frozenset({"admin"}))
"""An admin of B: every permission in B, none in A."""
ROOT = Principal(subject="user-root", kind="user", organization=ORG_B, roles=frozenset({"member"}),
                 platform_admin=True)
WAIT = 10.0
MIGRATIONS = Path(__file__).parents[1] / "migrations"


def _input(**values: Any) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(values)
    return result


async def _execute(stub: AgentServiceStub, agent: agent_pb2.Agent) -> agent_pb2.Execution:
    request = pb.ExecuteAgentRequest(agent_id=agent.agent_id, input=_input(expression="2*21"), wait=True)
    return (await stub.ExecuteAgent(request, timeout=WAIT)).execution


async def test_another_organizations_agents_and_executions_are_not_found(agent: InProcess[Any]) -> None:
    alice, bob = agent.stub(AgentServiceStub, ALICE), agent.stub(AgentServiceStub, BOB)
    theirs = await register(alice, "shared-name")
    execution = await _execute(alice, theirs)
    assert execution.state == agent_pb2.EXECUTION_STATE_SUCCEEDED, execution.error
    assert theirs.organization_id == ORG_A and execution.organization_id == ORG_A
    # Names are unique per organization: B's taken name tells nothing about A's.
    mine = await register(bob, "shared-name")
    assert mine.organization_id == ORG_B

    aid, xid = theirs.agent_id, execution.execution_id
    calls: list[tuple[Callable[..., Any], Any]] = [
        (bob.GetAgent, pb.GetAgentRequest(agent_id=aid)),
        (bob.UpdateAgent, pb.UpdateAgentRequest(agent_id=aid, description="mine now")),
        (bob.ExecuteAgent, pb.ExecuteAgentRequest(agent_id=aid, input=_input(expression="1"))),
        (bob.GetAgentStatus, pb.GetAgentStatusRequest(agent_id=aid)),
        (bob.GetAgentStatus, pb.GetAgentStatusRequest(agent_id=mine.agent_id, execution_id=xid)),
        (bob.StopAgent, pb.StopAgentRequest(agent_id=aid)),
        (bob.StopAgent, pb.StopAgentRequest(agent_id=mine.agent_id, execution_id=xid)),
        (bob.DeregisterAgent, pb.DeregisterAgentRequest(agent_id=aid)),
    ]
    for call, request in calls:
        error = await async_failure(call, request)
        assert error.code() == grpc.StatusCode.NOT_FOUND, (call, request, error.details())

    listed = await bob.ListAgents(pb.ListAgentsRequest())
    assert [a.agent_id for a in listed.agents] == [mine.agent_id] and listed.page_info.total_size == 1
    found = await bob.DiscoverAgents(pb.DiscoverAgentsRequest(capabilities=["math.evaluate"]))
    assert [a.agent_id for a in found.agents] == [mine.agent_id]
    assert (await bob.GetInfo(pb.GetInfoRequest())).agent_count == 1

    # Nothing B tried changed A's agent.
    still = (await alice.GetAgent(pb.GetAgentRequest(agent_id=aid))).agent
    assert still.description == "" and still.update_time == theirs.update_time
    status = await alice.GetAgentStatus(pb.GetAgentStatusRequest(agent_id=aid))
    assert status.execution.execution_id == xid


async def test_a_platform_admin_sees_every_organization(agent: InProcess[Any]) -> None:
    alice, bob, root = (agent.stub(AgentServiceStub, p) for p in (ALICE, BOB, ROOT))
    a, b = await register(alice, "in-a"), await register(bob, "in-b")
    listed = await root.ListAgents(pb.ListAgentsRequest())
    assert {x.agent_id: x.organization_id for x in listed.agents} == {a.agent_id: ORG_A, b.agent_id: ORG_B}
    assert (await root.GetInfo(pb.GetInfoRequest())).agent_count == 2
    # Its execution of A's agent belongs to A (the agent's organization), and the worker runs it there.
    execution = await _execute(root, a)
    assert execution.state == agent_pb2.EXECUTION_STATE_SUCCEEDED and execution.organization_id == ORG_A
    assert (await alice.GetAgentStatus(pb.GetAgentStatusRequest(agent_id=a.agent_id))).execution == execution
    # What a platform admin creates is its own organization's.
    assert (await register(root, "by-root")).organization_id == ORG_B
    assert (await root.DeregisterAgent(pb.DeregisterAgentRequest(agent_id=a.agent_id))).agent_id == a.agent_id
    assert [x.agent_id for x in (await alice.ListAgents(pb.ListAgentsRequest())).agents] == []


async def test_the_organization_is_output_only(agent: InProcess[Any]) -> None:
    alice = agent.stub(AgentServiceStub, ALICE)
    created = await register(alice, "fixed")
    mask = field_mask_pb2.FieldMask(paths=["organization_id"])
    error = await async_failure(alice.UpdateAgent, pb.UpdateAgentRequest(agent_id=created.agent_id, update_mask=mask))
    assert set(violation_texts(error)) == {"update_mask.paths[0]"}
    # No request message has a field for it: an old or hostile client's unknown field is dropped.
    assert all("organization_id" not in m.fields_by_name for m in pb.DESCRIPTOR.message_types_by_name.values())
    smuggled = pb.RegisterAgentRequest(name="smuggler", type="calculator").SerializeToString() + b"\xfa\x3e\x05org-b"
    reply = await alice.RegisterAgent(pb.RegisterAgentRequest.FromString(smuggled))
    assert reply.agent.organization_id == ORG_A


async def test_a_principal_without_an_organization_owns_nothing_and_sees_nothing(agent: InProcess[Any]) -> None:
    await register(agent.stub(AgentServiceStub, ALICE), "someones")
    nobody = agent.stub(AgentServiceStub, Principal(subject="service:other", kind="service",
                                                    roles=frozenset({"member"})))
    assert list((await nobody.ListAgents(pb.ListAgentsRequest())).agents) == []
    error = await async_failure(nobody.RegisterAgent, pb.RegisterAgentRequest(name="orphan", type="calculator"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "no organization" in str(error.details())


async def test_events_carry_the_organization(agent: InProcess[Any]) -> None:
    alice = agent.stub(AgentServiceStub, ALICE)
    created = await register(alice, "evented")
    await _execute(alice, created)
    assert agent.database_url
    async with await psycopg.AsyncConnection.connect(agent.database_url) as conn:
        cur = await conn.execute("SELECT event_type, envelope FROM agent.outbox"
                                 " WHERE event_type LIKE 'protomesh.agent.%%' ORDER BY seq")
        rows = await cur.fetchall()
    types = {event_type for event_type, _ in rows}
    assert {"protomesh.agent.v1.AgentRegistered", "protomesh.agent.v1.ExecutionSucceeded"} <= types
    for event_type, raw in rows:
        envelope = envelope_pb2.Envelope.FromString(raw)
        assert envelope.organization_id == ORG_A, event_type
        assert headers_for(envelope)[ORGANIZATION_HEADER] == ORG_A


async def test_the_migration_moves_existing_rows_to_the_bootstrap_organization(
        pytestconfig: pytest.Config, tmp_path: Path) -> None:
    before = tmp_path / "before"
    before.mkdir()
    for migration in sorted(MIGRATIONS.glob("00[12]_*.sql")):
        shutil.copy(migration, before)
    async with scratch_database(session_postgres(pytestconfig).url, "tenancy") as url:
        # The identity schema in the same database names the bootstrap organization's id.
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("CREATE SCHEMA identity")
            await conn.execute("CREATE TABLE identity.organizations (id uuid PRIMARY KEY, name text NOT NULL)")
            local = uuid.uuid4()
            await conn.execute("INSERT INTO identity.organizations VALUES (%s, 'other'), (%s, 'local')",
                               (uuid.uuid4(), local))
        assert await db.migrate(url, "agent", before) == [1, 2]
        agent_id = uuid.uuid4()
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("INSERT INTO agent.agents (id, name, type) VALUES (%s, 'old', 'calculator')",
                               (agent_id,))
            await conn.execute("INSERT INTO agent.executions (id, agent_id, state) VALUES (%s, %s, 'SUCCEEDED')",
                               (uuid.uuid4(), agent_id))
        assert await db.migrate(url, "agent", MIGRATIONS) == [3]
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            agents = await (await conn.execute("SELECT organization_id FROM agent.agents")).fetchall()
            executions = await (await conn.execute("SELECT organization_id FROM agent.executions")).fetchall()
            assert agents == executions == [(str(local),)]
            # NOT NULL now, and an execution cannot be in another organization than its agent.
            with pytest.raises(psycopg.errors.NotNullViolation):
                await conn.execute("INSERT INTO agent.agents (id, name, type) VALUES (%s, 'new', 'calculator')",
                                   (uuid.uuid4(),))
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                await conn.execute("INSERT INTO agent.executions (id, agent_id, state, organization_id)"
                                   " VALUES (%s, %s, 'PENDING', 'elsewhere')", (uuid.uuid4(), agent_id))
