"""AsyncAPI 3.0 of the domain events on NATS, generated from the same descriptor set as the OpenAPI.

Every top-level message of a contract package's ``events.proto`` is an event: its subject and
stream come from chassis.events.subjects, its headers from chassis.events.envelope (read off a
sample envelope, so a header added there shows up here), and its payload is the
protomesh.events.v1.Envelope carrying it. On the wire the payload is binary protobuf; the
schemas describe its proto3 JSON form (the same mapping as the OpenAPI document), with ``data``
narrowed to the event's own message.

The dead-letter stream and task progress subjects are documented too (their messages are in
the contracts); task work-queue subjects are not, because task kinds are declared in service
code, not in the contracts.
"""

from __future__ import annotations

from typing import Any

from chassis.events import envelope as envelope_module
from chassis.events import subjects
from chassis.tooling.apidocs.contracts import Contracts
from chassis.tooling.apidocs.rules import first_sentence
from chassis.tooling.apidocs.schema import SchemaBuilder
from protomesh.events.v1 import envelope_pb2

Document = dict[str, Any]
ASYNCAPI_VERSION = "3.0.0"
# The schemas use no keyword whose meaning differs between draft-07 and 2020-12 ($ref siblings
# carry only descriptions), so the format AsyncAPI tools know best is declared.
SCHEMA_FORMAT = "application/schema+json;version=draft-07"
ENVELOPE = "protomesh.events.v1.Envelope"
_EVENTS_FILE = "/events.proto"


def event_types(contracts: Contracts) -> list[str]:
    """Full names of every domain event: the top-level messages of each protomesh package's events.proto."""
    return sorted(f"{file.package}.{message.name}" for file in contracts.files
                  if file.package.startswith("protomesh.") and file.name.endswith(_EVENTS_FILE)
                  for message in file.message_type)


def build_asyncapi(contracts: Contracts, service: str | None = None) -> Document:
    """The AsyncAPI document of every domain event (or of one service's events)."""
    builder = SchemaBuilder(contracts)
    packages = set(contracts.catalog.service(service).packages) if service else None
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    headers = envelope_headers(contracts)
    for event in event_types(contracts):
        package = event.rsplit(".", 1)[0]
        if packages is not None and package not in packages:
            continue
        name = event.rsplit(".", 1)[1]
        channel_id, message_id = event, event
        messages[message_id] = _message(builder, event, headers)
        channels[channel_id] = {
            "address": subjects.event_subject(event),
            "title": name,
            "description": f"{contracts.comment(event)}\n\nJetStream stream {subjects.package_stream(package)} "
                           f"(subjects {', '.join(subjects.event_stream_subjects(package))}).",
            "messages": {name: {"$ref": f"#/components/messages/{message_id}"}},
            "x-jetstream-stream": subjects.package_stream(package),
        }
        owner = _owner(contracts, package)
        operations[f"publish.{event}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{_escape(channel_id)}"},
            "summary": f"{owner or package} publishes {name} (from its outbox, at least once).",
            "messages": [{"$ref": f"#/channels/{_escape(channel_id)}/messages/{name}"}],
        }
    if service is None:
        _infrastructure_channels(builder, channels, messages)
    document: Document = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": f"protomesh {service} events" if service else "protomesh events",
            "version": "1",
            "description": "Domain events of the protomesh mesh on NATS JetStream, generated from the contracts. "
                           f"Payloads are {ENVELOPE} messages in binary protobuf ({envelope_module.CONTENT_TYPE}); "
                           "the schemas give their proto3 JSON form.",
        },
        "servers": {"nats": {"host": "{host}", "protocol": "nats", "description": "The mesh's NATS server.",
                             "variables": {"host": {"default": "127.0.0.1:4222"}}}},
        "defaultContentType": envelope_module.CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": dict(sorted(builder.components.items()))},
    }
    return document


