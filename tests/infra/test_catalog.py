"""The service catalog is derived from the real descriptor set: services, methods, HTTP rules, idempotency."""

from __future__ import annotations

import pytest

from chassis.paths import DESCRIPTOR_SET
from chassis.tooling.catalog import Catalog, HttpRule, load_catalog

AGENT = "protomesh.agent.v1.AgentService"
AGENT_V2 = "protomesh.agent.v2.AgentService"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(DESCRIPTOR_SET)


def test_agent_package_becomes_the_agent_mesh_service(catalog: Catalog) -> None:
    agent = catalog.service("agent")
    assert agent.module == "services.agent"
    # Both major versions are served by the agent replicas (docs/versions.md); v1 first, so its health checks.
    assert agent.packages == ["protomesh.agent.v1", "protomesh.agent.v2"]
    assert agent.grpc_services == [AGENT, AGENT_V2]
    assert AGENT in catalog.grpc_services


def test_packages_without_services_are_skipped(catalog: Catalog) -> None:
    assert "common" not in catalog.names
    assert all(not name.startswith("google") for name in catalog.names)


def test_methods_know_their_grpc_path_and_http_rule(catalog: Catalog) -> None:
    agent = catalog.service("agent")
    get = agent.method("GetAgent")
    assert get.grpc_path == f"/{AGENT}/GetAgent"
    assert get.http == HttpRule(verb="GET", path="/v1/agents/{agent_id}")
    assert get.input_type == "protomesh.agent.v1.GetAgentRequest"
    register = agent.method("RegisterAgent")
    assert register.http == HttpRule(verb="POST", path="/v1/agents", body="*")
    assert agent.method("DiscoverAgents").http == HttpRule(verb="GET", path="/v1/agents/discover")
    assert agent.method("GetLiveness").http == HttpRule(verb="GET", path="/health/live")
    assert agent.method(f"/{AGENT}/UpdateAgent").http == HttpRule(verb="PUT", path="/v1/agents/{agent_id}", body="*")


def test_idempotency_comes_from_the_standard_method_option(catalog: Catalog) -> None:
    agent = catalog.service("agent")
    assert agent.method("GetAgent").idempotency_level == "NO_SIDE_EFFECTS"
    assert agent.method("GetAgent").idempotent
    assert agent.method("UpdateAgent").idempotency_level == "IDEMPOTENT"
    assert agent.method("UpdateAgent").idempotent
    assert agent.method("RegisterAgent").idempotency_level == "IDEMPOTENCY_UNKNOWN"
    assert not agent.method("RegisterAgent").idempotent
    assert not agent.method("ExecuteAgent").idempotent


def test_every_method_of_the_generated_service_is_in_the_catalog(catalog: Catalog) -> None:
    from protomesh.agent.v1 import agent_service_pb2
    from protomesh.agent.v2 import agent_service_pb2 as v2

    declared = [m.full_name for module in (agent_service_pb2, v2)
                for m in module.DESCRIPTOR.services_by_name["AgentService"].methods]
    assert [f"{m.service}.{m.name}" for m in catalog.service("agent").methods] == declared
    assert all(m.http is not None for m in catalog.methods())


def test_unknown_names_are_errors_that_list_what_exists(catalog: Catalog) -> None:
    with pytest.raises(KeyError, match="known: \\['agent'"):
        catalog.service("nope")
    with pytest.raises(KeyError, match="GetAgent"):
        catalog.service("agent").method("Nope")


def test_missing_descriptor_set_says_how_to_regenerate(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="scripts/gen_protos"):
        load_catalog(tmp_path / "missing.binpb")
