"""The generated Envoy config, run by a real Envoy in front of real grpc.aio backends: REST, gRPC, LB, retries."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from agent_backend import AgentBackend
from grpc_status import rpc_status

from chassis.paths import DESCRIPTOR_SET
from chassis.resilience.policy import PolicyBook
from chassis.tooling.catalog import Catalog, load_catalog
from chassis.tooling.envoy_config import SAFE_RETRY_ON, build_envoy_config
from chassis.tooling.infra.envoy import EnvoyProcess, validate_config
from chassis.tooling.infra.ports import free_port
from protomesh.agent.v1 import agent_service_pb2, agent_service_pb2_grpc

AGENT = "protomesh.agent.v1.AgentService"


class Response:
    """An HTTP response: status, content type and body (parsed when JSON)."""

    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        self.status = status
        self.content_type = content_type
        self.text = body.decode()
        self.json: Any = json.loads(body) if content_type.startswith("application/json") else None


def http(gateway: EnvoyProcess, method: str, path: str, body: object | None = None) -> Response:
    """One plain HTTP/1.1 call to the gateway (urllib: a REST client with no gRPC in sight)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json"} if data is not None else {}
    request = urllib.request.Request(gateway.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Response(response.status, response.headers.get("content-type", ""), response.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, error.headers.get("content-type", ""), error.read())


def start_gateway(catalog: Catalog, backends: list[AgentBackend], work_dir: Path) -> EnvoyProcess:
    # Routing alone: the recording backends have no chassis interceptor, and credentials at the
    # gateway have their own tests (test_gateway_auth.py).
    config = build_envoy_config(
        catalog,
        {"agent": [b.address for b in backends]},
        listen_port=free_port(),
        admin_port=free_port(),
        descriptor_set=DESCRIPTOR_SET,
        verify_callers=False,
    )
    gateway = EnvoyProcess(config, work_dir)
    gateway.start()
    return gateway


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(DESCRIPTOR_SET)


@pytest.fixture(scope="module")
def backends() -> Iterator[list[AgentBackend]]:
    started = [AgentBackend("a").start(), AgentBackend("b").start()]
    yield started
    for backend in started:
        backend.stop()


@pytest.fixture(scope="module")
def gateway(catalog: Catalog, backends: list[AgentBackend], tmp_path_factory) -> Iterator[EnvoyProcess]:
    envoy = start_gateway(catalog, backends, tmp_path_factory.mktemp("envoy"))
    yield envoy
    envoy.stop()


def call_counts(backends: list[AgentBackend]) -> list[int]:
    return [len(b.servicer.calls) for b in backends]


def calls_since(backends: list[AgentBackend], counts: list[int]) -> list[str]:
    """Methods the backends were called with since call_counts() returned counts."""
    return [method for b, n in zip(backends, counts, strict=True) for method, _ in b.servicer.calls[n:]]


def only_request_since(backends: list[AgentBackend], counts: list[int], method: str) -> Any:
    """The one request the backends got since call_counts() returned counts; it must be for method."""
    new = [(m, r) for b, n in zip(backends, counts, strict=True) for m, r in b.servicer.calls[n:]]
    assert [m for m, _ in new] == [method]
    return new[0][1]


# -- the config itself -----------------------------------------------------------------------


def test_generated_config_passes_envoy_validate(catalog: Catalog, tmp_path: Path) -> None:
    config = build_envoy_config(
        catalog,
        {"agent": [("127.0.0.1", 50051), ("127.0.0.1", 50052)]},
        listen_port=8080,
        admin_port=9901,
        descriptor_set=DESCRIPTOR_SET,
    )
    validate_config(config, tmp_path)


def test_idempotent_methods_get_wider_retries_than_the_rest(catalog: Catalog) -> None:
    config = build_envoy_config(catalog, {}, listen_port=1, admin_port=2, descriptor_set=DESCRIPTOR_SET)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = {r["name"]: r for r in hcm["route_config"]["virtual_hosts"][0]["routes"]}

    get_agent = routes[f"/{AGENT}/GetAgent"]
    assert get_agent["match"] == {"path": f"/{AGENT}/GetAgent"}
    retry_on = get_agent["route"]["retry_policy"]["retry_on"].split(",")
    assert {"unavailable", "reset", *SAFE_RETRY_ON.split(",")} <= set(retry_on)
    # The gateway and the runtime's clients read the same contract policy, so they cannot disagree.
    client_policy = PolicyBook().method(AGENT, "GetAgent")
    assert get_agent["route"]["retry_policy"]["num_retries"] == client_policy.attempts - 1
    assert get_agent["route"]["timeout"] == f"{client_policy.timeout:.3f}s"
    # Every method has its own route (its rate-limit class and deprecation headers); a write without an
    # idempotency key is retried only when it cannot have reached a replica.
    assert routes[f"/{AGENT}/RegisterAgent"]["route"]["retry_policy"]["retry_on"] == SAFE_RETRY_ON
    package_route = routes["protomesh.agent.v1"]
    assert package_route["match"] == {"prefix": "/protomesh.agent.v1."}
    assert package_route["route"]["retry_policy"]["retry_on"] == SAFE_RETRY_ON
    names = list(routes)
    # (REST routes, named "<gRPC path> REST <n>", match REST paths only: the prefix cannot shadow them.)
    exact = [i for i, name in enumerate(names) if name.startswith(f"/{AGENT}/") and " REST " not in name]
    assert names.index("protomesh.agent.v1") > max(exact), "the package prefix must not shadow its exact routes"


def test_upstreams_for_unknown_services_are_rejected(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="not in the catalog"):
        build_envoy_config(catalog, {"nope": []}, listen_port=1, admin_port=2, descriptor_set=DESCRIPTOR_SET)


# -- REST through the transcoder -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/v1/agents", "ListAgents"),
        ("/v1/agents/discover", "DiscoverAgents"),
        ("/v1/agents/types", "ListAgentTypes"),
        ("/health", "GetHealth"),
        ("/health/ready", "GetReadiness"),
        ("/health/live", "GetLiveness"),
    ],
)
def test_rest_get_reaches_its_method_and_literal_segments_beat_variables(
    gateway: EnvoyProcess, backends: list[AgentBackend], path: str, method: str
) -> None:
    before = call_counts(backends)
    response = http(gateway, "GET", path)
    assert response.status == 200, response.text
    assert response.content_type == "application/json"
    assert calls_since(backends, before) == [method]