def envelope_headers(contracts: Contracts) -> dict[str, Any]:
    """The NATS headers schema, read off chassis.events.envelope.headers_for.

    A sample envelope with every field set to a distinct value shows each header's source field
    (its comment documents it); a minimal one shows which headers are always present.
    """
    full = envelope_pb2.Envelope(id="id-1", source="source-2", type="type-3", subject="subject-4",
                                 trace_parent="trace_parent-7", trace_state="trace_state-8")
    minimal = envelope_pb2.Envelope(id="id-1", source="source-2", type="type-3")
    sources = {getattr(full, f.name): f.name for f in full.DESCRIPTOR.fields
               if isinstance(getattr(full, f.name), str) and getattr(full, f.name)}
    properties: dict[str, Any] = {}
    for header, value in envelope_module.headers_for(full).items():
        source = sources.get(value)
        if source is not None:
            properties[header] = {"type": "string",
                                  "description": contracts.comment(f"{ENVELOPE}.{source}") + f" (Envelope.{source})"}
        else:
            properties[header] = {"type": "string", "const": value}
    return {"type": "object", "properties": properties,
            "required": sorted(envelope_module.headers_for(minimal))}


def _message(builder: SchemaBuilder, event: str, headers: dict[str, Any]) -> dict[str, Any]:
    name = event.rsplit(".", 1)[1]
    event_headers = {**headers, "properties": {**headers["properties"]}}
    if "ce-type" in event_headers["properties"]:
        event_headers["properties"]["ce-type"] = {**event_headers["properties"]["ce-type"], "const": event}
    envelope = builder.ref(ENVELOPE)
    payload = {"allOf": [envelope, {
        "type": "object",
        "required": ["type", "data"],
        "properties": {
            "type": {"const": event},
            "data": {"allOf": [builder.ref(event), {
                "type": "object", "required": ["@type"],
                "properties": {"@type": {"const": f"type.googleapis.com/{event}"}},
            }]},
        },
    }]}
    comment = builder.contracts.comment(event)
    return {
        "name": name,
        "title": name,
        "summary": first_sentence(comment) if comment else event,
        "contentType": envelope_module.CONTENT_TYPE,
        "headers": {"schemaFormat": SCHEMA_FORMAT, "schema": event_headers},
        "payload": {"schemaFormat": SCHEMA_FORMAT, "schema": payload},
        "x-proto-type": event,
    }


def _infrastructure_channels(builder: SchemaBuilder, channels: dict[str, Any], messages: dict[str, Any]) -> None:
    """The dead-letter stream and task progress: subjects from chassis.events.subjects, payloads from the contracts."""
    dead_letter = "protomesh.events.v1.DeadLetter"
    progress = "protomesh.events.v1.TaskProgress"
    for message in (dead_letter, progress):
        messages[message] = {"name": message.rsplit(".", 1)[1], "contentType": "application/protobuf",
                             "summary": first_sentence(builder.contracts.comment(message)),
                             "payload": {"schemaFormat": SCHEMA_FORMAT, "schema": builder.ref(message)}}
    channels["deadletters"] = {
        "address": _parameterised(subjects.dead_letter_subject("CONSUMER", "ORIGINAL"),
                                  CONSUMER="{consumer}", ORIGINAL="{original_subject}"),
        "description": f"Messages a consumer gave up on, in stream {subjects.DEAD_LETTER_STREAM} "
                       f"({', '.join(subjects.dead_letter_stream_subjects())}).",
        "parameters": {"consumer": {"description": "The durable consumer that gave up."},
                       "original_subject": {"description": "The subject the message was published on."}},
        "messages": {"DeadLetter": {"$ref": f"#/components/messages/{dead_letter}"}},
    }
    channels["taskprogress"] = {
        "address": subjects.task_progress_subject("{task_id}"),
        "description": "Progress reports of a running background task (core NATS, not stored).",
        "parameters": {"task_id": {"description": "The task's id as submitted."}},
        "messages": {"TaskProgress": {"$ref": f"#/components/messages/{progress}"}},
    }


def _parameterised(address: str, **placeholders: str) -> str:
    # The subject functions check their inputs, so sample tokens go in and AsyncAPI parameters come out.
    for token, parameter in placeholders.items():
        address = address.replace(token, parameter)
    return address


def _owner(contracts: Contracts, package: str) -> str:
    for service in contracts.catalog:
        if package in service.packages:
            return f"the {service.name} service"
    return ""


def _escape(pointer_part: str) -> str:
    """A JSON Pointer token (RFC 6901): '~' and '/' escaped."""
    return pointer_part.replace("~", "~0").replace("/", "~1")
