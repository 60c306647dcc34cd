"""Conversions between stored rows and the contracts' messages."""

from __future__ import annotations

from chassis.protos import timestamp, to_struct
from protomesh.agent.v1 import agent_pb2
from services.agent.rows import AgentRow, ExecutionRow

_STATES = {
    "PENDING": agent_pb2.EXECUTION_STATE_PENDING,
    "RUNNING": agent_pb2.EXECUTION_STATE_RUNNING,
    "SUCCEEDED": agent_pb2.EXECUTION_STATE_SUCCEEDED,
    "FAILED": agent_pb2.EXECUTION_STATE_FAILED,
    "STOPPED": agent_pb2.EXECUTION_STATE_STOPPED,
}


def agent_message(row: AgentRow) -> agent_pb2.Agent:
    """The contracts' Agent for a stored agent."""
    return agent_pb2.Agent(
        agent_id=str(row.id),
        name=row.name,
        type=row.type,
        description=row.description,
        capabilities=row.capabilities,
        config=to_struct(row.config),
        labels=row.labels,
        status=agent_pb2.AGENT_STATUS_BUSY if row.current_execution_id else agent_pb2.AGENT_STATUS_IDLE,
        current_execution_id=str(row.current_execution_id or ""),
        create_time=timestamp(row.created_at),
        update_time=timestamp(row.updated_at),
        organization_id=row.organization_id,
    )


def execution_message(row: ExecutionRow) -> agent_pb2.Execution:
    """The contracts' Execution for a stored execution."""
    return agent_pb2.Execution(
        execution_id=str(row.id),
        agent_id=str(row.agent_id),
        state=_STATES[row.state],
        input=to_struct(row.input),
        output=to_struct(row.output),
        error=row.error,
        progress=row.progress,
        create_time=timestamp(row.created_at),
        start_time=timestamp(row.started_at),
        end_time=timestamp(row.finished_at),
        context_id=row.context_id,
        result_layer_id=row.result_layer_id,
        runner=row.runner,
        organization_id=row.organization_id,
    )