def test_rest_path_variable_fills_the_request_field(gateway: EnvoyProcess, backends: list[AgentBackend]) -> None:
    before = call_counts(backends)
    response = http(gateway, "GET", "/v1/agents/abc")
    assert response.status == 200
    assert response.json["agent"]["agent_id"] == "abc"
    assert only_request_since(backends, before, "GetAgent").agent_id == "abc"


def test_rest_json_prints_zero_values_with_proto_field_names(gateway: EnvoyProcess) -> None:
    agent = http(gateway, "GET", "/v1/agents/abc").json["agent"]
    assert agent["current_execution_id"] == ""
    assert agent["capabilities"] == []
    assert agent["status"] == "AGENT_STATUS_UNSPECIFIED"


def test_rest_post_body_becomes_the_request(gateway: EnvoyProcess, backends: list[AgentBackend]) -> None:
    before = call_counts(backends)
    response = http(gateway, "POST", "/v1/agents", {"name": "scout", "type": "echo", "capabilities": ["search"]})
    assert response.status == 200, response.text
    assert response.json["agent"]["name"] == "scout"
    request = only_request_since(backends, before, "RegisterAgent")
    assert (request.name, request.type, list(request.capabilities)) == ("scout", "echo", ["search"])


def test_enum_query_parameters_are_case_insensitive(gateway: EnvoyProcess, backends: list[AgentBackend]) -> None:
    before = call_counts(backends)
    assert http(gateway, "GET", "/v1/agents?status=agent_status_idle&page_size=5").status == 200
    request = only_request_since(backends, before, "ListAgents")
    assert (request.status, request.page_size) == (1, 5)


