"""The agent service's domain events, built from the rows they describe (published through the outbox).

Each carries its row's organization_id, which the envelope repeats as the `pm-organization` header.
"""

from __future__ import annotations

import json
import uuid

from google.protobuf.message import Message

from chassis.protos import timestamp
from protomesh.agent.v1 import events_pb2
from services.agent.rows import AgentRow, DeletedAgent, ExecutionRow

SOURCE = "agent"
_SUMMARY_CHARS = 500


def agent_subject(agent_id: uuid.UUID) -> str:
    """The resource an agent event is about."""
    return f"agents/{agent_id}"


def execution_subject(execution_id: uuid.UUID) -> str:
    """The resource an execution event is about."""
    return f"executions/{execution_id}"


def registered(row: AgentRow) -> Message:
    """AgentRegistered for a new agent."""
    return events_pb2.AgentRegistered(agent_id=str(row.id), name=row.name, type=row.type,
                                      capabilities=row.capabilities, create_time=timestamp(row.created_at),
                                      organization_id=row.organization_id)


def updated(row: AgentRow, fields: list[str]) -> Message:
    """AgentUpdated naming the changed fields."""
    return events_pb2.AgentUpdated(agent_id=str(row.id), name=row.name, type=row.type, updated_fields=fields,
                                   update_time=timestamp(row.updated_at), organization_id=row.organization_id)


def deregistered(row: DeletedAgent, stopped_execution_id: uuid.UUID | None) -> Message:
    """AgentDeregistered, with the execution the removal stopped."""
    return events_pb2.AgentDeregistered(agent_id=str(row.id), name=row.name, type=row.type,
                                        stopped_execution_id=str(stopped_execution_id or ""),
                                        deregister_time=timestamp(row.deleted_at),
                                        organization_id=row.organization_id)


def execution_changed(row: ExecutionRow) -> Message | None:
    """The event of an execution's new state (none for PENDING)."""
    common = {"execution_id": str(row.id), "agent_id": str(row.agent_id), "agent_type": row.agent_type,
              "organization_id": row.organization_id}
    if row.state == "RUNNING":
        return events_pb2.ExecutionStarted(**common, start_time=timestamp(row.started_at))
    if row.state == "SUCCEEDED":
        summary = json.dumps(row.output, default=str)[:_SUMMARY_CHARS]
        return events_pb2.ExecutionSucceeded(**common, output_summary=summary, end_time=timestamp(row.finished_at))
    if row.state == "FAILED":
        return events_pb2.ExecutionFailed(**common, error=row.error, end_time=timestamp(row.finished_at))
    if row.state == "STOPPED":
        return events_pb2.ExecutionStopped(**common, reason=row.error, end_time=timestamp(row.finished_at))
    return None
