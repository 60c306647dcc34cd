"""Every field rule of the agent contract, over the real channel: a request breaking it is INVALID_ARGUMENT
naming the field, before the servicer runs (so ids in these requests need not exist).

A last test reads the contract and fails when a ruled request field has no row in the table.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from buf.validate import validate_pb2
from google.protobuf import field_mask_pb2, struct_pb2
from google.protobuf.message import Message

from chassis.testing import InProcess
from protomesh.agent.v1 import agent_service_pb2 as pb
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub
from services.agent.tests.support import violation_texts
from services.agent.validation import MAX_CONFIG_BYTES
from tests.support.errors import async_failure

ID = str(uuid.uuid4())
TOO_MANY_CAPABILITIES = [f"c{i}" for i in range(33)]
TOO_MANY_LABELS = {f"k{i}": "v" for i in range(33)}


def _mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def _register(**fields: Any) -> pb.RegisterAgentRequest:
    return pb.RegisterAgentRequest(**{"name": "ok", "type": "calculator", **fields})


def _big_config() -> struct_pb2.Struct:
    config = struct_pb2.Struct()
    config.update({"blob": "x" * MAX_CONFIG_BYTES})
    return config


# (rpc, request, the field the error names, a word its description must contain or "")
CASES: list[tuple[str, Message, str, str]] = [
    ("RegisterAgent", _register(name=""), "name", "required"),
    ("RegisterAgent", _register(name="!bad"), "name", ""),
    ("RegisterAgent", _register(name="x" * 129), "name", ""),
    ("RegisterAgent", _register(name="trailing "), "name", ""),
    ("RegisterAgent", _register(type=""), "type", "calculator"),
    ("RegisterAgent", _register(type="no-such-type"), "type", "calculator"),
    ("RegisterAgent", _register(description="x" * 2001), "description", "2000"),
    ("RegisterAgent", _register(capabilities=["UPPER"]), "capabilities[0]", ""),
    ("RegisterAgent", _register(capabilities=["ok", "x" * 65]), "capabilities[1]", ""),
    ("RegisterAgent", _register(capabilities=TOO_MANY_CAPABILITIES), "capabilities", "32"),
    ("RegisterAgent", _register(labels={"Bad Key": "v"}), 'labels["Bad Key"]', ""),
    ("RegisterAgent", _register(labels={"team": "x" * 257}), "labels.team", "256"),
    ("RegisterAgent", _register(labels=TOO_MANY_LABELS), "labels", "32"),
    ("RegisterAgent", _register(config=_big_config()), "config", "bytes"),  # checked in code: JSON size
    ("GetAgent", pb.GetAgentRequest(), "agent_id", "required"),
    ("UpdateAgent", pb.UpdateAgentRequest(description="x"), "agent_id", "required"),
    ("UpdateAgent", pb.UpdateAgentRequest(agent_id=ID, name="!bad"), "name", ""),
    ("UpdateAgent", pb.UpdateAgentRequest(agent_id=ID, name=""), "name", "required"),
    ("UpdateAgent", pb.UpdateAgentRequest(agent_id=ID, update_mask=_mask("name")), "name", "required"),
    ("UpdateAgent", pb.UpdateAgentRequest(agent_id=ID, description="x" * 2001), "description", "2000"),
    ("UpdateAgent", pb.UpdateAgentRequest(agent_id=ID, capabilities=["Bad"]), "capabilities[0]", ""),
    ("UpdateAgent", pb.UpdateAgentRequest(agent_id=ID, capabilities=TOO_MANY_CAPABILITIES), "capabilities", ""),
    ("UpdateAgent", pb.UpdateAgentRequest(agent_id=ID, labels={"UPPER": "v"}), "labels.UPPER", ""),
    ("UpdateAgent", pb.UpdateAgentRequest(agent_id=ID, labels=TOO_MANY_LABELS), "labels", ""),
    ("DeregisterAgent", pb.DeregisterAgentRequest(), "agent_id", "required"),
    ("ExecuteAgent", pb.ExecuteAgentRequest(), "agent_id", "required"),
    ("RegisterAgent", _register(request_id="x" * 65), "request_id", "64"),
    ("ExecuteAgent", pb.ExecuteAgentRequest(agent_id=ID, request_id="not a key"), "request_id", ""),
    ("GetAgentStatus", pb.GetAgentStatusRequest(execution_id=ID), "agent_id", "required"),
    ("StopAgent", pb.StopAgentRequest(), "agent_id", "required"),
    ("ListAgents", pb.ListAgentsRequest(page_size=-1), "page_size", ""),
    ("ListAgents", pb.ListAgentsRequest(page_size=1001), "page_size", "1000"),
    ("ListAgents", pb.ListAgentsRequest(status=99), "status", ""),  # type: ignore[arg-type]
    ("DiscoverAgents", pb.DiscoverAgentsRequest(type="bogus"), "type", "calculator"),
    ("DiscoverAgents", pb.DiscoverAgentsRequest(capabilities=["no spaces"]), "capabilities[0]", ""),
    ("DiscoverAgents", pb.DiscoverAgentsRequest(capabilities=TOO_MANY_CAPABILITIES), "capabilities", ""),
    ("DiscoverAgents", pb.DiscoverAgentsRequest(status=7), "status", ""),  # type: ignore[arg-type]
    ("DiscoverAgents", pb.DiscoverAgentsRequest(limit=-1), "limit", ""),
    ("DiscoverAgents", pb.DiscoverAgentsRequest(limit=1001), "limit", "1000"),
]


@pytest.mark.parametrize(("rpc", "request_", "field", "word"), CASES,
                         ids=[f"{rpc}-{field}-{i}" for i, (rpc, _, field, _) in enumerate(CASES)])
async def test_a_broken_rule_is_invalid_argument_naming_the_field(
    shared_agent: InProcess[Any], rpc: str, request_: Message, field: str, word: str
) -> None:
    error = await async_failure(getattr(shared_agent.stub(AgentServiceStub), rpc), request_)
    texts = violation_texts(error)
    assert set(texts) == {field}, texts
    assert word in texts[field], texts


async def test_every_bad_field_is_named_in_one_error(shared_agent: InProcess[Any]) -> None:
    request = pb.RegisterAgentRequest(name="!bad", type="no-such-type", capabilities=["UPPER"],
                                      description="x" * 2001, labels={"Bad": "v"})
    error = await async_failure(shared_agent.stub(AgentServiceStub).RegisterAgent, request)
    assert set(violation_texts(error)) == {"name", "type", "capabilities[0]", "description", "labels.Bad"}


@pytest.mark.parametrize("request_", [
    pb.ListAgentsRequest(page_size=1000, status=1),  # type: ignore[arg-type]
    pb.DiscoverAgentsRequest(limit=1000, type="prime-finder", capabilities=["math.primes", "a:b-c_d.e"]),
    pb.DiscoverAgentsRequest(),  # empty type and status mean any
], ids=["list", "discover", "discover-any"])
async def test_values_at_the_bounds_pass(shared_agent: InProcess[Any], request_: Message) -> None:
    await getattr(shared_agent.stub(AgentServiceStub), type(request_).__name__.removesuffix("Request"))(request_)


def _ruled_fields() -> set[tuple[str, str]]:
    """(request message, field) for every field the AgentService's requests rule, message-level CEL included."""
    field_rules = validate_pb2.DESCRIPTOR.extensions_by_name["field"]
    message_rules = validate_pb2.DESCRIPTOR.extensions_by_name["message"]
    ruled = set()
    for method in pb.DESCRIPTOR.services_by_name["AgentService"].methods:
        message = method.input_type
        for field in message.fields:
            if field_rules in dict(field.GetOptions().ListFields()):
                ruled.add((message.name, field.name))
        rules = dict(message.GetOptions().ListFields()).get(message_rules)
        for cel in rules.cel if rules else ():
            ruled.add((message.name, cel.id.split(".", 1)[0]))  # the chassis names the field the id starts with
    return ruled


def test_the_table_covers_every_rule_in_the_contract() -> None:
    covered = {(type(request).__name__, field.split("[")[0].split(".")[0]) for _, request, field, _ in CASES}
    assert _ruled_fields() - covered == set()
