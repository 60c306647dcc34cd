"""The standard RPCs every service's contract declares, implemented once: GetHealth, GetReadiness, GetLiveness.

Only the generated request and response types differ between services; the mixin finds them from the
servicer's generated base class, so a servicer only lists it ahead of that base:

    class AgentServicer(HealthRpcs, agent_service_pb2_grpc.AgentServiceServicer):
        def __init__(self, replica: Replica, deps: AgentDeps) -> None:
            self._replica = replica

GetInfo stays with each service: it carries the service's own fields.
"""

from __future__ import annotations

from typing import Any

import grpc

from chassis.replica import Replica
from chassis.service import generated_messages
from protomesh.common.v1 import service_info_pb2


class HealthRpcs:
    """GetHealth reports the replica's health, GetReadiness answers UNAVAILABLE until it is ready,
    GetLiveness answers SERVING while the process can answer at all. The servicer sets `self._replica`."""

    _replica: Replica

    async def GetHealth(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return generated_messages(type(self)).GetHealthResponse(health=self._replica.health.report())

    async def GetReadiness(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return generated_messages(type(self)).GetReadinessResponse(health=self._replica.health.require_ready())

    async def GetLiveness(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return generated_messages(type(self)).GetLivenessResponse(state=service_info_pb2.HEALTH_STATE_SERVING)
