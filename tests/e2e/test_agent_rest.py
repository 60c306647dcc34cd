"""Every AgentService operation as REST/JSON through Envoy, with its error cases."""

from __future__ import annotations

import uuid

from chassis.tooling.mesh_testing import RestClient, eventually


def register(rest: RestClient, name: str, type_: str = "calculator", **extra: object) -> dict:
    reply = rest.post("/v1/agents", {"name": name, "type": type_, **extra})
    assert reply.status == 200, reply.body
    return reply.body["agent"]


def test_register_get_and_list_round_trip(rest: RestClient) -> None:
    agent = register(rest, "rest-calc", description="adds things", capabilities=["math.extra"],
                     labels={"team": "core"}, config={"expression": "1+1"})
    assert uuid.UUID(agent["agent_id"])
    assert agent["status"] == "AGENT_STATUS_IDLE"
    assert agent["capabilities"] == ["math.evaluate", "math.extra"]
    fetched = rest.get(f"/v1/agents/{agent['agent_id']}")
    assert fetched.status == 200 and fetched.body["agent"] == agent
    listed = rest.get("/v1/agents?type=calculator&name_contains=REST-CALC")
    assert listed.status == 200
    assert [a["agent_id"] for a in listed.body["agents"]] == [agent["agent_id"]]
    assert listed.body["page_info"]["total_size"] == 1


def test_missing_name_is_400_naming_the_field(rest: RestClient) -> None:
    reply = rest.post("/v1/agents", {"type": "calculator"})
    assert reply.status == 400
    assert reply.body["code"] == 3
    assert "name" in reply.field_violations()


def test_every_bad_field_is_named_at_once(rest: RestClient) -> None:
    reply = rest.post("/v1/agents", {"name": "!bad", "type": "no-such-type", "capabilities": ["UPPER"],
                                     "description": "x" * 2001})
    assert reply.status == 400
    assert set(reply.field_violations()) == {"name", "type", "capabilities[0]", "description"}
    assert "calculator" in reply.field_violations()["type"]


def test_malformed_json_is_400(rest: RestClient) -> None:
    reply = rest.call("POST", "/v1/agents", raw=b'{"name": ')
    assert reply.status == 400


def test_unknown_query_parameter_is_400(rest: RestClient) -> None:
    # Unknown JSON *body* fields are dropped by the proto3 JSON mapping Envoy follows; query
    # parameters are checked (reject_unknown_query_parameters).
    assert rest.get("/v1/agents?colour=red").status == 400


def test_duplicate_name_is_409_case_insensitively(rest: RestClient) -> None:
    register(rest, "dup-agent")
    reply = rest.post("/v1/agents", {"name": "DUP-agent", "type": "calculator"})
    assert reply.status == 409
    assert "already exists" in reply.body["message"]


def test_unknown_id_is_404_a_malformed_one_400(rest: RestClient) -> None:
    for path in (f"/v1/agents/{uuid.uuid4()}", f"/v1/agents/{uuid.uuid4()}/status"):
        reply = rest.get(path)
        assert reply.status == 404, (path, reply.body)
    for path in ("/v1/agents/not-an-id", "/v1/agents/%20", "/v1/agents/%00"):
        reply = rest.get(path)
        assert reply.status == 400 and reply.body["message"], (path, reply.body)
    assert "agent_id" in rest.get("/v1/agents/not-an-id").field_violations()
    # A NUL in a query value reaches PostgreSQL's text parameters: a 400 naming it, not a 500.
    assert "name_contains" in rest.get("/v1/agents?name_contains=a%00b").field_violations()
    assert rest.delete(f"/v1/agents/{uuid.uuid4()}").status == 404
    assert rest.put(f"/v1/agents/{uuid.uuid4()}", {"description": "x"}).status == 404
    assert rest.post(f"/v1/agents/{uuid.uuid4()}/execute", {"input": {}}).status == 404
    assert rest.post(f"/v1/agents/{uuid.uuid4()}/stop", {}).status == 404


def test_unknown_path_is_404(rest: RestClient) -> None:
    assert rest.get("/v1/nothing-here").status == 404


