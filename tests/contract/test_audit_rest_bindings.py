"""chassis.audit.rest_binding: the identity service's ext_authz check names a refused REST call by its RPC
(docs/authorization.md, "Audit trail"). Every REST binding of the contracts, called with fresh ids, must be
named as its own RPC with the id the record's resource is, or a refusal would be filed under another action."""

from __future__ import annotations

import functools
import re
import uuid

import pytest

from chassis.audit import resource_field, rest_binding
from chassis.paths import DESCRIPTOR_SET
from chassis.tooling.catalog import load_catalog

_VARIABLE = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")


def _value(values: dict[str, str], variable: re.Match[str]) -> str:
    return values[variable.group(1)]


def _bindings() -> list[tuple[str, str, str, str]]:
    """(verb, a concrete path, its RPC, the id expected as resource) for every REST binding."""
    from google.protobuf import descriptor_pool

    found = []
    for service in load_catalog(DESCRIPTOR_SET):
        for method in service.methods:
            descriptor = descriptor_pool.Default().FindMethodByName(f"{method.service}.{method.name}")
            resource = ".".join(resource_field(descriptor))
            for rule in method.http_rules:
                # Ids derived from the template, not random: parallel workers must collect the same test ids.
                values = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rule.path}#{name}"))
                          for name, _ in _VARIABLE.findall(rule.path)}
                path = _VARIABLE.sub(functools.partial(_value, values), rule.path)
                found.append((rule.verb, path, method.grpc_path, values.get(resource, "")))
    return found


BINDINGS = _bindings()


def test_there_are_bindings() -> None:
    assert len(BINDINGS) > 50


@pytest.mark.parametrize(("verb", "path", "rpc", "resource"), BINDINGS, ids=[f"{b[0]} {b[1]}" for b in BINDINGS])
def test_a_rest_path_is_named_as_its_own_rpc(verb: str, path: str, rpc: str, resource: str) -> None:
    assert rest_binding(verb, path) == (rpc, resource)


def test_a_path_no_contract_binds_is_none() -> None:
    assert rest_binding("GET", "/v1/no-such-collection") is None
    assert rest_binding("PATCH", "/protomesh.agent.v1.AgentService/GetAgent") is None
