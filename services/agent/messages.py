"""Conversions between stored rows and the contracts' messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from protomesh.agent.v1 import agent_pb2
from services.agent.store import AgentRow, ExecutionRow

_STATES = {
    "PENDING": agent_pb2.EXECUTION_STATE_PENDING,
    "RUNNING": agent_pb2.EXECUTION_STATE_RUNNING,
    "SUCCEEDED": agent_pb2.EXECUTION_STATE_SUCCEEDED,
    "FAILED": agent_pb2.EXECUTION_STATE_FAILED,
    "STOPPED": agent_pb2.EXECUTION_STATE_STOPPED,
}


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A protobuf Timestamp, or None for a missing time."""
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def to_struct(data: dict[str, Any] | None) -> struct_pb2.Struct | None:
    """A Struct from a JSON-like dict."""
    if data is None:
        return None
    struct = struct_pb2.Struct()
    struct.update(data)
    return struct


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A JSON-like dict from a Struct."""
    return json_format.MessageToDict(struct)


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
    )
