"""AgentService: registration, executions, discovery and replica information."""

from __future__ import annotations

import logging

import grpc

from chassis import Replica
from chassis.errors import FailedPrecondition, NotFound, Violations
from chassis.idempotency import idempotent
from chassis.protos import from_struct
from chassis.resources import Keyset, UpdateMask, found, page_size, resource_id
from chassis.standard_rpcs import HealthRpcs
from protomesh.agent.v1 import agent_pb2, agent_service_pb2, agent_service_pb2_grpc
from services.agent import validation
from services.agent.agent_types import AGENT_TYPES
from services.agent.deps import AgentDeps
from services.agent.messages import agent_message, execution_message
from services.agent.rows import AgentRow, ExecutionRow
from services.agent.runner import sources_of
from services.agent.store import AgentFilter

logger = logging.getLogger(__name__)

_MASK = UpdateMask.of(agent_service_pb2.UpdateAgentRequest, resource=agent_pb2.Agent)
_AGENTS = Keyset.newest_first("agents")
# ExecuteAgent(wait=true) answers this long before the caller's deadline, to leave time for the reply.
_WAIT_MARGIN_SECONDS = 0.25
_WAIT_WITHOUT_DEADLINE_SECONDS = 30.0


def _status_filter(status: agent_pb2.AgentStatus) -> bool | None:
    """The busy filter of a status filter: None (any) for AGENT_STATUS_UNSPECIFIED."""
    return {agent_pb2.AGENT_STATUS_BUSY: True, agent_pb2.AGENT_STATUS_IDLE: False}.get(status)


def _effective_capabilities(agent_type: str, extra: list[str]) -> list[str]:
    return sorted(set(AGENT_TYPES[agent_type].capabilities) | set(extra))


