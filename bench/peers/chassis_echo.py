"""Our side of the runtime-overhead comparison: the same GetAgent handler as a chassis service.

`chassis.run` with everything a replica of the mesh has for a service without a database:
tracing (when OTEL_EXPORTER_OTLP_ENDPOINT is set), Prometheus metrics, one JSON log line per
call, error mapping, health and reflection. Settings come from the environment (GRPC_PORT...).

    GRPC_PORT=50998 python -m bench.peers.chassis_echo
"""

from __future__ import annotations

import grpc

import chassis
from bench.peers.handler import lookup
from chassis.errors import NotFound
from chassis.server import run_process
from protomesh.agent.v1 import agent_service_pb2, agent_service_pb2_grpc


class EchoAgentServicer(agent_service_pb2_grpc.AgentServiceServicer):
    """Only GetAgent, from memory; an unknown id is the chassis's NotFound."""

    def __init__(self, replica: chassis.Replica, deps: None) -> None:
        self._replica = replica

    async def GetAgent(self, request: agent_service_pb2.GetAgentRequest,
                       context: grpc.aio.ServicerContext) -> agent_service_pb2.GetAgentResponse:
        response = lookup(request)
        if response is None:
            raise NotFound("agent", request.agent_id)
        return response


def build() -> chassis.Service[None, None]:
    """A chassis service named bench-echo serving AgentService.GetAgent from memory."""
    return chassis.Service(
        name="bench-echo",
        description="GetAgent from memory, for the runtime-overhead benchmark.",
        servicers=[EchoAgentServicer],
    )


if __name__ == "__main__":
    run_process(build(), chassis.Settings.from_env("bench-echo"))
