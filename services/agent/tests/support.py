"""Small helpers the agent service's tests share."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2

from protomesh.agent.v1 import agent_pb2
from protomesh.agent.v1 import agent_service_pb2 as pb
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub
from tests.support.errors import status_of


def violation_texts(error: grpc.RpcError) -> dict[str, str]:
    """The BadRequest's field violations of an INVALID_ARGUMENT error: field -> description."""
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    texts: dict[str, str] = {}
    for detail in status_of(error).details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            texts |= {v.field: v.description for v in bad.field_violations}
    return texts


async def register(stub: AgentServiceStub, name: str, type_: str = "calculator", **fields: Any) -> agent_pb2.Agent:
    """Register an agent and return it."""
    reply = await stub.RegisterAgent(pb.RegisterAgentRequest(name=name, type=type_, **fields))
    return reply.agent
