"""The event envelope: built from a contract message, carried as NATS headers + protobuf bytes, checked on receipt."""

from __future__ import annotations

import uuid
from datetime import datetime

from google.protobuf import any_pb2, message, timestamp_pb2
from google.protobuf.message import DecodeError

from chassis.callcontext import current_call
from chassis.contracts import mesh_grpc_services
from chassis.events import subjects
from chassis.telemetry import producer_headers
from protomesh.events.v1 import envelope_pb2

SCHEMA_VERSION = 1
"""Envelope layout written by this runtime."""
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})
"""Envelope layouts consumers accept; anything else is dead-lettered unread."""

MSG_ID_HEADER = "Nats-Msg-Id"
ORGANIZATION_HEADER = "pm-organization"
"""The organization an event belongs to (docs/authorization.md, Tenancy), also `Envelope.organization_id`."""
ORGANIZATION_FIELD = "organization_id"
TRACE_HEADERS = ("traceparent", "tracestate")
CONTENT_TYPE = "application/protobuf; messageType=protomesh.events.v1.Envelope"


class InvalidEvent(ValueError):
    """A message that is not a valid event envelope; it goes to the dead-letter stream, never to a handler."""


def new_envelope(
    event: message.Message,
    *,
    subject: str,
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
) -> envelope_pb2.Envelope:
    """Wrap an event message, stamping id, time and the trace context of the call being served."""
    envelope = envelope_pb2.Envelope(
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=subjects.type_name(event),
        subject=subject,
        schema_version=SCHEMA_VERSION,
        organization_id=organization_of(event),
    )
    stamp = timestamp_pb2.Timestamp()
    if time is None:
        stamp.GetCurrentTime()
    else:
        stamp.FromDatetime(time)
    envelope.time.CopyFrom(stamp)
    call = current_call.get()
    produced = producer_headers(f"publish {envelope.type}")
    for key, value in produced.items() if produced else (call.headers if call else ()):
        if key == "traceparent":
            envelope.trace_parent = value
        elif key == "tracestate":
            envelope.trace_state = value
    data = any_pb2.Any()
    data.Pack(event)
    envelope.data.CopyFrom(data)
    return envelope


def organization_of(event: message.Message) -> str:
    """The event message's own `organization_id` ("" for a message without one): the envelope carries it so a
    consumer (or a NATS filter) knows the organization without decoding the payload."""
    field = event.DESCRIPTOR.fields_by_name.get(ORGANIZATION_FIELD)
    return str(getattr(event, ORGANIZATION_FIELD)) if field is not None and field.type == field.TYPE_STRING else ""


def headers_for(envelope: envelope_pb2.Envelope, msg_id: str | None = None) -> dict[str, str]:
    """NATS headers of an envelope: the de-duplication id, CloudEvents attributes and trace context."""
    headers = {
        MSG_ID_HEADER: msg_id or envelope.id,
        "ce-id": envelope.id,
        "ce-type": envelope.type,
        "ce-source": envelope.source,
        "content-type": CONTENT_TYPE,
    }
    if envelope.subject:
        headers["ce-subject"] = envelope.subject
    if envelope.trace_parent:
        headers["traceparent"] = envelope.trace_parent
    if envelope.trace_state:
        headers["tracestate"] = envelope.trace_state
    if envelope.organization_id:
        headers[ORGANIZATION_HEADER] = envelope.organization_id
    return headers


def open_envelope(
    raw: bytes, *, nats_subject: str | None = None
) -> tuple[message.Message, envelope_pb2.Envelope]:
    """The event message and its envelope, or InvalidEvent saying what is wrong.

    Checks: the bytes parse as an Envelope; id and type are set; the schema version is supported;
    `type` is a message in the contracts; `data` holds exactly that type; and, for events, the
    subject it arrived on is the one derived from its type (so a payload cannot pose as another event).
    """
    mesh_grpc_services()  # imports every contract into the default descriptor pool (cached)
    envelope = envelope_pb2.Envelope()
    try:
        envelope.ParseFromString(raw)
    except DecodeError as exc:
        raise InvalidEvent(f"not a protomesh.events.v1.Envelope: {exc}") from None
    if not envelope.id:
        raise InvalidEvent("envelope has no id")
    if envelope.schema_version not in SUPPORTED_SCHEMA_VERSIONS:
        raise InvalidEvent(
            f"schema_version {envelope.schema_version} is not supported (supported: "
            f"{', '.join(map(str, sorted(SUPPORTED_SCHEMA_VERSIONS)))})"
        )
    if not envelope.type:
        raise InvalidEvent("envelope has no type")
    try:
        cls = subjects.message_class(envelope.type)
    except KeyError:
        raise InvalidEvent(f"type {envelope.type!r} is not a message in the contracts") from None
    if envelope.data.TypeName() != envelope.type:
        raise InvalidEvent(f"data holds {envelope.data.TypeName() or 'nothing'!r}, not {envelope.type!r}")
    event = cls()
    try:
        event.ParseFromString(envelope.data.value)
    except DecodeError as exc:
        raise InvalidEvent(f"data is not a valid {envelope.type}: {exc}") from None
    if nats_subject is not None and nats_subject.startswith(f"{subjects.EVENT_PREFIX}."):
        expected = subjects.event_subject(cls)
        if nats_subject != expected:
            raise InvalidEvent(f"{envelope.type} arrived on {nats_subject}, its subject is {expected}")
    return event, envelope
