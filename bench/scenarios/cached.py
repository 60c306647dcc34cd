"""cached: the same PostgreSQL-backed REST read as `rest`, hot in the chassis cache, vs FastAPI doing it uncached.

GET /v1/agents/{id} over the seeded agents, through Envoy to 1 agent replica whose cache holds every one of
them (read once each before measuring), against FastAPI + uvicorn (1 worker) running the same SQL on the same
PostgreSQL for every request. Same generator, paths, Authorization header, concurrency and duration, A B /
B A. The replica's hit ratio over the measured window is read from its /metrics (the registry names the
port), so the row shows the cache really answered.

Both sides call as a service account with the member role (client credentials), not as the local admin: a
platform admin's every read is audited (one outbox row each, chassis.audit), which no cache can skip and the
FastAPI peer does not do; an organization member's reads are not audited.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import urllib.parse
import urllib.request
import uuid
from typing import Any

from bench.core import Context, Side, add_target, load_row, measure, ratio
from chassis.registry import NatsKvRegistry
from chassis.tooling.supervisor import Mesh

SCENARIO = "cached_read"
GET_AGENT = "/protomesh.agent.v1.AgentService/GetAgent"
_LOOKUP = re.compile(r'^protomesh_cache_lookups_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$', re.MULTILINE)


async def _metrics_urls(mesh: Mesh) -> list[str]:
    registry = await NatsKvRegistry.connect(mesh.nats_url)
    try:
        instances = await registry.instances("agent")
    finally:
        await registry.close()
    return [f"http://{i.address}:{i.meta['metrics_port']}/metrics" for i in instances if i.meta.get("metrics_port")]


def member_headers(mesh: Mesh, admin: dict[str, str], organization_id: str) -> dict[str, str]:
    """The Authorization header of a new client-credentials service account holding the member role."""
    body = json.dumps({"name": f"bench-{uuid.uuid4().hex[:8]}", "organization_id": organization_id,
                       "grant_types": ["client_credentials"], "scopes": ["mesh"], "roles": ["ROLE_MEMBER"]})
    request = urllib.request.Request(f"http://{mesh.gateway}/v1/oauth/clients", data=body.encode(), method="POST",
                                     headers={**admin, "content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        registered = json.loads(response.read())
    client = registered.get("client", registered)
    client_id = client.get("client_id") or registered.get("client_id")
    secret = registered.get("client_secret") or registered.get("clientSecret")
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "mesh"}).encode()
    request = urllib.request.Request(f"http://{mesh.gateway}/oauth2/token", data=form, method="POST", headers={
        "authorization": f"Basic {basic}", "content-type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=10) as response:
        token = json.loads(response.read())["access_token"]
    return {"authorization": f"Bearer {token}"}


def cache_lookups(urls: list[str]) -> dict[str, float]:
    """GetAgent's cache lookups by result (hit, miss, stale, bypass), summed over the replicas."""
    totals: dict[str, float] = {}
    for url in urls:
        with urllib.request.urlopen(url, timeout=5) as response:  # the bench mesh's replicas, on loopback
            text = response.read().decode()
        for match in _LOOKUP.finditer(text):
            labels = dict(part.split("=", 1) for part in match["labels"].split(","))
            if labels.get("method", "").strip('"') == GET_AGENT:
                result = labels.get("result", "").strip('"')
                totals[result] = totals.get(result, 0.0) + float(match["value"])
    return totals


def run(ctx: Context, mesh: Mesh, ids: list[str], peer: Any, admin: dict[str, str], organization_id: str,
        mesh_pids: Any) -> None:
    """Measure; `peer` is a started FastApiPeer with 1 worker (bench.scenarios.mesh)."""
    headers = member_headers(mesh, admin, organization_id)
    ctx.say(f"==> {SCENARIO}: GET /v1/agents/{{id}} hot in the cache (1 replica, through Envoy) vs FastAPI + uvicorn "
            "(1 worker) reading PostgreSQL every time")
    paths = [f"/v1/agents/{agent_id}" for agent_id in ids]
    for path in paths:  # every answer in the cache before the clock starts
        with urllib.request.urlopen(urllib.request.Request(f"http://{mesh.gateway}{path}", headers=headers),
                                    timeout=10) as response:
            response.read()
    urls = asyncio.run(_metrics_urls(mesh))
    before = cache_lookups(urls)
    workload = {"kind": "http_get", "paths": paths, "op": "GetAgent", "headers": headers}
    results = measure(ctx, [
        Side("envoy-cached-1r", {"protocol": "http", "targets": [mesh.gateway], "workload": workload}, mesh_pids),
        Side("fastapi-uncached-1w", {"protocol": "http", "targets": [f"127.0.0.1:{peer.port}"], "workload": workload},
             lambda: [peer.proc.pid]),
    ])
    after = cache_lookups(urls)
    counted = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    lookups = sum(counted.values())
    hit_ratio = counted.get("hit", 0.0) / lookups if lookups else 0.0
    ours, theirs = results["envoy-cached-1r"], results["fastapi-uncached-1w"]
    vs = "FastAPI + uvicorn, 1 worker, uncached"
    throughput = ratio("throughput", ours["throughput"], theirs["throughput"], target=2.0, vs=vs)
    p99 = ratio("p99", ours["p99_ms"], theirs["p99_ms"], target=1.0, higher_is_better=False, vs=vs)
    ctx.rows += [
        load_row(SCENARIO, "FastAPI + uvicorn, 1 worker, PostgreSQL read every request", theirs, role="peer"),
        load_row(SCENARIO, "REST through Envoy, 1 agent replica, answers from the chassis cache", ours, role="ours",
                 ratios=[throughput, p99, ratio("server CPU per call", ours["server_cpu_us_per_req"],
                                                theirs["server_cpu_us_per_req"], higher_is_better=False, vs=vs)],
                 note=f"cache hit ratio {hit_ratio:.1%} over {lookups:.0f} lookups (replica /metrics); "
                      "server CPU and RSS include Envoy"),
    ]
    add_target(ctx, "cached read through the gateway >= 2x FastAPI's uncached read, p99 lower",
               f"throughput {throughput['value']:.2f}x ({ours['throughput']:.0f} vs {theirs['throughput']:.0f} req/s), "
               f"p99 {p99['value']:.2f}x ({ours['p99_ms']:.1f} vs {theirs['p99_ms']:.1f} ms), "
               f"hit ratio {hit_ratio:.1%}",
               throughput["met"] and p99["met"])