def test_invalid_argument_is_400_with_the_field_violation_in_the_body(gateway: EnvoyProcess) -> None:
    response = http(gateway, "GET", "/v1/agents/invalid")
    assert response.status == 400
    assert response.json["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    (detail,) = response.json["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert detail["field_violations"][0]["field"] == "agent_id"
    assert detail["field_violations"][0]["description"] == "must be a UUID"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/v1/agents/missing", None, 404, grpc.StatusCode.NOT_FOUND),
        ("POST", "/v1/agents", {"name": "taken", "type": "echo"}, 409, grpc.StatusCode.ALREADY_EXISTS),
        ("GET", "/v1/agents/abc/status", None, 501, grpc.StatusCode.UNIMPLEMENTED),
    ],
)
def test_grpc_errors_map_to_http_status_with_a_json_status_body(
    gateway: EnvoyProcess, method: str, path: str, body: object, status: int, code: grpc.StatusCode
) -> None:
    response = http(gateway, method, path, body)
    assert response.status == status
    assert response.json["code"] == code.value[0]
    assert response.json["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("GET", "/v1/nothing-here", None, 404, "Could not resolve /v1/nothing-here"),
        ("DELETE", "/v1/agents", None, 404, "Could not resolve"),
        ("GET", "/v1/agents?colour=blue", None, 400, 'Could not find field "colour"'),
        ("GET", "/v1/agents?page_size=many", None, 400, "page_size"),
        ("PUT", "/v1/agents/abc", {"name": 5}, 400, "name"),
    ],
)
def test_gateway_rejects_bad_rest_calls_with_a_json_status_naming_the_problem(
    gateway: EnvoyProcess, backends: list[AgentBackend], method: str, path: str, body: object, status: int, says: str
) -> None:
    before = call_counts(backends)
    response = http(gateway, method, path, body)
    assert response.status == status
    assert response.json["code"] == {400: 3, 404: 5}[status]
    assert says in response.json["message"]
    assert calls_since(backends, before) == [], "a rejected call must not reach a service"


# -- native gRPC on the same port ------------------------------------------------------------


