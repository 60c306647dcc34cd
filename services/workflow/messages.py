"""Rows to the contract's messages."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

from chassis.protos import timestamp
from protomesh.workflow.v1 import workflow_pb2

# Any: the generated constructors type enum fields as their enum class, which plain ints satisfy at run time.
_STATUS: dict[str, Any] = {name.removeprefix("EXECUTION_STATUS_"): value
                           for name, value in workflow_pb2.ExecutionStatus.items()}
_TASK_STATUS: dict[str, Any] = {name.removeprefix("TASK_STATUS_"): value
                                for name, value in workflow_pb2.TaskStatus.items()}


def status_name(value: int) -> str:
    """The stored status of an ExecutionStatus value ("" for unspecified)."""
    return "" if value == 0 else workflow_pb2.ExecutionStatus.Name(value).removeprefix("EXECUTION_STATUS_")


def definition_message(row: dict[str, Any]) -> workflow_pb2.Definition:
    return workflow_pb2.Definition(
        name=row["name"], revision=row["revision"], document_version=row["document_version"],
        namespace=row["namespace"], source=row["source"], summary=row["summary"],
        create_time=timestamp(row["created_at"]), created_by=row["created_by"],
        organization_id=row["organization_id"], task_paths=row["task_paths"])


def _struct(data: Any) -> struct_pb2.Struct | None:
    if not isinstance(data, dict):
        return None if data is None else _struct({"value": data})
    struct = struct_pb2.Struct()
    struct.update(data)
    return struct


def _value(data: Any) -> struct_pb2.Value | None:
    if data is None:
        return None
    value = struct_pb2.Value()
    json_format.ParseDict(data, value)
    return value


def error_message(error: dict[str, Any] | None) -> workflow_pb2.ExecutionError | None:
    if not error:
        return None
    return workflow_pb2.ExecutionError(type=str(error.get("type", "")), status=int(error.get("status", 0)),
                                       title=str(error.get("title", "")), detail=str(error.get("detail", "")),
                                       instance=str(error.get("instance", "")))


def execution_message(row: dict[str, Any]) -> workflow_pb2.Execution:
    traceparent = row.get("traceparent") or ""
    return workflow_pb2.Execution(
        execution_id=str(row["id"]), definition_name=row["definition_name"], revision=row["revision"],
        status=_STATUS[row["status"]], input=_struct(row["input"]), output=_struct(row["output"]),
        error=error_message(row["error"]), waiting=row["waiting"], compensated=row["compensated"],
        create_time=timestamp(row["created_at"]), end_time=timestamp(row["ended_at"]),
        parent_execution_id=str(row["parent_execution_id"] or ""), organization_id=row["organization_id"],
        created_by=row["created_by"], trace_id=traceparent.split("-")[1] if traceparent.count("-") == 3 else "")


def task_message(row: dict[str, Any]) -> workflow_pb2.TaskRecord:
    return workflow_pb2.TaskRecord(
        path=row["path"], kind=row["kind"], attempt=row["attempt"], status=_TASK_STATUS[row["status"]],
        input=_value(row["input"]), output=_value(row["output"]), error=error_message(row["error"]),
        start_time=timestamp(row["started_at"]), end_time=timestamp(row["ended_at"]),
        compensation=row["compensation"])
