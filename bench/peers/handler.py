"""The one handler both sides of the runtime-overhead comparison run: GetAgent answered from memory.

It is the real GetAgent's request and response (same messages, same `agent_message` conversion,
the same id validation) without the database, so the bare grpc.aio server and the chassis replica
do exactly the same work and any difference is the runtime's.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from chassis.protos import parse_uuid
from protomesh.agent.v1 import agent_service_pb2
from services.agent.messages import agent_message
from services.agent.store import AgentRow

METHOD = "/protomesh.agent.v1.AgentService/GetAgent"
ORGANIZATION = "bench"
"""The organization owning the in-memory agents (every agent has one), and the one the callers' claims name."""
AGENT_IDS = [uuid.UUID(int=i + 1) for i in range(64)]
_NOW = datetime(2025, 1, 1, tzinfo=UTC)
AGENTS = {
    agent_id: AgentRow(
        id=agent_id, name=f"bench-agent-{n}", type="calculator", description="served from memory by the benchmark",
        capabilities=["math.evaluate"], config={"greeting": "hello", "repeat": 2}, labels={"team": "bench"},
        created_at=_NOW, updated_at=_NOW, organization_id=ORGANIZATION, current_execution_id=None,
    )
    for n, agent_id in enumerate(AGENT_IDS)
}


def lookup(request: agent_service_pb2.GetAgentRequest) -> agent_service_pb2.GetAgentResponse | None:
    """The response for a known id, or None (the caller answers NOT_FOUND in its own way)."""
    parsed = parse_uuid(request.agent_id)
    row = AGENTS.get(parsed) if parsed else None
    return agent_service_pb2.GetAgentResponse(agent=agent_message(row)) if row else None


def request_payloads() -> list[bytes]:
    """Serialized requests the load generator cycles through (one per known agent)."""
    return [agent_service_pb2.GetAgentRequest(agent_id=str(i)).SerializeToString() for i in AGENT_IDS]
