"""Names derived from the contracts, and the envelope checks every consumer applies (no servers needed)."""

from __future__ import annotations

import pytest
from google.protobuf import any_pb2, timestamp_pb2

from chassis.callcontext import CallContext, current_call
from chassis.events import subjects
from chassis.events.envelope import InvalidEvent, headers_for, new_envelope, open_envelope
from protomesh.agent.v1 import agent_pb2, events_pb2
from protomesh.events.v1 import envelope_pb2

AGENT_EVENTS = [events_pb2.AgentRegistered, events_pb2.AgentUpdated, events_pb2.AgentDeregistered,
                events_pb2.ExecutionStarted, events_pb2.ExecutionSucceeded, events_pb2.ExecutionFailed,
                events_pb2.ExecutionStopped]


def test_subjects_and_streams_are_derived_from_the_descriptors() -> None:
    assert subjects.event_subject(events_pb2.AgentRegistered) == "events.protomesh.agent.v1.agent_registered"
    assert subjects.event_subject(events_pb2.ExecutionSucceeded()) == "events.protomesh.agent.v1.execution_succeeded"
    assert subjects.event_subject("protomesh.agent.v1.AgentDeregistered") == \
        "events.protomesh.agent.v1.agent_deregistered"
    assert {subjects.event_stream(e) for e in AGENT_EVENTS} == {"EVENTS_PROTOMESH_AGENT_V1"}
    assert subjects.event_stream_subjects("protomesh.agent.v1") == ["events.protomesh.agent.v1.>"]
    assert subjects.snake("HTTPCallMade") == "http_call_made"
    assert subjects.dead_letter_subject("ctx-agents", "events.protomesh.agent.v1.agent_registered") == \
        "deadletter.ctx-agents.events.protomesh.agent.v1.agent_registered"
    assert subjects.task_subject("agent.run_execution") == "tasks.agent.run_execution"
    assert subjects.task_consumer("agent.run_execution") == "TASK_agent_run_execution"


def test_bad_names_are_refused() -> None:
    with pytest.raises(ValueError):
        subjects.task_subject("Agent Run")
    with pytest.raises(ValueError):
        subjects.dead_letter_subject("has.dots", "x")
    with pytest.raises(ValueError):
        subjects.event_subject(envelope_pb2.DeadLetter.DESCRIPTOR.fields_by_name["headers"].message_type)


def test_envelope_round_trip_carries_attributes_and_trace_context() -> None:
    token = current_call.set(CallContext(deadline=None, headers=(("traceparent", "00-" + "a" * 32 + "-" + "b" * 16
                                                                  + "-01"), ("tracestate", "k=v"))))
    try:
        envelope = new_envelope(events_pb2.AgentRegistered(agent_id="a1", name="calc"), subject="agents/a1",
                                source="agent")
    finally:
        current_call.reset(token)
    assert (envelope.type, envelope.subject, envelope.source, envelope.schema_version) == \
        ("protomesh.agent.v1.AgentRegistered", "agents/a1", "agent", 1)
    assert envelope.trace_parent.startswith("00-aaaa") and envelope.trace_state == "k=v"
    headers = headers_for(envelope)
    assert headers["Nats-Msg-Id"] == envelope.id and headers["traceparent"] == envelope.trace_parent
    event, opened = open_envelope(envelope.SerializeToString(),
                                  nats_subject="events.protomesh.agent.v1.agent_registered")
    assert event == events_pb2.AgentRegistered(agent_id="a1", name="calc") and opened == envelope


def _envelope(**changes: object) -> envelope_pb2.Envelope:
    envelope = new_envelope(events_pb2.AgentRegistered(agent_id="a1"), subject="agents/a1", source="agent")
    for key, value in changes.items():
        if key == "data":
            envelope.data.CopyFrom(value)  # type: ignore[arg-type]
        else:
            setattr(envelope, key, value)
    return envelope


def _any(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


@pytest.mark.parametrize(
    ("raw", "subject", "complaint"),
    [
        (b"\xff\xff\xff not a protobuf", None, "not a protomesh.events.v1.Envelope"),
        (_envelope(id="").SerializeToString(), None, "no id"),
        (_envelope(schema_version=99).SerializeToString(), None, "schema_version 99"),
        (_envelope(type="protomesh.agent.v1.NoSuchEvent").SerializeToString(), None, "not a message in the contracts"),
        (_envelope(data=_any(agent_pb2.Agent(name="x"))).SerializeToString(), None, "data holds"),
        (_envelope(data=any_pb2.Any(type_url="type.googleapis.com/protomesh.agent.v1.AgentRegistered",
                                    value=b"\xff\xff")).SerializeToString(), None, "not a valid"),
        (_envelope().SerializeToString(), "events.protomesh.agent.v1.agent_updated", "arrived on"),
    ],
    ids=["garbage", "no-id", "schema-version", "unknown-type", "wrong-payload", "bad-payload", "wrong-subject"],
)
def test_invalid_envelopes_are_rejected_with_the_reason(raw: bytes, subject: str | None, complaint: str) -> None:
    with pytest.raises(InvalidEvent, match=complaint):
        open_envelope(raw, nats_subject=subject)


def test_envelope_time_is_the_given_time() -> None:
    stamp = timestamp_pb2.Timestamp(seconds=1_700_000_000)
    envelope = new_envelope(events_pb2.AgentUpdated(agent_id="a"), subject="agents/a", source="agent",
                            time=stamp.ToDatetime())
    assert envelope.time.seconds == 1_700_000_000
