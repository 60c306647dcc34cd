"""Object- and property-level authorization through the gateway (OWASP API1 and API3).

API1: organization A's agents, executions, contexts, integrations and subscriptions are created by A's
users; then a member and an admin of organization B call every RPC on one of those objects by its id —
read, update, delete, and the object's other operations — and always get 404 (never the object, never
403, which would confirm it exists), and B's lists never contain them. The objects are still there for A
afterwards, unchanged, and a platform admin reaches them across organizations.

API3: an update (or a create) that tries to set the organization or the owner is refused, and the object
keeps its organization and owner.

Everything runs over REST through Envoy as the real principals (authz_support builds them through the
identity service).
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from chassis.tooling.catalog import MeshMethod, load_catalog
from chassis.tooling.supervisor import Mesh
from tests.e2e.authz_support import Caller, bearer, create_organization, declared, member
from tests.e2e.identity_support import Answer, admin_token, first, identity_mesh, rest_call

CATALOG = load_catalog()
FAILED = "protomesh.agent.v1.ExecutionFailed"


def rpc(service: str, name: str) -> MeshMethod:
    return CATALOG.service(service).method(name)


def as_(mesh: Mesh, caller: Caller, service: str, name: str, fields: dict[str, Any] | None = None) -> Answer:
    return rest_call(mesh, rpc(service, name), fields or {}, headers=caller.headers)


def ok(answer: Answer, what: str) -> Any:
    assert answer.status == 200, f"{what}: {answer.status} {answer.body}"
    return answer.body


@dataclass(frozen=True)
class Objects:
    """Organization A's objects, by id."""

    agent_id: str
    execution_id: str
    context_id: str
    layer_id: str
    integration_id: str
    subscription_id: str


@dataclass(frozen=True)
class World:
    mesh: Mesh
    a_member: Caller
    a_admin: Caller
    b_member: Caller
    b_admin: Caller
    platform: Caller
    org_a: str
    org_b: str
    a: Objects
    b_agent_id: str


def _create_objects(mesh: Mesh, a_member: Caller, a_admin: Caller) -> Objects:
    agent = ok(as_(mesh, a_member, "agent", "RegisterAgent", {"name": f"calc-{uuid.uuid4().hex[:6]}",
                                                               "type": "calculator"}), "RegisterAgent")
    agent_id = str(first(agent, "agent_id", "agentId"))
    ran = ok(as_(mesh, a_member, "agent", "ExecuteAgent", {"agent_id": agent_id, "input": {"expression": "6*7"},
                                                            "wait": True}), "ExecuteAgent")
    execution_id = str(first(ran, "execution_id", "executionId"))
    context = ok(as_(mesh, a_member, "context", "CreateContext", {"name": f"ctx-{uuid.uuid4().hex[:6]}",
                                                                   "type": "session"}), "CreateContext")
    context_id = str(first(context, "context_id", "contextId"))
    layer = ok(as_(mesh, a_member, "context", "AddLayer", {"context_id": context_id, "name": "base",
                                                            "layer_type": "base", "data": {"k": "v"}}), "AddLayer")
    layer_id = str(first(layer, "layer_id", "layerId"))
    root = tempfile.mkdtemp(prefix="protomesh-objects-")
    integration = ok(as_(mesh, a_admin, "integration", "CreateIntegration", {
        "name": f"files-{uuid.uuid4().hex[:6]}", "kind": "INTEGRATION_KIND_LOCAL_STORAGE",
        "config": {"root": root}}), "CreateIntegration")
    integration_id = str(first(integration, "integration_id", "integrationId"))
    subscription = ok(as_(mesh, a_member, "notification", "CreateSubscription", {
        "name": f"sub-{uuid.uuid4().hex[:6]}", "event_types": [FAILED], "email": {"to": ["ops@example.com"]}}),
        "CreateSubscription")
    subscription_id = str(first(subscription, "subscription_id", "subscriptionId"))
    return Objects(agent_id, execution_id, context_id, layer_id, integration_id, subscription_id)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with identity_mesh("agent", "context", "integration", "notification") as mesh:
        platform_token = admin_token(mesh)
        org_a = create_organization(mesh, platform_token, "objects-a")
        org_b = create_organization(mesh, platform_token, "objects-b")
        a_member, a_admin = member(mesh, platform_token, org_a, "member"), member(mesh, platform_token, org_a, "admin")
        b_member = member(mesh, platform_token, org_b, "member", name="member of B")
        b_admin = member(mesh, platform_token, org_b, "admin", name="admin of B")
        objects = _create_objects(mesh, a_member, a_admin)
        b_agent = ok(as_(mesh, b_member, "agent", "RegisterAgent", {"name": f"b-{uuid.uuid4().hex[:6]}",
                                                                     "type": "calculator"}), "B's agent")
        yield World(mesh, a_member, a_admin, b_member, b_admin, bearer("platform admin", platform_token, None),
                    org_a, org_b, objects, str(first(b_agent, "agent_id", "agentId")))


