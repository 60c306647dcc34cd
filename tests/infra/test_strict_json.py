"""Strict JSON at the gateway: a real Envoy from the generator, in front of a real AgentService backend.

A REST body field the contract does not know, or of the wrong JSON type, is refused with 400 naming its
path (google.rpc.BadRequest), before the transcoder would drop it; known fields, either spelling, and
free-form Struct fields reach the backend as before; a body that is not JSON keeps the transcoder's answer.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from agent_backend import AgentBackend
from test_envoy_gateway import Response, call_counts, calls_since, only_request_since, start_gateway

from chassis.paths import DESCRIPTOR_SET
from chassis.tooling.catalog import Catalog, load_catalog
from chassis.tooling.gateway_strict_json import body_messages, load_pool, lua_source
from chassis.tooling.infra.envoy import EnvoyProcess


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(DESCRIPTOR_SET)


@pytest.fixture(scope="module")
def backend() -> Iterator[AgentBackend]:
    started = AgentBackend("strict").start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def gateway(catalog: Catalog, backend: AgentBackend,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyProcess]:
    envoy = start_gateway(catalog, [backend], tmp_path_factory.mktemp("envoy"))
    yield envoy
    envoy.stop()


def send(gateway: EnvoyProcess, method: str, path: str, body: bytes | str | dict[str, Any]) -> Response:
    data = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
    request = urllib.request.Request(gateway.url + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Response(response.status, response.headers.get("content-type", ""), response.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, error.headers.get("content-type", ""), error.read())


def violations(reply: Response) -> dict[str, str]:
    assert reply.json is not None, reply.text
    found: dict[str, str] = {}
    for detail in reply.json.get("details", []):
        if detail.get("@type", "").endswith("google.rpc.BadRequest"):
            found |= {v["field"]: v["description"] for v in detail["field_violations"]}
    return found


def refused(gateway: EnvoyProcess, backend: AgentBackend, method: str, path: str,
            body: bytes | str | dict[str, Any]) -> dict[str, str]:
    """The field violations of a 400 the gateway answered itself (the backend saw nothing)."""
    before = call_counts([backend])
    reply = send(gateway, method, path, body)
    assert reply.status == 400, (reply.status, reply.text)
    assert reply.content_type.startswith("application/json"), reply.content_type
    assert reply.json["code"] == 3 and reply.json["message"].startswith("invalid request: "), reply.json
    assert calls_since([backend], before) == [], "a refused body reached the backend"
    return violations(reply)


def test_a_typo_is_refused_naming_the_field(gateway: EnvoyProcess, backend: AgentBackend) -> None:
    found = refused(gateway, backend, "POST", "/v1/agents", {"name": "n", "type": "echo", "descripton": "typo"})
    assert list(found) == ["descripton"], found
    assert "no such field" in found["descripton"]


def test_a_property_the_request_does_not_have_is_refused(gateway: EnvoyProcess, backend: AgentBackend) -> None:
    # The case that made this filter: an update body that tries to move the object to another organization.
    found = refused(gateway, backend, "PUT", "/v1/agents/a1",
                    {"description": "d", "organization_id": "another", "owner": "someone"})
    assert set(found) == {"organization_id", "owner"}, found


def test_a_nested_unknown_field_is_named_by_its_path(gateway: EnvoyProcess, backend: AgentBackend) -> None:
    # No notification backend here: the refusal comes from the gateway before any routing.
    found = refused(gateway, backend, "POST", "/v1/subscriptions",
                    {"name": "s", "eventTypes": ["a"], "webhook": {"url": "https://x", "urll": "typo"}})
    assert list(found) == ["webhook.urll"], found


def test_wrong_json_types_are_refused_naming_each_field(gateway: EnvoyProcess, backend: AgentBackend) -> None:
    found = refused(gateway, backend, "POST", "/v1/agents",
                    {"name": 5, "type": "echo", "capabilities": ["ok", 3], "labels": {"k": {"x": 1}},
                     "config": [], "request_id": True})
    assert set(found) == {"name", "capabilities[1]", 'labels["k"]', "config", "request_id"}, found
    assert found["name"] == "expected a string, got a number"
    assert found['labels["k"]'] == "expected a string, got an object"
    found = refused(gateway, backend, "POST", "/v1/subscriptions", {"name": "s", "webhook": "https://x",
                                                                    "enabled": "yes"})
    assert set(found) == {"webhook", "enabled"}, found


def test_known_fields_in_either_spelling_and_free_form_structs_pass(
        gateway: EnvoyProcess, backend: AgentBackend) -> None:
    before = call_counts([backend])
    reply = send(gateway, "POST", "/v1/agents", {
        "name": "ok", "type": "echo", "capabilities": ["a"], "labels": {"team": "x"}, "requestId": "r-1",
        # Struct: any names, any nesting, escapes in keys and strings.
        "config": {"anything": {"deep": [1, 2.5e3, -0, None, True, {"\u00e9t\u00e9": "a \"quoted\" \\ \n"}]}},
        "description": None,
    })
    assert reply.status == 200, reply.text
    request = only_request_since([backend], before, "RegisterAgent")
    assert request.request_id == "r-1" and request.labels["team"] == "x"
    assert request.config["anything"]["deep"][5]["\u00e9t\u00e9"] == 'a "quoted" \\ \n'


def test_escaped_names_are_read_as_the_transcoder_reads_them(gateway: EnvoyProcess, backend: AgentBackend) -> None:
    before = call_counts([backend])
    reply = send(gateway, "POST", "/v1/agents", '{"na\\u006de": "escaped", "type": "echo"}')
    assert reply.status == 200, reply.text
    assert only_request_since([backend], before, "RegisterAgent").name == "escaped"
    found = refused(gateway, backend, "POST", "/v1/agents", '{"name": "n", "\\u00e9t\\u00e9": 1}')
    assert list(found) == ["\u00e9t\u00e9"], found


def test_malformed_json_keeps_the_transcoders_answer(gateway: EnvoyProcess, backend: AgentBackend) -> None:
    for body in ('{"name": "n", "typo": 1', '{"name": "x" "type": "e"}', "[1]", '{"typo": 1} x', '{"name": NaN}'):
        reply = send(gateway, "POST", "/v1/agents", body)
        assert reply.status == 400, (body, reply.text)
        assert violations(reply) == {}, (body, reply.json)  # the transcoder's text, not a field violation


def test_the_walker_reads_what_the_transcoder_reads(gateway: EnvoyProcess, backend: AgentBackend) -> None:
    # The transcoder's JSON parser takes a raw control character in a string, unknown escapes, single
    # quotes, unquoted names, trailing commas and `1.`; the walker must too, or a typo beside one would
    # slip through unchecked.
    assert list(refused(gateway, backend, "POST", "/v1/agents", '{"name": "\x01", "typo": 1}')) == ["typo"]
    for body in ('{"name": "\\x", "ty\\po": 1}', "{'name': 'x', 'typo': 1}", '{name: "x", typo: 1}',
                 '{"name": "x", "typo": 1,}', '{"capabilities": ["a",], "typo": [1.,]}'):
        assert list(refused(gateway, backend, "POST", "/v1/agents", body)) == ["typo"], body


def test_a_body_larger_than_the_connection_buffer_is_still_checked(
        gateway: EnvoyProcess, backend: AgentBackend) -> None:
    big = {"name": "big", "type": "echo", "config": {"blob": "x" * 200_000}}
    before = call_counts([backend])
    assert send(gateway, "POST", "/v1/agents", big).status == 200
    assert only_request_since([backend], before, "RegisterAgent").name == "big"
    assert list(refused(gateway, backend, "POST", "/v1/agents", {**big, "typo": 1})) == ["typo"]


def test_reads_and_native_grpc_are_untouched(gateway: EnvoyProcess, backend: AgentBackend) -> None:
    before = call_counts([backend])
    assert send(gateway, "GET", "/v1/agents/a1", b"").status == 200
    assert calls_since([backend], before) == ["GetAgent"]


def test_the_schemas_come_from_the_descriptor_set(catalog: Catalog) -> None:
    messages = body_messages(catalog, load_pool(DESCRIPTOR_SET))
    # Every body-carrying REST binding of the contracts, so a new one is covered without touching the filter.
    assert "protomesh.agent.v1.UpdateAgentRequest" in messages
    source = lua_source(catalog)
    assert '["organization_id"]' not in source.split('M["protomesh.agent.v1.UpdateAgentRequest"]')[1].split("\n")[0]
    assert '["update_mask"]={"S"}' in source and '["updateMask"]={"S"}' in source
