"""A chassis replica for the tracing tests: GetAgent from memory (bench.peers.handler), one id answered slowly.

    GRPC_PORT=... OTEL_EXPORTER_OTLP_ENDPOINT=... python -m tests.runtime.traced_echo
"""

from __future__ import annotations

import asyncio
import uuid

import grpc

import chassis
from bench.peers.handler import lookup
from chassis.errors import NotFound
from chassis.server import run_process
from protomesh.agent.v1 import agent_service_pb2, agent_service_pb2_grpc

SLOW_ID = str(uuid.UUID(int=1))
"""The agent answered after SLOW_SECONDS (a known agent: the slow call succeeds)."""
SLOW_SECONDS = 0.3


class TracedEchoServicer(agent_service_pb2_grpc.AgentServiceServicer):
    def __init__(self, replica: chassis.Replica, deps: None) -> None:
        self._replica = replica

    async def GetAgent(self, request: agent_service_pb2.GetAgentRequest,
                       context: grpc.aio.ServicerContext) -> agent_service_pb2.GetAgentResponse:
        if request.agent_id == SLOW_ID:
            await asyncio.sleep(SLOW_SECONDS)
        response = lookup(request)
        if response is None:
            raise NotFound("agent", request.agent_id)
        return response


if __name__ == "__main__":
    run_process(chassis.Service(name="traced-echo", description="GetAgent from memory, for the tracing tests.",
                                servicers=[TracedEchoServicer]), chassis.Settings.from_env("traced-echo"))
