"""The agent contract's own rules (proto/protomesh/agent/v1/rules.proto) agree with the service's code."""

from __future__ import annotations

import re

from buf.validate import validate_pb2

from chassis.validation import violations
from protomesh.agent.v1 import agent_service_pb2, rules_pb2
from services.agent.agent_types import AGENT_TYPES


def _listed_types() -> set[str]:
    """The type names the contract's agent_type rule accepts, read from its CEL expression."""
    options = rules_pb2.DESCRIPTOR.extensions_by_name["agent_type"].GetOptions()
    predefined = dict(options.ListFields())[validate_pb2.DESCRIPTOR.extensions_by_name["predefined"]]
    expression: str = predefined.cel[0].expression
    listed = re.search(r"this in \[([^\]]*)\]", expression)
    assert listed, expression
    return set(re.findall(r"'([^']+)'", listed.group(1)))


def test_the_contract_lists_exactly_the_registered_agent_types() -> None:
    # A type only the contract knows would reach AGENT_TYPES[...] in the servicer; one only the code knows
    # could never be registered.
    assert _listed_types() == set(AGENT_TYPES)


def test_every_registered_type_passes_the_contract() -> None:
    for name in AGENT_TYPES:
        request = agent_service_pb2.RegisterAgentRequest(name="a", type=name)
        assert violations(request) == [], name
