"""The generated AsyncAPI document: every domain event on its derived subject, with headers and payload
schemas that real envelopes satisfy.

No offline AsyncAPI 3.0 validator is trusted here, so the structure is checked by hand-written
invariants (version, every $ref resolves, operations point at channels, channel addresses are the
subjects chassis.events.subjects derives) and the schemas with jsonschema (draft-07, as declared).
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from google.protobuf import json_format
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from chassis.events import envelope, subjects
from chassis.tooling.apidocs import build_asyncapi, load_contracts
from chassis.tooling.apidocs.asyncapi import SCHEMA_FORMAT, event_types
from protomesh.agent.v1 import events_pb2

_DOC = "urn:protomesh:asyncapi"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_asyncapi(load_contracts())


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for token in ref.removeprefix("#/").split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [node["$ref"]] if "$ref" in node else [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    registry: Registry = Registry().with_resource(_DOC, Resource(document, DRAFT7))
    return jsonschema.Draft7Validator({"allOf": [_rebase(schema)]}, registry=registry)


def _rebase(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (_DOC + v if k == "$ref" else _rebase(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rebase(v) for v in node]
    return node


def test_structure(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    for ref in _refs(document):
        assert ref.startswith("#/"), ref
        _resolve(document, ref)  # raises KeyError when it points nowhere
    for name, operation in document["operations"].items():
        assert operation["action"] in ("send", "receive"), name
        channel = _resolve(document, operation["channel"]["$ref"])
        for message in operation["messages"]:
            assert message["$ref"].startswith(operation["channel"]["$ref"] + "/messages/"), name
        assert channel["address"]
    for message in document["components"]["messages"].values():
        assert message["payload"]["schemaFormat"] == SCHEMA_FORMAT
        jsonschema.Draft7Validator.check_schema(message["payload"]["schema"])
    print(f"{len(document['channels'])} channels, {len(document['operations'])} operations")


def test_every_domain_event_is_on_its_subject(document: dict[str, Any]) -> None:
    events = event_types(load_contracts())
    assert "protomesh.agent.v1.AgentRegistered" in events and "protomesh.context.v1.ContextCreated" in events
    addresses = {c["address"] for c in document["channels"].values()}
    assert {subjects.event_subject(e) for e in events} <= addresses
    assert len(document["operations"]) == len(events)


def test_a_real_envelope_and_its_headers_match_the_schemas(document: dict[str, Any]) -> None:
    event = events_pb2.AgentRegistered(agent_id="a1", name="calc", type="calculator", capabilities=["math"])
    event.create_time.GetCurrentTime()
    sealed = envelope.new_envelope(event, subject="agents/a1", source="agent")
    message = document["components"]["messages"]["protomesh.agent.v1.AgentRegistered"]
    payload = json_format.MessageToDict(sealed, preserving_proto_field_name=True,
                                        always_print_fields_with_no_presence=True)
    _validator(document, message["payload"]["schema"]).validate(payload)
    _validator(document, message["headers"]["schema"]).validate(envelope.headers_for(sealed))

    other = envelope.new_envelope(events_pb2.AgentUpdated(agent_id="a1"), subject="agents/a1", source="agent")
    wrong = json_format.MessageToDict(other, preserving_proto_field_name=True)
    assert not _validator(document, message["payload"]["schema"]).is_valid(wrong), "another event's envelope"
    assert not _validator(document, message["headers"]["schema"]).is_valid(envelope.headers_for(other))


def test_one_service_document_holds_its_events_only() -> None:
    agent = build_asyncapi(load_contracts(), "agent")
    assert agent["channels"] and all(c["address"].startswith("events.protomesh.agent.v1.")
                                     for c in agent["channels"].values())
