"""protomesh.agent.v1 and v2 side by side through a real gateway: one mesh (agent only), REST and gRPC.

The same agents and executions answer through both versions; every v1 response carries the deprecation
headers its contract's lifecycle option declares (Deprecation, RFC 9745; Sunset, RFC 8594; Link to the
migration notes), over REST as headers and over gRPC as initial metadata; v2's and the health probes'
carry none; the served OpenAPI marks v1's operations deprecated and no other.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from chassis.tooling.mesh_testing import Reply, RestClient, mesh_channel, running_mesh
from chassis.tooling.supervisor import Mesh
from protomesh.agent.v1 import agent_service_pb2 as v1
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub as V1Stub
from protomesh.agent.v2 import agent_service_pb2 as v2
from protomesh.agent.v2.agent_service_pb2_grpc import AgentServiceStub as V2Stub

# What proto/protomesh/agent/v1/agent_service.proto declares, written out independently of the generator.
DEPRECATION = f"@{calendar.timegm((2026, 12, 1, 0, 0, 0))}"
SUNSET = "Tue, 01 Jun 2027 00:00:00 GMT"
NOTES = "</docs/versions.md>"
LIFECYCLE_HEADERS = ("deprecation", "sunset", "link")


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    with running_mesh(only=["agent"]) as started:
        yield started


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> RestClient:
    return RestClient.for_mesh(mesh, timeout=30.0)


@pytest.fixture(scope="module")
def channel(mesh: Mesh) -> Iterator[grpc.Channel]:
    with mesh_channel(mesh) as opened:
        yield opened


def _headers(reply: Reply) -> dict[str, str]:
    return {name.lower(): value for name, value in reply.headers.items()}


def _assert_deprecated(reply: Reply) -> None:
    headers = _headers(reply)
    assert headers.get("deprecation") == DEPRECATION, headers
    assert headers.get("sunset") == SUNSET, headers
    assert f'{NOTES}; rel="deprecation"' in headers.get("link", ""), headers
    assert f'{NOTES}; rel="sunset"' in headers.get("link", ""), headers


def _assert_current(reply: Reply) -> None:
    headers = _headers(reply)
    assert not set(LIFECYCLE_HEADERS) & set(headers), headers


def _name() -> str:
    return f"versions-{uuid.uuid4().hex[:10]}"


def test_v1_and_v2_rest_share_the_agents_and_executions(rest: RestClient) -> None:
    old = rest.post("/v1/agents", {"name": _name(), "type": "prime-finder"})
    assert old.status == 200, old.body
    agent = old.body["agent"]
    through_v2 = rest.get(f"/v2/agents/{agent['agent_id']}")
    assert through_v2.status == 200 and through_v2.body["agent"] == agent

    ran = rest.post(f"/v2/agents/{agent['agent_id']}/executions", {"input": {"limit": 100000}, "wait": True})
    assert ran.status == 200, ran.body
    execution = ran.body["execution"]
    assert execution["state"] == "EXECUTION_STATE_SUCCEEDED", execution
    # v2's typed result: int64 as a JSON string, exact; v1 shows the same execution as a Struct of doubles.
    assert execution["result"]["primes"]["count"] == "9592" and execution["result"]["primes"]["largest"] == "99991"
    status = rest.get(f"/v1/agents/{agent['agent_id']}/status?execution_id={execution['execution_id']}")
    assert status.status == 200 and status.body["execution"]["output"]["count"] == 9592
    listed = rest.get(f"/v2/agents/{agent['agent_id']}/executions")
    assert [e["execution_id"] for e in listed.body["executions"]] == [execution["execution_id"]]

    created = rest.post("/v2/agents", {"name": _name(), "type": "calculator"})
    assert created.status == 200, created.body
    found = rest.get(f"/v1/agents?name_contains={created.body['agent']['name']}")
    assert [a["agent_id"] for a in found.body["agents"]] == [created.body["agent"]["agent_id"]]


def test_every_v1_rest_response_is_marked_deprecated_and_no_v2_one(rest: RestClient) -> None:
    agent = rest.post("/v1/agents", {"name": _name(), "type": "calculator"})  # a write: its own route
    _assert_deprecated(agent)
    agent_id = agent.body["agent"]["agent_id"]
    for reply in (rest.get("/v1/agents/types"), rest.get(f"/v1/agents/{agent_id}"),
                  rest.post(f"/v1/agents/{agent_id}/execute", {"input": {"expression": "6*7"}, "wait": True}),
                  rest.get(f"/v1/agents/{uuid.uuid4()}"),  # an error answered by the replica
                  rest.anonymous().get("/v1/agents"),  # Envoy's own answers: no credential, an unknown field
                  rest.post("/v1/agents", {"name": _name(), "type": "calculator", "colour": "red"})):
        assert reply.status in (200, 400, 401, 404), reply.body
        _assert_deprecated(reply)
    for reply in (rest.get("/v2/agent-types"), rest.get(f"/v2/agents/{agent_id}"),
                  rest.get(f"/v2/agents/{agent_id}/executions"), rest.get(f"/v2/agents/{uuid.uuid4()}"),
                  rest.anonymous().get("/health/ready")):
        assert reply.status in (200, 404), reply.body
        _assert_current(reply)


def test_the_link_leads_to_the_migration_notes(rest: RestClient) -> None:
    notes = rest.anonymous().get(NOTES.strip("<>"))
    assert notes.status == 200 and _headers(notes)["content-type"].startswith("text/markdown")
    assert "Migrating a client from v1 to v2" in notes.body


def test_grpc_callers_get_the_headers_as_metadata(channel: grpc.Channel) -> None:
    _, call = V1Stub(channel).ListAgentTypes.with_call(v1.ListAgentTypesRequest(), timeout=10)
    metadata = dict(call.initial_metadata())
    assert metadata.get("deprecation") == DEPRECATION and metadata.get("sunset") == SUNSET, metadata
    assert f'{NOTES}; rel="deprecation"' in metadata.get("link", "")
    reply, call = V2Stub(channel).ListAgentTypes.with_call(v2.ListAgentTypesRequest(), timeout=10)
    assert {t.name for t in reply.agent_types} >= {"calculator", "prime-finder"}
    assert not set(LIFECYCLE_HEADERS) & {key for key, _ in call.initial_metadata()}


def test_v2_has_what_the_chassis_gives_v1(rest: RestClient) -> None:
    """Strict JSON, the contract's rules and access come from the contract, for v2 as for v1."""
    typo = rest.post("/v2/agents", {"name": _name(), "type": "calculator", "colour": "red"})
    assert typo.status == 400 and "colour" in typo.body["message"], typo.body
    bad = rest.post("/v2/agents", {"name": "!bad", "type": "no-such-type"})
    assert bad.status == 400 and set(bad.field_violations()) == {"name", "type"}
    assert rest.anonymous().get("/v2/agents").status == 401