class AgentServicer(HealthRpcs, agent_service_pb2_grpc.AgentServiceServicer):
    """Implements protomesh.agent.v1.AgentService over PostgreSQL."""

    def __init__(self, replica: Replica, deps: AgentDeps) -> None:
        self._replica = replica
        self._store = deps.store
        self._runner = deps.runner

    async def _agent(self, agent_id: str) -> AgentRow:
        return found(await self._store.get_agent(resource_id("agent", agent_id, field="agent_id")), "agent", agent_id)

    async def _own_execution(self, agent: AgentRow, execution_id: str) -> ExecutionRow:
        """The agent's execution named by the request; NOT_FOUND also for another agent's execution."""
        execution = await self._store.get_execution(resource_id("execution", execution_id))
        return found(execution if execution and execution.agent_id == agent.id else None, "execution", execution_id)

    async def ListAgents(
        self, request: agent_service_pb2.ListAgentsRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.ListAgentsResponse:
        flt = AgentFilter(type=request.type, busy=_status_filter(request.status),
                          capabilities=(request.capability,) if request.capability else (),
                          name_contains=request.name_contains)
        # The token is bound to the finished filter, so the page is taken only once it is built.
        result = await self._store.list_agents(flt, _AGENTS.page(request, flt))
        return agent_service_pb2.ListAgentsResponse(agents=[agent_message(r) for r in result.items],
                                                     page_info=result.page_info())

    @idempotent(agent_service_pb2.RegisterAgentResponse)
    async def RegisterAgent(
        self, request: agent_service_pb2.RegisterAgentRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.RegisterAgentResponse:
        # The contract's rules have passed (name, type, capabilities, description, labels).
        config = from_struct(request.config)
        v = Violations()
        validation.check_config(v, config)
        v.raise_if_any()
        row = await self._store.create_agent(
            name=request.name, type_=request.type, description=request.description,
            capabilities=_effective_capabilities(request.type, list(request.capabilities)),
            config=config, labels=dict(request.labels),
        )
        logger.info("agent registered", extra={"agent_id": str(row.id), "agent_type": row.type})
        return agent_service_pb2.RegisterAgentResponse(agent=agent_message(row))

    async def GetAgent(
        self, request: agent_service_pb2.GetAgentRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.GetAgentResponse:
        return agent_service_pb2.GetAgentResponse(agent=agent_message(await self._agent(request.agent_id)))

    async def UpdateAgent(
        self, request: agent_service_pb2.UpdateAgentRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.UpdateAgentResponse:
        current = await self._agent(request.agent_id)
        v = Violations()
        paths = _MASK.paths(request, v)
        changes = _MASK.copied(request, paths, "name", "description", "labels")
        if "capabilities" in paths:
            changes["capabilities"] = _effective_capabilities(current.type, list(request.capabilities))
        if "config" in paths:
            changes["config"] = from_struct(request.config)
            validation.check_config(v, changes["config"])
        v.raise_if_any()
        row = found(await self._store.update_agent(current.id, changes), "agent", request.agent_id)
        return agent_service_pb2.UpdateAgentResponse(agent=agent_message(row))

    async def DeregisterAgent(
        self, request: agent_service_pb2.DeregisterAgentRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.DeregisterAgentResponse:
        deleted, stopped = await self._store.delete_agent(resource_id("agent", request.agent_id))
        if not deleted:
            raise NotFound("agent", request.agent_id)
        if stopped:
            self._runner.stop_local(stopped)
        logger.info("agent deregistered", extra={"agent_id": request.agent_id})
        return agent_service_pb2.DeregisterAgentResponse(agent_id=request.agent_id,
                                                         stopped_execution_id=str(stopped or ""))

    @idempotent(agent_service_pb2.ExecuteAgentResponse)
    async def ExecuteAgent(
        self, request: agent_service_pb2.ExecuteAgentRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.ExecuteAgentResponse:
        agent = await self._agent(request.agent_id)
        given = from_struct(request.input)
        resolved = await self._runner.read_context(request.context_id) if request.context_id else {}
        # The agent's config, then the context's resolved data, then the input: later ones win.
        data = {**agent.config, **resolved, **given}
        v = Violations()
        validation.check_input(v, agent.type, data)
        v.raise_if_any()
        execution = await self._store.create_execution(agent, given, self._runner.instance_id,
                                                       context_id=request.context_id)
        await self._runner.dispatch(execution, agent.type, data)
        if request.wait:
            remaining = context.time_remaining()
            budget = _WAIT_WITHOUT_DEADLINE_SECONDS if remaining is None else remaining - _WAIT_MARGIN_SECONDS
            await self._runner.wait(execution.id, max(budget, 0.0))
        current = await self._store.get_execution(execution.id)
        return agent_service_pb2.ExecuteAgentResponse(execution=execution_message(current or execution))

    async def GetAgentStatus(
        self, request: agent_service_pb2.GetAgentStatusRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.GetAgentStatusResponse:
        agent = await self._agent(request.agent_id)
        execution: ExecutionRow | None
        if request.execution_id:
            execution = await self._own_execution(agent, request.execution_id)
        else:
            execution = await self._store.latest_execution(agent.id)
        return agent_service_pb2.GetAgentStatusResponse(
            status=agent_pb2.AGENT_STATUS_BUSY if agent.current_execution_id else agent_pb2.AGENT_STATUS_IDLE,
            execution=execution_message(execution) if execution else None,
        )

    async def StopAgent(
        self, request: agent_service_pb2.StopAgentRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.StopAgentResponse:
        agent = await self._agent(request.agent_id)
        if request.execution_id:
            target = (await self._own_execution(agent, request.execution_id)).id
        elif agent.current_execution_id is not None:
            target = agent.current_execution_id
        else:
            latest = await self._store.latest_execution(agent.id)
            state = f"its latest execution is {latest.state}" if latest else "it has never run"
            raise FailedPrecondition(f"agent {request.agent_id} has no pending or running execution; {state}")
        reason = request.reason or "stopped on request"
        stopped = await self._store.transition(target, from_states=sources_of("STOPPED"), to="STOPPED", error=reason)
        if stopped is None:
            current = await self._store.get_execution(target)
            state = current.state if current else "gone"
            raise FailedPrecondition(
                f"execution {target} is {state}; only PENDING or RUNNING executions can be stopped",
                metadata={"state": state},
            )
        self._runner.stop_local(target)
        return agent_service_pb2.StopAgentResponse(execution=execution_message(stopped))

    async def DiscoverAgents(
        self, request: agent_service_pb2.DiscoverAgentsRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.DiscoverAgentsResponse:
        limit = page_size(request.limit, "limit")  # the contract has bounded it; this turns 0 into the default
        flt = AgentFilter(type=request.type, busy=_status_filter(request.status),
                          capabilities=tuple(request.capabilities))
        rows = await self._store.discover(flt, limit)
        return agent_service_pb2.DiscoverAgentsResponse(agents=[agent_message(r) for r in rows])

    async def ListAgentTypes(
        self, request: agent_service_pb2.ListAgentTypesRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.ListAgentTypesResponse:
        return agent_service_pb2.ListAgentTypesResponse(
            agent_types=[
                agent_pb2.AgentType(name=s.name, description=s.description, capabilities=s.capabilities,
                                    input_fields=s.input_fields)
                for s in AGENT_TYPES.values()
            ]
        )

    async def GetInfo(
        self, request: agent_service_pb2.GetInfoRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.GetInfoResponse:
        return agent_service_pb2.GetInfoResponse(
            info=self._replica.service_info(), agent_count=await self._store.count_agents(),
            agent_types=list(AGENT_TYPES),
        )
