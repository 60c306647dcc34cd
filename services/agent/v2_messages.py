"""protomesh.agent.v2 messages from the stored rows: typed execution results, CANCELLED for a stop."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from chassis.protos import timestamp, to_struct
from protomesh.agent.v1 import agent_pb2 as v1_agent_pb2
from protomesh.agent.v2 import agent_pb2
from services.agent.rows import ExecutionRow

logger = logging.getLogger(__name__)

_STATES = {
    "PENDING": agent_pb2.EXECUTION_STATE_PENDING,
    "RUNNING": agent_pb2.EXECUTION_STATE_RUNNING,
    "SUCCEEDED": agent_pb2.EXECUTION_STATE_SUCCEEDED,
    "FAILED": agent_pb2.EXECUTION_STATE_FAILED,
    # v1 calls it STOPPED (StopAgent); v2 names the state after the method that reaches it.
    "STOPPED": agent_pb2.EXECUTION_STATE_CANCELLED,
}
STORED_STATE = {value: name for name, value in _STATES.items()}
"""The stored state of a v2 ExecutionState (a filter's value)."""


def agent_v2(agent: v1_agent_pb2.Agent) -> agent_pb2.Agent:
    """v2's Agent of v1's: the two messages are wire-identical on purpose (same numbers and types,
    tests/e2e/test_versions.py and the servicer tests compare them), so the bytes carry over."""
    return agent_pb2.Agent.FromString(agent.SerializeToString())


def _calculator(output: dict[str, Any]) -> agent_pb2.CalculatorResult:
    value = output.get("result", 0)
    return agent_pb2.CalculatorResult(expression=str(output.get("expression", "")), value=float(value),
                                      exact=str(output.get("exact") or value))


def _text(output: dict[str, Any]) -> agent_pb2.TextAnalysisResult:
    return agent_pb2.TextAnalysisResult(
        characters=int(output.get("characters", 0)), words=int(output.get("words", 0)),
        unique_words=int(output.get("unique_words", 0)), sentences=int(output.get("sentences", 0)),
        average_word_length=float(output.get("average_word_length", 0.0)),
        top_words=[agent_pb2.WordCount(word=str(w["word"]), count=int(w["count"]))
                   for w in output.get("top_words", [])],
        reading_time_seconds=float(output.get("reading_time_seconds", 0.0)),
    )


def _primes(output: dict[str, Any]) -> agent_pb2.PrimesResult:
    largest = output.get("largest")
    return agent_pb2.PrimesResult(limit=int(output.get("limit", 0)), count=int(output.get("count", 0)),
                                  largest=None if largest is None else int(largest),
                                  first=[int(p) for p in output.get("first", [])],
                                  last=[int(p) for p in output.get("last", [])])


def _json(output: dict[str, Any]) -> agent_pb2.JsonTransformResult:
    return agent_pb2.JsonTransformResult(document=to_struct(output.get("document") or {}),
                                         operations_applied=int(output.get("operations_applied", 0)))


def _field_report(output: dict[str, Any]) -> agent_pb2.FieldReportResult:
    return agent_pb2.FieldReportResult(
        field_count=int(output.get("field_count", 0)), fields_reported=int(output.get("fields_reported", 0)),
        total_hectares=float(output.get("total_hectares", 0.0)),
        workable_hectares=float(output.get("workable_hectares", 0.0)),
        season_count=int(output.get("season_count", 0)),
        harvested_season_count=int(output.get("harvested_season_count", 0)),
        crop_hectares={str(k): float(v) for k, v in (output.get("crop_hectares") or {}).items()})


RESULT_FIELDS: dict[str, tuple[str, Callable[[dict[str, Any]], Message]]] = {
    "calculator": ("calculator", _calculator),
    "text-analyzer": ("text_analysis", _text),
    "prime-finder": ("primes", _primes),
    "json-transformer": ("json_transform", _json),
    "field-report": ("field_report", _field_report),
}
"""Agent type -> the ExecutionResult field its results go in, and how they are read from the stored output."""


def result_message(agent_type: str, output: dict[str, Any] | None) -> agent_pb2.ExecutionResult | None:
    """The typed result of a stored output; None when there is none (or it cannot be read, which is logged)."""
    if output is None or agent_type not in RESULT_FIELDS:
        return None
    field, read = RESULT_FIELDS[agent_type]
    try:
        result = agent_pb2.ExecutionResult()
        getattr(result, field).CopyFrom(read(output))
        return result
    except (KeyError, TypeError, ValueError) as exc:
        # An output written by an older agent type: the execution is still shown, without a result.
        logger.warning("stored output does not fit the typed result", extra={"agent_type": agent_type,
                                                                             "error": str(exc)})
        return None


def execution_v2(row: ExecutionRow, agent_type: str) -> agent_pb2.Execution:
    """v2's Execution of a stored execution of an agent of `agent_type`."""
    stopped = row.state == "STOPPED"
    return agent_pb2.Execution(
        execution_id=str(row.id),
        agent_id=str(row.agent_id),
        agent_type=agent_type,
        state=_STATES[row.state],
        input=to_struct(row.input),
        result=result_message(agent_type, row.output) if row.state == "SUCCEEDED" else None,
        error="" if stopped else row.error,
        cancel_reason=row.error if stopped else "",
        progress=row.progress,
        create_time=timestamp(row.created_at),
        start_time=timestamp(row.started_at),
        end_time=timestamp(row.finished_at),
        context_id=row.context_id,
        result_layer_id=row.result_layer_id,
        runner=row.runner,
        organization_id=row.organization_id,
    )
