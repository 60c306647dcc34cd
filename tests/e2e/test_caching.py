"""Caching and rate limits through a real gateway (docs/caching.md): one mesh, two agent replicas, Envoy.

* A cached read carries ETag and Cache-Control; a matching If-None-Match is 304 with no body; after a
  write the old tag gets the new answer.
* Read after write through either replica, under a bounded load of other readers keeping both caches hot:
  never the old value (each read names its replica in the x-protomesh-instance trailer).
* Rate limits: a caller over its class's quota gets 429 with Retry-After, RateLimit-Policy and RateLimit
  over REST, RESOURCE_EXHAUSTED over gRPC; another caller is not affected; anonymous callers are limited by
  address; the refusals are in Envoy's per-class stats.

The mesh's limits are lowered (PROTOMESH_RATE_LIMITS, read where the supervisor writes Envoy's config) so a
few hundred calls cross them: reads 400 per minute, public routes 100 per 10 s.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from chassis.paths import DESCRIPTOR_SET
from chassis.tooling.catalog import load_catalog
from chassis.tooling.envoy_config import build_envoy_config
from chassis.tooling.gateway_auth import EXT_AUTHZ
from chassis.tooling.gateway_cache import NOT_MODIFIED_FILTER
from chassis.tooling.gateway_ratelimit import OVERRIDE_ENV, PUBLIC, RateLimits, configured
from chassis.tooling.mesh_testing import Reply, RestClient, mesh_channel, running_mesh
from chassis.tooling.supervisor import Mesh
from protomesh.agent.v1 import agent_service_pb2 as pb
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub
from tests.e2e.identity_support import identity_call

READ_QUOTA = 400
PUBLIC_QUOTA = 100


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(OVERRIDE_ENV, f"read={READ_QUOTA}/60s:{READ_QUOTA},public={PUBLIC_QUOTA}/10s:{PUBLIC_QUOTA}")
        with running_mesh(only=["agent"], replicas=2) as started:
            yield started


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> RestClient:
    return RestClient.for_mesh(mesh)


@pytest.fixture(scope="module")
def agent(rest: RestClient) -> dict[str, Any]:
    created = rest.post("/v1/agents", {"name": f"cached-{uuid.uuid4().hex[:6]}", "type": "calculator"})
    assert created.status == 200, created.body
    return dict(created.body["agent"])


def _header(reply: Reply, name: str) -> str | None:
    return next((v for k, v in reply.headers.items() if k.lower() == name), None)


def test_etag_cache_control_and_304(rest: RestClient, agent: dict[str, Any]) -> None:
    path = f"/v1/agents/{agent['agent_id']}"
    first = rest.get(path)
    assert first.status == 200, first.body
    etag = _header(first, "etag")
    assert etag and etag.startswith('"'), first.headers
    assert _header(first, "cache-control") == "private, no-cache"
    unchanged = rest.call("GET", path, headers={"if-none-match": etag})
    assert unchanged.status == 304, unchanged.body
    assert unchanged.body is None and _header(unchanged, "etag") == etag
    assert _header(unchanged, "x-protomesh-not-modified") is None  # the replica's marker stays inside
    other = rest.call("GET", path, headers={"if-none-match": '"someone-else"'})
    assert other.status == 200 and other.body == first.body
    changed = rest.put(path, {"description": "changed"})
    assert changed.status == 200, changed.body
    after = rest.call("GET", path, headers={"if-none-match": etag})
    assert after.status == 200 and after.body["agent"]["description"] == "changed"
    assert _header(after, "etag") not in (None, etag)
    types = rest.get("/v1/agents/types")
    assert types.status == 200 and _header(types, "cache-control") == "private, max-age=60"


def test_read_after_write_through_either_replica_under_load(mesh: Mesh, rest: RestClient,
                                                            agent: dict[str, Any]) -> None:
    path = f"/v1/agents/{agent['agent_id']}"
    stop = threading.Event()

    def keep_hot() -> int:
        # Other readers keep both replicas' caches full while the writes go on (bounded: 80 reads each).
        reads = 0
        while not stop.is_set() and reads < 80:
            assert rest.get(path).status == 200
            reads += 1
        return reads

    stale: list[tuple[int, str, str]] = []
    answered_by: set[str] = set()
    with concurrent.futures.ThreadPoolExecutor(2) as pool, mesh_channel(mesh) as channel:
        readers = [pool.submit(keep_hot) for _ in range(2)]
        agents = AgentServiceStub(channel)
        try:
            for round_ in range(20):
                description = f"round {round_} {uuid.uuid4().hex[:6]}"
                assert rest.put(path, {"description": description}).status == 200
                seen = rest.get(path).body["agent"]["description"]
                if seen != description:
                    stale.append((round_, "rest", seen))
                for _ in range(2):  # Envoy round-robins: over the rounds both replicas answer
                    reply, call = agents.GetAgent.with_call(pb.GetAgentRequest(agent_id=agent["agent_id"]),
                                                            timeout=10)
                    answered_by.update(v for k, v in call.trailing_metadata() or () if k == "x-protomesh-instance")
                    if reply.agent.description != description:
                        stale.append((round_, "grpc", reply.agent.description))
        finally:
            stop.set()
            background = sum(r.result() for r in readers)
    assert not stale, stale[:5]
    assert len(answered_by) == 2, answered_by
    assert background > 0


def test_rate_limit_per_caller_with_headers(mesh: Mesh, rest: RestClient, agent: dict[str, Any]) -> None:
    created = identity_call(mesh, "CreateApiKey", {
        "organization_id": agent["organization_id"], "name": f"limited-{uuid.uuid4().hex[:6]}",
        "scopes": ["agents.read"], "rate_limit_per_second": 10000, "rate_limit_burst": 100000},
        token=mesh.token() or "")
    keyed = RestClient(rest.base_url, headers={"x-api-key": created["secret"]})
    path = f"/v1/agents/{agent['agent_id']}"
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda _: keyed.get(path), range(READ_QUOTA + 150)))
    refilled = (time.monotonic() - started) * READ_QUOTA / 60  # the bucket refills continuously meanwhile
    statuses = [r.status for r in replies]
    assert set(statuses) == {200, 429}, sorted(set(statuses))
    assert READ_QUOTA - 10 <= statuses.count(200) <= READ_QUOTA + refilled + 10, (statuses.count(200), refilled)
    refused = next(r for r in replies if r.status == 429)
    assert _header(refused, "retry-after") == "60"
    assert _header(refused, "ratelimit-policy") == f'"read";q={READ_QUOTA};w=60'
    assert _header(refused, "ratelimit") == '"read";r=0;t=60'
    assert refused.body["code"] == 8 and "Retry-After" in refused.body["message"]
    assert _header(replies[0], "x-ratelimit-limit") == str(READ_QUOTA)
    # The admin, another caller, still reads.
    assert rest.get(path).status == 200
    # The same key over native gRPC: RESOURCE_EXHAUSTED, never UNAVAILABLE (which clients would retry).
    codes = set()
    with grpc.insecure_channel(mesh.gateway) as channel:  # not mesh_channel: it would add the admin's token
        agents = AgentServiceStub(channel)
        for _ in range(20):
            try:
                agents.GetAgent(pb.GetAgentRequest(agent_id=agent["agent_id"]), timeout=10,
                                metadata=(("x-api-key", created["secret"]),))
                codes.add(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                codes.add(error.code())
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes and grpc.StatusCode.UNAVAILABLE not in codes, codes
    stats = _envoy_stats(mesh, "ratelimit_read")
    assert stats.get("ratelimit_read.http_local_rate_limit.rate_limited", 0) >= statuses.count(429), stats


def test_an_api_key_over_its_own_rate_is_resource_exhausted_over_grpc(mesh: Mesh, agent: dict[str, Any]) -> None:
    # The identity service's per-key rate (ext_authz answers 429): Envoy would make that UNAVAILABLE for gRPC.
    created = identity_call(mesh, "CreateApiKey", {
        "organization_id": agent["organization_id"], "name": f"slow-{uuid.uuid4().hex[:6]}",
        "scopes": ["agents.read"], "rate_limit_per_second": 1, "rate_limit_burst": 1}, token=mesh.token() or "")
    codes = []
    with grpc.insecure_channel(mesh.gateway) as channel:
        agents = AgentServiceStub(channel)
        for _ in range(3):
            try:
                agents.ListAgentTypes(pb.ListAgentTypesRequest(), timeout=10,
                                      metadata=(("x-api-key", created["secret"]),))
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                codes.append(error.code())
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes and grpc.StatusCode.UNAVAILABLE not in codes, codes
    keyed = RestClient(f"http://{mesh.gateway}", headers={"x-api-key": created["secret"]})
    assert 429 in [keyed.get("/v1/agents/types").status for _ in range(3)]


def test_anonymous_callers_are_limited_by_address(mesh: Mesh, rest: RestClient) -> None:
    anonymous = rest.anonymous()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda _: anonymous.get("/health").status, range(PUBLIC_QUOTA * 2)))
    assert statuses.count(429) >= PUBLIC_QUOTA // 2, statuses.count(429)
    assert _envoy_stats(mesh, "ratelimit_public").get("ratelimit_public.http_local_rate_limit.rate_limited", 0) > 0


def _envoy_stats(mesh: Mesh, prefix: str) -> dict[str, int]:
    url = f"http://127.0.0.1:{mesh.admin_port}/stats?filter={prefix}"
    with urllib.request.urlopen(url, timeout=5) as response:
        lines = response.read().decode().splitlines()
    return {name: int(value) for name, _, value in (line.partition(": ") for line in lines) if value.isdigit()}


# -- the generated configuration, without a mesh -------------------------------------------------------


def test_the_override_is_parsed_and_a_bad_one_named() -> None:
    limits = configured({OVERRIDE_ENV: "read=5/2s:9, write=3/1s"})
    by_name = {c.name: c for c in limits.classes}
    assert (by_name["read"].requests, by_name["read"].period_seconds, by_name["read"].burst) == (5, 2, 9)
    assert (by_name["write"].requests, by_name["write"].burst) == (3, 3)
    assert by_name["public"] == PUBLIC
    assert not configured({OVERRIDE_ENV: "off"}).enabled
    with pytest.raises(ValueError, match="'reads=5/1s'"):
        configured({OVERRIDE_ENV: "reads=5/1s"})


def test_each_route_runs_its_own_class_and_only_cached_reads_the_304_filter() -> None:
    catalog = load_catalog()
    config = build_envoy_config(catalog, {}, listen_port=1, admin_port=2, descriptor_set=DESCRIPTOR_SET,
                                rate_limits=RateLimits())
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    names = [f["name"] for f in hcm["http_filters"]]
    classes = [name for name in names if name.startswith("protomesh.ratelimit.")]
    assert classes == ["protomesh.ratelimit.public", "protomesh.ratelimit.read", "protomesh.ratelimit.write"]
    assert names.index(classes[0]) > names.index(EXT_AUTHZ)  # the keys are what the credential checks verified
    assert names.index(NOT_MODIFIED_FILTER) < names.index("envoy.filters.http.grpc_json_transcoder")
    routes = {r["name"]: r for r in hcm["route_config"]["virtual_hosts"][0]["routes"]}

    def enabled(route: dict[str, Any], name: str) -> bool:
        return not route.get("typed_per_filter_config", {}).get(name, {}).get("disabled", False)

    get_agent, register = "/protomesh.agent.v1.AgentService/GetAgent", "/protomesh.agent.v1.AgentService/RegisterAgent"
    assert [c for c in classes if enabled(routes[f"{get_agent} REST 0"], c)] == ["protomesh.ratelimit.read"]
    assert [c for c in classes if enabled(routes[f"{register} REST 0"], c)] == ["protomesh.ratelimit.write"]
    health = next(r for n, r in routes.items() if n.startswith("/protomesh.agent.v1.AgentService/GetHealth REST"))
    assert [c for c in classes if enabled(health, c)] == ["protomesh.ratelimit.public"]
    assert enabled(routes[f"{get_agent} REST 0"], NOT_MODIFIED_FILTER)
    assert not enabled(routes[get_agent], NOT_MODIFIED_FILTER)  # native gRPC keeps its body
    assert not enabled(routes[f"{register} REST 0"], NOT_MODIFIED_FILTER)
