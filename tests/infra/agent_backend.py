"""A small recording AgentService backend (grpc.aio in its own thread) for gateway tests."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from protomesh.agent.v1 import agent_pb2, agent_service_pb2, agent_service_pb2_grpc
from protomesh.common.v1 import service_info_pb2

SERVICE_NAME = "protomesh.agent.v1.AgentService"


def _bad_request(field: str, description: str) -> status_pb2.Status:
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.BadRequest(
            field_violations=[error_details_pb2.BadRequest.FieldViolation(field=field, description=description)]
        )
    )
    return status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=f"invalid {field}", details=[detail])


class RecordingAgentService(agent_service_pb2_grpc.AgentServiceServicer):
    """Answers a few AgentService methods with simple responses and records every call.

    GetAgent fails on purpose for some ids: ``missing`` → NOT_FOUND, ``invalid`` →
    INVALID_ARGUMENT with a BadRequest field violation, ``unavailable`` → UNAVAILABLE;
    RegisterAgent with name ``taken`` → ALREADY_EXISTS, ``unavailable`` → UNAVAILABLE.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[str, object]] = []
        self._lock = threading.Lock()

    def _record(self, method: str, request: object) -> None:
        with self._lock:
            self.calls.append((method, request))

    def methods(self) -> Counter[str]:
        """How many times each method was called."""
        with self._lock:
            return Counter(method for method, _ in self.calls)

    def _agent(self, agent_id: str, name: str = "") -> agent_pb2.Agent:
        return agent_pb2.Agent(agent_id=agent_id, name=name or f"agent-{agent_id}", type="echo")

    async def ListAgents(self, request, context):
        self._record("ListAgents", request)
        return agent_service_pb2.ListAgentsResponse(agents=[self._agent("a1")])

    async def DiscoverAgents(self, request, context):
        self._record("DiscoverAgents", request)
        return agent_service_pb2.DiscoverAgentsResponse(agents=[self._agent("d1")])

    async def ListAgentTypes(self, request, context):
        self._record("ListAgentTypes", request)
        return agent_service_pb2.ListAgentTypesResponse(agent_types=[agent_pb2.AgentType(name="echo")])

    async def GetAgent(self, request, context):
        self._record("GetAgent", request)
        if request.agent_id == "missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, f"agent {request.agent_id!r} not found")
        if request.agent_id == "unavailable":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "try another replica")
        if request.agent_id == "invalid":
            await context.abort_with_status(rpc_status.to_status(_bad_request("agent_id", "must be a UUID")))
        return agent_service_pb2.GetAgentResponse(agent=self._agent(request.agent_id))

    async def RegisterAgent(self, request, context):
        self._record("RegisterAgent", request)
        if request.name == "unavailable":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "try another replica")
        if request.name == "taken":
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, f"an agent named {request.name!r} exists")
        return agent_service_pb2.RegisterAgentResponse(agent=self._agent("new", request.name))

    async def GetHealth(self, request, context):
        self._record("GetHealth", request)
        report = service_info_pb2.HealthReport(state=service_info_pb2.HEALTH_STATE_SERVING, service="agent")
        return agent_service_pb2.GetHealthResponse(health=report)

    async def GetReadiness(self, request, context):
        self._record("GetReadiness", request)
        report = service_info_pb2.HealthReport(state=service_info_pb2.HEALTH_STATE_SERVING, service="agent")
        return agent_service_pb2.GetReadinessResponse(health=report)

    async def GetLiveness(self, request, context):
        self._record("GetLiveness", request)
        return agent_service_pb2.GetLivenessResponse(state=service_info_pb2.HEALTH_STATE_SERVING)


class AgentBackend:
    """A grpc.aio server with RecordingAgentService and gRPC health, on its own event loop thread.

    Its own thread keeps the tests plain and synchronous: blocking HTTP calls from a test
    cannot stall the server that must answer them.
    """

    def __init__(self, name: str) -> None:
        self.servicer = RecordingAgentService(name)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"backend-{name}", daemon=True)
        self._server: grpc.aio.Server | None = None
        self._health: health.aio.HealthServicer | None = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) for Envoy's cluster."""
        return ("127.0.0.1", self.port)

    def start(self) -> AgentBackend:
        """Start serving; return self once the port is bound and health says SERVING."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        self._server = grpc.aio.server()
        agent_service_pb2_grpc.add_AgentServiceServicer_to_server(self.servicer, self._server)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        await self._health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)

    def set_serving(self, serving: bool) -> None:
        """Report SERVING or NOT_SERVING for the AgentService in gRPC health, as a draining replica would."""
        assert self._health is not None
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        asyncio.run_coroutine_threadsafe(self._health.set(SERVICE_NAME, status), self._loop).result(timeout=10)

    def stop(self, grace: float | None = None) -> None:
        """Stop the server (grace None aborts in-flight calls at once) and its thread."""
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._stop(self._server, grace), self._loop).result(timeout=10)
            self._server = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    @staticmethod
    async def _stop(server: grpc.aio.Server, grace: float | None) -> None:
        await server.stop(grace)
        # Let aborted calls unwind here rather than be torn down with the loop.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