def test_literal_segments_are_not_taken_for_ids(rest: RestClient) -> None:
    types = rest.get("/v1/agents/types")
    assert types.status == 200
    assert {t["name"] for t in types.body["agent_types"]} >= {"calculator", "text-analyzer", "prime-finder"}
    discover = rest.get("/v1/agents/discover")
    assert discover.status == 200 and "agents" in discover.body


def test_update_changes_only_given_fields_and_mask_can_clear(rest: RestClient) -> None:
    agent = register(rest, "upd-agent", description="before", labels={"a": "1"})
    reply = rest.put(f"/v1/agents/{agent['agent_id']}", {"description": "after"})
    assert reply.status == 200
    assert reply.body["agent"]["description"] == "after"
    assert reply.body["agent"]["labels"] == {"a": "1"}
    assert reply.body["agent"]["update_time"] > agent["update_time"]
    cleared = rest.put(f"/v1/agents/{agent['agent_id']}", {"update_mask": "labels"})
    assert cleared.status == 200 and cleared.body["agent"]["labels"] == {}
    assert rest.put(f"/v1/agents/{agent['agent_id']}", {}).status == 400
    assert rest.put(f"/v1/agents/{agent['agent_id']}", {"update_mask": "type"}).status == 400
    register(rest, "taken-name")
    assert rest.put(f"/v1/agents/{agent['agent_id']}", {"name": "taken-name"}).status == 409


def test_deregister_removes_the_agent(rest: RestClient) -> None:
    agent = register(rest, "gone-agent")
    reply = rest.delete(f"/v1/agents/{agent['agent_id']}")
    assert reply.status == 200 and reply.body["agent_id"] == agent["agent_id"]
    assert rest.get(f"/v1/agents/{agent['agent_id']}").status == 404
    assert rest.delete(f"/v1/agents/{agent['agent_id']}").status == 404


def test_execute_calculator_and_read_status(rest: RestClient) -> None:
    agent = register(rest, "exec-calc")
    reply = rest.post(f"/v1/agents/{agent['agent_id']}/execute",
                      {"input": {"expression": "2 * (3 + 4) ** 2 - sqrt(16)"}, "wait": True})
    assert reply.status == 200, reply.body
    execution = reply.body["execution"]
    assert execution["state"] == "EXECUTION_STATE_SUCCEEDED"
    assert execution["output"]["result"] == 94
    assert execution["start_time"] and execution["end_time"]
    status = rest.get(f"/v1/agents/{agent['agent_id']}/status")
    assert status.status == 200
    assert status.body["status"] == "AGENT_STATUS_IDLE"
    assert status.body["execution"]["execution_id"] == execution["execution_id"]
    by_id = rest.get(f"/v1/agents/{agent['agent_id']}/status?execution_id={execution['execution_id']}")
    assert by_id.body["execution"]["output"]["result"] == 94


def test_text_analyzer_does_real_work(rest: RestClient) -> None:
    agent = register(rest, "exec-text", "text-analyzer")
    text = "The cat sat. The cat ran! A dog sat?"
    reply = rest.post(f"/v1/agents/{agent['agent_id']}/execute", {"input": {"text": text, "top": 2}, "wait": True})
    output = reply.body["execution"]["output"]
    assert output["words"] == 9 and output["sentences"] == 3 and output["unique_words"] == 6
    assert output["top_words"] == [{"word": "the", "count": 2}, {"word": "cat", "count": 2}]


def test_execution_failure_is_recorded_with_its_error(rest: RestClient) -> None:
    agent = register(rest, "exec-fail")
    reply = rest.post(f"/v1/agents/{agent['agent_id']}/execute", {"input": {"expression": "1/0"}, "wait": True})
    assert reply.status == 200
    assert reply.body["execution"]["state"] == "EXECUTION_STATE_FAILED"
    assert "division by zero" in reply.body["execution"]["error"]


def test_bad_execution_input_is_400_naming_the_input_field(rest: RestClient) -> None:
    agent = register(rest, "exec-bad-input", "prime-finder")
    reply = rest.post(f"/v1/agents/{agent['agent_id']}/execute", {"input": {"limit": "many"}})
    assert reply.status == 400
    assert "input.limit" in reply.field_violations()