def test_native_grpc_works_on_the_same_port(gateway: EnvoyProcess, backends: list[AgentBackend]) -> None:
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = agent_service_pb2_grpc.AgentServiceStub(channel)
        reply = stub.GetAgent(agent_service_pb2.GetAgentRequest(agent_id="xyz"), timeout=5)
        assert reply.agent.agent_id == "xyz"
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetAgent(agent_service_pb2.GetAgentRequest(agent_id="invalid"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None and status.details[0].type_url.endswith("google.rpc.BadRequest")


def test_round_robin_spreads_calls_over_both_backends(gateway: EnvoyProcess, backends: list[AgentBackend]) -> None:
    before = call_counts(backends)
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = agent_service_pb2_grpc.AgentServiceStub(channel)
        for _ in range(10):
            stub.GetLiveness(agent_service_pb2.GetLivenessRequest(), timeout=5)
    for _ in range(10):
        assert http(gateway, "GET", "/health/live").status == 200
    served = [len(b.servicer.calls) - n for b, n in zip(backends, before, strict=True)]
    assert sum(served) == 20
    assert min(served) >= 5, f"calls per backend: {served}"


def cluster_stat(gateway: EnvoyProcess, name: str) -> int:
    """A counter of the agent cluster from Envoy's admin /stats."""
    for line in gateway.admin_get(f"/stats?filter=^cluster\\.agent\\.{name}$").splitlines():
        key, _, value = line.partition(": ")
        if key == f"cluster.agent.{name}":
            return int(value)
    raise AssertionError(f"Envoy has no stat cluster.agent.{name}")


# -- failover --------------------------------------------------------------------------------


@pytest.fixture
def fresh_pair(catalog: Catalog, tmp_path: Path) -> Iterator[tuple[EnvoyProcess, list[AgentBackend]]]:
    """Two backends behind their own gateway, for tests that break or eject one of them."""
    backends = [AgentBackend("one").start(), AgentBackend("two").start()]
    gateway = start_gateway(catalog, backends, tmp_path / "envoy")
    yield gateway, backends
    gateway.stop()
    for backend in backends:
        backend.stop()


def test_unavailable_is_retried_on_the_other_replica_only_for_idempotent_methods(
    fresh_pair: tuple[EnvoyProcess, list[AgentBackend]],
) -> None:
    gateway, backends = fresh_pair
    before = call_counts(backends)
    assert http(gateway, "GET", "/v1/agents/unavailable").status == 503
    tried = [len(b.servicer.calls) - n for b, n in zip(backends, before, strict=True)]
    assert sum(tried) == 3, "GetAgent (NO_SIDE_EFFECTS): the first try and 2 retries"
    assert min(tried) >= 1, f"retries must go to the other replica: {tried}"

    before = call_counts(backends)
    assert http(gateway, "POST", "/v1/agents", {"name": "unavailable", "type": "echo"}).status == 503
    assert calls_since(backends, before) == ["RegisterAgent"], "RegisterAgent may have acted: never retried"


def test_replica_reporting_not_serving_gets_no_traffic_until_it_serves_again(
    fresh_pair: tuple[EnvoyProcess, list[AgentBackend]],
) -> None:
    gateway, (healthy, draining) = fresh_pair
    draining.set_serving(False)
    wait_until(lambda: host_health(gateway, draining) == "/failed_active_hc", "Envoy marks the replica unhealthy")

    before = call_counts([healthy, draining])
    for _ in range(6):
        assert http(gateway, "GET", "/health/live").status == 200
    assert [len(b.servicer.calls) - n for b, n in zip([healthy, draining], before, strict=True)] == [6, 0]

    draining.set_serving(True)
    wait_until(lambda: host_health(gateway, draining) == "healthy", "Envoy marks the replica healthy again")


def host_health(gateway: EnvoyProcess, backend: AgentBackend) -> str:
    """The health flags Envoy's admin /clusters shows for the backend's endpoint."""
    prefix = f"agent::127.0.0.1:{backend.port}::health_flags::"
    for line in gateway.admin_get("/clusters").splitlines():
        if line.startswith(prefix):
            return line.removeprefix(prefix)
    raise AssertionError(f"{backend.address} is not an endpoint of the agent cluster")


def wait_until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting until {what}"
        time.sleep(0.05)


def test_idempotent_calls_lose_nothing_when_a_backend_stops_mid_stream(
    fresh_pair: tuple[EnvoyProcess, list[AgentBackend]],
) -> None:
    gateway, (survivor, victim) = fresh_pair
    total, stop_after = 240, 60
    done = 0
    lock = threading.Lock()
    victim_stopped = threading.Event()
    failures: list[str] = []

    def one_call(i: int) -> None:
        nonlocal done
        try:
            if i % 2:
                response = http(gateway, "GET", f"/v1/agents/id-{i}")
                if response.status != 200 or response.json["agent"]["agent_id"] != f"id-{i}":
                    failures.append(f"REST {i}: {response.status} {response.text}")
            else:
                with grpc.insecure_channel(gateway.grpc_target) as channel:
                    stub = agent_service_pb2_grpc.AgentServiceStub(channel)
                    reply = stub.GetAgent(agent_service_pb2.GetAgentRequest(agent_id=f"id-{i}"), timeout=10)
                    assert reply.agent.agent_id == f"id-{i}"
        except Exception as error:  # every kind of failure counts as a lost call
            failures.append(f"call {i}: {error!r}")
        with lock:
            done += 1
            if done == stop_after:
                victim_stopped.set()

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(one_call, i) for i in range(total)]
        assert victim_stopped.wait(timeout=30)
        victim.stop(grace=None)  # aborts its in-flight calls, then refuses connections
        survivor_calls_at_stop = len(survivor.servicer.calls)
        for future in futures:
            future.result(timeout=60)
    assert failures == []
    assert len(victim.servicer.calls) > 0
    assert len(survivor.servicer.calls) > survivor_calls_at_stop
    assert cluster_stat(gateway, "upstream_rq_retry_success") >= 1, "no call needed a retry: the test proved nothing"