def by_id_calls(a: Objects, b_agent_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every RPC on one of A's objects, with a request that would be valid for its owner."""
    agent, context, integration = {"agent_id": a.agent_id}, {"context_id": a.context_id}, \
        {"integration_id": a.integration_id}
    subscription = {"subscription_id": a.subscription_id}
    return [
        ("agent", "GetAgent", agent),
        ("agent", "UpdateAgent", {**agent, "description": "taken over"}),
        ("agent", "ExecuteAgent", {**agent, "input": {"expression": "1+1"}}),
        ("agent", "GetAgentStatus", agent),
        ("agent", "GetAgentStatus", {**agent, "execution_id": a.execution_id}),
        # A's execution through B's own agent: the execution is A's, so it is unknown to B.
        ("agent", "GetAgentStatus", {"agent_id": b_agent_id, "execution_id": a.execution_id}),
        ("agent", "StopAgent", {**agent, "execution_id": a.execution_id, "reason": "b"}),
        ("agent", "StopAgent", {"agent_id": b_agent_id, "execution_id": a.execution_id, "reason": "b"}),
        ("agent", "DeregisterAgent", agent),
        ("context", "GetContext", context),
        ("context", "UpdateContext", {**context, "metadata": {"taken": "over"}}),
        ("context", "ListLayers", context),
        ("context", "AddLayer", {**context, "name": "planted", "layer_type": "override", "data": {"x": 1}}),
        ("context", "GetLayer", {**context, "layer_id": a.layer_id}),
        ("context", "UpdateLayer", {**context, "layer_id": a.layer_id, "data": {"x": 2}}),
        ("context", "DeleteLayer", {**context, "layer_id": a.layer_id}),
        ("context", "GetResolvedContext", context),
        ("context", "ShareContext", {**context, "service": "service:agent"}),
        ("context", "UnshareContext", {**context, "service": "service:agent"}),
        ("context", "GetContextAnalytics", context),
        ("context", "DeleteContext", context),
        ("integration", "GetIntegration", integration),
        ("integration", "UpdateIntegration", {**integration, "description": "taken over"}),
        ("integration", "CheckIntegrationHealth", integration),
        ("integration", "GetIntegrationStatus", integration),
        ("integration", "TestIntegration", integration),
        ("integration", "InvokeIntegration", {**integration, "operation": "list", "parameters": {}}),
        ("integration", "GetRateLimitStatus", integration),
        ("integration", "GetCacheStats", integration),
        ("integration", "ClearCache", integration),
        ("integration", "GetCircuitBreakerStatus", integration),
        ("integration", "ResetCircuitBreaker", integration),
        ("integration", "DeleteIntegration", integration),
        ("notification", "GetSubscription", subscription),
        ("notification", "UpdateSubscription", {**subscription, "name": "taken-over"}),
        ("notification", "DeleteSubscription", subscription),
    ]


LISTS: list[tuple[str, str, dict[str, Any], str, str]] = [
         ("agent", "ListAgents", {"page_size": 1000}, "agents", "agent_id"),
         ("agent", "DiscoverAgents", {"type": "calculator"}, "agents", "agent_id"),
         ("context", "ListContexts", {"page_size": 1000}, "contexts", "context_id"),
         ("integration", "ListIntegrations", {"page_size": 1000}, "integrations", "integration_id"),
         ("notification", "ListSubscriptions", {"page_size": 1000}, "subscriptions", "subscription_id")]


def ids_in(body: Any, collection: str, id_field: str) -> set[str]:
    items = body.get(collection, []) if isinstance(body, dict) else []
    return {str(first(item, id_field, _camel(id_field))) for item in items}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


@pytest.mark.parametrize("who", ["b_member", "b_admin"])
def test_another_organizations_objects_are_404_by_id(world: World, who: str) -> None:
    caller: Caller = getattr(world, who)
    wrong = []
    for service, name, fields in by_id_calls(world.a, world.b_agent_id):
        answer = as_(world.mesh, caller, service, name, fields)
        # A caller without the RPC's permission is refused before any object is looked up (403 for any id,
        # so it says nothing about A's object); one with it must find nothing.
        expected = 404 if caller.may(declared(rpc(service, name))) else 403
        if answer.status != expected:
            wrong.append(f"{name} {sorted(fields)} as {caller.name}: {answer.status} (want {expected}) "
                         f"{str(answer.body)[:160]}")
    assert not wrong, f"{len(wrong)} calls on organization A's objects did not answer as unknown:\n" + \
        "\n".join(wrong)


@pytest.mark.parametrize("who", ["b_member", "b_admin"])
def test_lists_never_show_another_organizations_objects(world: World, who: str) -> None:
    caller: Caller = getattr(world, who)
    a_ids = {world.a.agent_id, world.a.context_id, world.a.integration_id, world.a.subscription_id}
    for service, name, fields, collection, id_field in LISTS:
        body = ok(as_(world.mesh, caller, service, name, fields), f"{name} as {caller.name}")
        leaked = ids_in(body, collection, id_field) & a_ids
        assert not leaked, f"{name} as {caller.name} lists organization A's {leaked}"
    own = ids_in(ok(as_(world.mesh, caller, "agent", "ListAgents", {"page_size": 1000}), "B's agents"),
                 "agents", "agent_id")
    assert world.b_agent_id in own, "B's own agent must be listed (the list works, it just hides A's)"


def test_the_objects_are_intact_for_their_organization_and_a_platform_admin(world: World) -> None:
    """Run after the attempts above (file order): nothing B sent changed or deleted A's objects."""
    a, mesh = world.a, world.mesh
    for caller in (world.a_member, world.platform):
        agent = ok(as_(mesh, caller, "agent", "GetAgent", {"agent_id": a.agent_id}), f"GetAgent as {caller.name}")
        assert first(agent, "description") in (None, "") and first(agent, "organization_id", "organizationId") \
            == world.org_a, agent
        status = ok(as_(mesh, caller, "agent", "GetAgentStatus", {"agent_id": a.agent_id,
                                                                  "execution_id": a.execution_id}), "status")
        assert first(status, "execution_id", "executionId") == a.execution_id
        ok(as_(mesh, caller, "context", "GetLayer", {"context_id": a.context_id, "layer_id": a.layer_id}), "layer")
        context = ok(as_(mesh, caller, "context", "GetContext", {"context_id": a.context_id}), "GetContext")
        assert first(context, "organization_id", "organizationId") == world.org_a, context
        ok(as_(mesh, caller, "notification", "GetSubscription", {"subscription_id": a.subscription_id}),
           "GetSubscription")
    for caller in (world.a_admin, world.platform):
        integration = ok(as_(mesh, caller, "integration", "GetIntegration", {"integration_id": a.integration_id}),
                         "GetIntegration")
        assert first(integration, "description") in (None, ""), integration


_AGENT_CHANGE: dict[str, Any] = {"description": "changed with it"}
_CONTEXT_CHANGE: dict[str, Any] = {"metadata": {"changed": "with it"}}
_INTEGRATION_CHANGE: dict[str, Any] = {"description": "changed with it"}
_SUBSCRIPTION_CHANGE: dict[str, Any] = {"name": "changed-with-it"}
PROPERTY_UPDATES: list[tuple[str, str, str, str, dict[str, Any]]] = [
    ("agent", "UpdateAgent", "agent_id", "organization_id", _AGENT_CHANGE),
    ("agent", "UpdateAgent", "agent_id", "owner", _AGENT_CHANGE),
    ("context", "UpdateContext", "context_id", "organization_id", _CONTEXT_CHANGE),
    ("context", "UpdateContext", "context_id", "owner", _CONTEXT_CHANGE),
    ("integration", "UpdateIntegration", "integration_id", "organization_id", _INTEGRATION_CHANGE),
    ("notification", "UpdateSubscription", "subscription_id", "organization_id", _SUBSCRIPTION_CHANGE),
]
"""(service, update RPC, id field, the property it tries to set, a legitimate change sent with it: so a 400
can only come from the property, and an update that ignores the property would answer 200)."""


_GETTERS = {"UpdateAgent": "GetAgent", "UpdateContext": "GetContext", "UpdateIntegration": "GetIntegration",
            "UpdateSubscription": "GetSubscription"}


def _attempts(world: World, id_field: str, prop: str, change: dict[str, Any]) -> list[dict[str, Any]]:
    object_id = getattr(world.a, id_field)
    value = world.org_b if prop == "organization_id" else world.b_member.subject
    return [{id_field: object_id, prop: value, **change},  # set in the body beside a legitimate change
            {id_field: object_id, prop: value, **change, "update_mask": ",".join([prop, *change])}]  # and masked


def _never_taken(world: World, body: Any, what: str) -> None:
    """The object (or answer) still has organization A and no owner from B."""
    assert first(body, "organization_id", "organizationId") == world.org_a, f"{what}: {body}"
    assert first(body, "owner") != world.b_member.subject, f"{what}: {body}"


@pytest.mark.parametrize(("service", "name", "id_field", "prop", "change"), PROPERTY_UPDATES,
                         ids=[f"{n}-{p}" for _, n, _, p, _ in PROPERTY_UPDATES])
def test_an_update_never_moves_an_object_to_another_organization_or_owner(
        world: World, service: str, name: str, id_field: str, prop: str, change: dict[str, Any]) -> None:
    """Whatever the answer, the property is not taken from the request."""
    for fields in _attempts(world, id_field, prop, change):
        answer = as_(world.mesh, world.a_admin, service, name, fields)  # A's admin: every write permission of A
        if answer.status == 200:
            _never_taken(world, answer.body, f"{name} answered with {prop} taken")
    current = ok(as_(world.mesh, world.a_admin, service, _GETTERS[name], {id_field: getattr(world.a, id_field)}),
                 _GETTERS[name])
    _never_taken(world, current, f"{name} stored {prop}")


@pytest.mark.parametrize(("service", "name", "id_field", "prop", "change"), PROPERTY_UPDATES,
                         ids=[f"{n}-{p}" for _, n, _, p, _ in PROPERTY_UPDATES])
def test_an_update_that_sets_the_organization_or_owner_is_refused(
        world: World, service: str, name: str, id_field: str, prop: str, change: dict[str, Any]) -> None:
    """Refused (400), not silently dropped: the client learns that the property is not its to set."""
    for fields in _attempts(world, id_field, prop, change):
        answer = as_(world.mesh, world.a_admin, service, name, fields)
        assert answer.status == 400, f"{name} setting {prop} was not refused: {answer.status} {answer.body}"
        assert prop in json.dumps(answer.body), f"the refusal does not name {prop}: {answer.body}"


CREATES: list[tuple[str, str, dict[str, Any]]] = [
    ("agent", "RegisterAgent", {"type": "calculator"}),
    ("context", "CreateContext", {"type": "session"}),
]


@pytest.mark.parametrize(("service", "name", "fields"), CREATES, ids=[n for _, n, _ in CREATES])
def test_a_create_never_takes_the_organization_or_owner_from_the_request(
        world: World, service: str, name: str, fields: dict[str, Any]) -> None:
    for prop, value in (("organization_id", world.org_b), ("owner", world.b_member.subject)):
        answer = as_(world.mesh, world.a_member, service, name,
                     {**fields, "name": f"planted-{uuid.uuid4().hex[:6]}", prop: value})
        if answer.status == 200:
            _never_taken(world, answer.body, f"{name} created with {prop}={value}")


@pytest.mark.parametrize(("service", "name", "fields"), CREATES, ids=[n for _, n, _ in CREATES])
def test_a_create_that_sets_the_organization_or_owner_is_refused(
        world: World, service: str, name: str, fields: dict[str, Any]) -> None:
    for prop, value in (("organization_id", world.org_b), ("owner", world.b_member.subject)):
        answer = as_(world.mesh, world.a_member, service, name,
                     {**fields, "name": f"planted-{uuid.uuid4().hex[:6]}", prop: value})
        assert answer.status == 400, f"{name} setting {prop} was not refused: {answer.status} {answer.body}"