def test_stop_a_running_execution_then_stopping_again_is_refused(rest: RestClient) -> None:
    agent = register(rest, "exec-long", "prime-finder")
    started = rest.post(f"/v1/agents/{agent['agent_id']}/execute", {"input": {"limit": 9_000_000_000}})
    assert started.status == 200
    execution_id = started.body["execution"]["execution_id"]
    eventually(lambda: rest.get(f"/v1/agents/{agent['agent_id']}/status").body["execution"]["progress"] > 0,
               what="the prime sieve to report progress")
    busy = rest.post(f"/v1/agents/{agent['agent_id']}/execute", {"input": {"limit": 10}})
    assert busy.status == 400 and execution_id in busy.body["message"]
    stopped = rest.post(f"/v1/agents/{agent['agent_id']}/stop", {"reason": "test over"})
    assert stopped.status == 200
    assert stopped.body["execution"]["state"] == "EXECUTION_STATE_STOPPED"
    assert stopped.body["execution"]["error"] == "test over"
    again = rest.post(f"/v1/agents/{agent['agent_id']}/stop", {"execution_id": execution_id})
    assert again.status in (400, 412) and "STOPPED" in again.body["message"]
    status = rest.get(f"/v1/agents/{agent['agent_id']}/status").body
    assert status["status"] == "AGENT_STATUS_IDLE"
    assert status["execution"]["state"] == "EXECUTION_STATE_STOPPED"


def test_stopping_a_finished_execution_is_refused(rest: RestClient) -> None:
    agent = register(rest, "exec-done")
    done = rest.post(f"/v1/agents/{agent['agent_id']}/execute", {"input": {"expression": "1+1"}, "wait": True})
    execution_id = done.body["execution"]["execution_id"]
    reply = rest.post(f"/v1/agents/{agent['agent_id']}/stop", {"execution_id": execution_id})
    assert reply.status in (400, 412)
    assert reply.body["code"] == 9  # FAILED_PRECONDITION
    assert "SUCCEEDED" in reply.body["message"]


def test_discover_by_type_capability_and_status(rest: RestClient) -> None:
    a = register(rest, "disc-text", "text-analyzer", capabilities=["lang.nl"])
    register(rest, "disc-text-2", "text-analyzer")
    found = rest.get("/v1/agents/discover?type=text-analyzer&capabilities=lang.nl&capabilities=text.analyze")
    assert [x["agent_id"] for x in found.body["agents"]] == [a["agent_id"]]
    idle = rest.get("/v1/agents/discover?type=text-analyzer&status=AGENT_STATUS_IDLE")
    assert {x["name"] for x in idle.body["agents"]} >= {"disc-text", "disc-text-2"}
    assert rest.get("/v1/agents/discover?status=AGENT_STATUS_BUSY&type=text-analyzer").body["agents"] == []
    assert rest.get("/v1/agents/discover?type=bogus").status == 400


def test_pagination_walks_every_agent_once(rest: RestClient) -> None:
    names = {f"page-{i}" for i in range(7)}
    for name in names:
        register(rest, name, "json-transformer")
    seen: list[str] = []
    token = ""
    while True:
        reply = rest.get(f"/v1/agents?type=json-transformer&page_size=3&page_token={token}")
        assert reply.status == 200
        assert reply.body["page_info"]["total_size"] == 7
        seen += [a["name"] for a in reply.body["agents"]]
        token = reply.body["page_info"]["next_page_token"]
        if not token:
            break
    assert sorted(seen) == sorted(names)
    assert rest.get("/v1/agents?page_token=garbage").status == 400
    assert rest.get("/v1/agents?page_size=5000").status == 400


def test_info_and_health_endpoints(rest: RestClient) -> None:
    info = rest.get("/v1/info")
    assert info.status == 200
    assert info.body["info"]["name"] == "agent"
    assert info.body["info"]["grpc_services"] == ["protomesh.agent.v1.AgentService", "protomesh.agent.v2.AgentService"]
    assert "calculator" in info.body["agent_types"]
    health = rest.get("/health")
    assert health.status == 200 and health.body["health"]["state"] == "HEALTH_STATE_SERVING"
    assert health.body["health"]["dependencies"][0]["name"] == "postgres"
    assert rest.get("/health/ready").status == 200
    live = rest.get("/health/live")
    assert live.status == 200 and live.body["state"] == "HEALTH_STATE_SERVING"