def test_openapi_marks_v1_deprecated_only(rest: RestClient) -> None:
    document: dict[str, Any] = rest.anonymous().get("/openapi.json").body
    operations = {(path, verb): op for path, item in document["paths"].items() for verb, op in item.items()}
    v1_ops = {key: op for key, op in operations.items() if op["x-grpc-method"].startswith("/protomesh.agent.v1.")}
    v2_ops = {key: op for key, op in operations.items() if op["x-grpc-method"].startswith("/protomesh.agent.v2.")}
    assert len(v2_ops) == 11
    assert not [key for key, op in v2_ops.items() if op.get("deprecated")]
    probes = {("/health", "get"), ("/health/ready", "get"), ("/health/live", "get")}
    assert not [key for key in probes if v1_ops[key].get("deprecated")]
    versioned = {key: op for key, op in v1_ops.items() if key not in probes}
    assert versioned and all(op.get("deprecated") is True for op in versioned.values())
    lifecycle = versioned[("/v1/agents", "get")]["x-lifecycle"]
    assert lifecycle == {"deprecated_since": "2026-12-01T00:00:00Z", "sunset": "2027-06-01T00:00:00Z",
                         "migration_url": "/docs/versions.md", "successor": "protomesh.agent.v2.AgentService"}
    assert {"Deprecation", "Sunset", "Link"} <= set(versioned[("/v1/agents", "get")]["responses"]["200"]["headers"])
