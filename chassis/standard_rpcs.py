"""The standard RPCs every service's contract declares, implemented once: GetHealth, GetReadiness, GetLiveness.

Only the generated request and response types differ between services, so a servicer mixes in the
class built for its generated module, ahead of the generated base class:

    class AgentServicer(health_rpcs(agent_service_pb2), agent_service_pb2_grpc.AgentServiceServicer):
        def __init__(self, replica: Replica, deps: AgentDeps) -> None:
            self._replica = replica

GetInfo stays with each service: it carries the service's own fields.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from protomesh.common.v1 import service_info_pb2


def health_rpcs(pb: ModuleType) -> type:
    """A mixin answering GetHealth, GetReadiness and GetLiveness with `pb`'s response messages.

    The servicer must set `self._replica` (the chassis Replica): GetHealth reports its health,
    GetReadiness answers UNAVAILABLE until the replica is ready, GetLiveness answers SERVING while
    the process can answer at all.
    """

    class HealthRpcs:
        _replica: Any

        async def GetHealth(self, request: Any, context: Any) -> Any:
            return pb.GetHealthResponse(health=self._replica.health.report())

        async def GetReadiness(self, request: Any, context: Any) -> Any:
            return pb.GetReadinessResponse(health=self._replica.health.require_ready())

        async def GetLiveness(self, request: Any, context: Any) -> Any:
            return pb.GetLivenessResponse(state=service_info_pb2.HEALTH_STATE_SERVING)

    HealthRpcs.__qualname__ = HealthRpcs.__name__ = f"HealthRpcs[{pb.__name__}]"
    return HealthRpcs
