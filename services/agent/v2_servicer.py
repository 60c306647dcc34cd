"""protomesh.agent.v2.AgentService: agents and their executions as two resources, typed results.

Served by the same replicas as v1, over the same store and runner (docs/versions.md says why). Where
v2 changes only the shape of a call (CreateAgent, UpdateAgent, DeleteAgent, CreateExecution,
CancelExecution) it runs v1's implementation, so the rules, the events, the idempotency keys and the
runner are one; what v1 cannot do (an execution by id, the list of an agent's executions, filters on
several capabilities, typed results) is here.
"""

from __future__ import annotations

import grpc

from chassis import Replica
from chassis.resources import Keyset, found, resource_id
from protomesh.agent.v1 import agent_service_pb2 as v1
from protomesh.agent.v2 import agent_pb2, agent_service_pb2, agent_service_pb2_grpc
from services.agent.agent_types import AGENT_TYPES
from services.agent.deps import AgentDeps
from services.agent.messages import agent_message
from services.agent.rows import AgentRow, ExecutionRow
from services.agent.servicer import AgentServicer
from services.agent.store import AgentFilter
from services.agent.v2_executions import ExecutionFilter, list_executions
from services.agent.v2_messages import RESULT_FIELDS, STORED_STATE, agent_v2, execution_v2

_AGENTS = Keyset.newest_first("agents.v2")
_EXECUTIONS = Keyset.newest_first("executions.v2")
_BUSY = {agent_pb2.AGENT_STATUS_BUSY: True, agent_pb2.AGENT_STATUS_IDLE: False}


class AgentV2Servicer(agent_service_pb2_grpc.AgentServiceServicer):
    """Implements protomesh.agent.v2.AgentService over the agent store, with v1's servicer for shared writes."""

    def __init__(self, replica: Replica, deps: AgentDeps) -> None:
        self._replica = replica
        self._store = deps.store
        self._v1 = AgentServicer(replica, deps)

    async def _agent(self, agent_id: str) -> AgentRow:
        return found(await self._store.get_agent(resource_id("agent", agent_id)), "agent", agent_id)

    async def _execution(self, agent: AgentRow, execution_id: str) -> ExecutionRow:
        """The agent's execution; NOT_FOUND also for another agent's."""
        row = await self._store.get_execution(resource_id("execution", execution_id))
        return found(row if row and row.agent_id == agent.id else None, "execution", execution_id)

    async def _execution_message(self, agent_id: str, execution_id: str) -> agent_pb2.Execution:
        """The execution as it stands now, read back after v1's implementation changed it."""
        agent = await self._agent(agent_id)
        return execution_v2(await self._execution(agent, execution_id), agent.type)

    async def ListAgents(
        self, request: agent_service_pb2.ListAgentsRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.ListAgentsResponse:
        flt = AgentFilter(type=request.type, busy=_BUSY.get(request.status),
                          capabilities=tuple(sorted(set(request.capabilities))), name_contains=request.name_contains)
        result = await self._store.list_agents(flt, _AGENTS.page(request, flt))
        return agent_service_pb2.ListAgentsResponse(agents=[agent_v2(agent_message(r)) for r in result.items],
                                                     page_info=result.page_info())

    async def CreateAgent(
        self, request: agent_service_pb2.CreateAgentRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.CreateAgentResponse:
        # v1's RegisterAgent, idempotency key included: the key is scoped to it, so a retry through either
        # version with the same key and the same agent is answered with the first result.
        reply = await self._v1.RegisterAgent(v1.RegisterAgentRequest(
            name=request.name, type=request.type, description=request.description,
            capabilities=request.capabilities, config=request.config, labels=request.labels,
            request_id=request.request_id), context)
        return agent_service_pb2.CreateAgentResponse(agent=agent_v2(reply.agent))

    async def GetAgent(
        self, request: agent_service_pb2.GetAgentRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.GetAgentResponse:
        return agent_service_pb2.GetAgentResponse(agent=agent_v2(agent_message(await self._agent(request.agent_id))))

    async def UpdateAgent(
        self, request: agent_service_pb2.UpdateAgentRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.UpdateAgentResponse:
        # Field for field v1's request (the same numbers, `optional` presence and mask): the bytes carry over.
        reply = await self._v1.UpdateAgent(v1.UpdateAgentRequest.FromString(request.SerializeToString()), context)
        return agent_service_pb2.UpdateAgentResponse(agent=agent_v2(reply.agent))

    async def DeleteAgent(
        self, request: agent_service_pb2.DeleteAgentRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.DeleteAgentResponse:
        reply = await self._v1.DeregisterAgent(v1.DeregisterAgentRequest(agent_id=request.agent_id), context)
        return agent_service_pb2.DeleteAgentResponse(agent_id=reply.agent_id,
                                                     cancelled_execution_id=reply.stopped_execution_id)

    async def CreateExecution(
        self, request: agent_service_pb2.CreateExecutionRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.CreateExecutionResponse:
        reply = await self._v1.ExecuteAgent(v1.ExecuteAgentRequest(
            agent_id=request.agent_id, input=request.input, wait=request.wait, context_id=request.context_id,
            request_id=request.request_id), context)
        execution = await self._execution_message(request.agent_id, reply.execution.execution_id)
        return agent_service_pb2.CreateExecutionResponse(execution=execution)

    async def GetExecution(
        self, request: agent_service_pb2.GetExecutionRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.GetExecutionResponse:
        return agent_service_pb2.GetExecutionResponse(
            execution=await self._execution_message(request.agent_id, request.execution_id))

    async def ListExecutions(
        self, request: agent_service_pb2.ListExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.ListExecutionsResponse:
        agent = await self._agent(request.agent_id)
        flt = ExecutionFilter(agent_id=agent.id, state=STORED_STATE.get(request.state, ""))
        result = await list_executions(self._replica.db, flt, _EXECUTIONS.page(request, flt))
        return agent_service_pb2.ListExecutionsResponse(
            executions=[execution_v2(row, agent.type) for row in result.items], page_info=result.page_info())

    async def CancelExecution(
        self, request: agent_service_pb2.CancelExecutionRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.CancelExecutionResponse:
        reply = await self._v1.StopAgent(v1.StopAgentRequest(
            agent_id=request.agent_id, execution_id=request.execution_id,
            reason=request.reason or "cancelled on request"), context)
        execution = await self._execution_message(request.agent_id, reply.execution.execution_id)
        return agent_service_pb2.CancelExecutionResponse(execution=execution)

    async def ListAgentTypes(
        self, request: agent_service_pb2.ListAgentTypesRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.ListAgentTypesResponse:
        return agent_service_pb2.ListAgentTypesResponse(agent_types=[
            agent_pb2.AgentType(name=s.name, description=s.description, capabilities=s.capabilities,
                                input_fields=s.input_fields, result_field=RESULT_FIELDS[s.name][0])
            for s in AGENT_TYPES.values()
        ])

    async def GetInfo(
        self, request: agent_service_pb2.GetInfoRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.GetInfoResponse:
        reply = await self._v1.GetInfo(v1.GetInfoRequest(), context)
        return agent_service_pb2.GetInfoResponse(info=reply.info, agent_count=reply.agent_count,
                                                 agent_types=reply.agent_types)
