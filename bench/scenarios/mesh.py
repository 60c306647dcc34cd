"""Scenarios on a real mesh (PostgreSQL, NATS, agent replicas, Envoy, the trace collector), as `protomesh up` runs it.

rest   GetAgent (a PostgreSQL read by id) as REST/JSON through Envoy vs two peers doing the same read with
       the same driver, SQL and pool: the "bare stack" (the gateway's own Envoy config cut down to token
       check, transcoder and router, in front of bare grpc.aio servers: bench.scenarios.bare_stack) and a
       FastAPI + uvicorn app verifying the same bearer token; 1 replica vs 1 server vs 1 worker, then 2 vs 2
       vs 2. mesh / bare stack is the chassis' cost, bare stack / FastAPI the architecture's. GetAgent is a
       cached read (docs/caching.md); every request here says `Cache-Control: no-cache`, so the replica runs
       the read each time as the peers do (the cache has its own scenario, `cached`).
cached the same read with every answer already in the replica's cache, its hit ratio measured, vs FastAPI
       reading PostgreSQL every time (bench.scenarios.cached).
envoy  gRPC GetAgent through Envoy to 2 replicas vs straight to one replica and to both.
crud   the Agent service's CRUD mix over REST through Envoy (register, get x3, update, list, get,
       deregister per cycle) at fixed concurrency.

The mesh runs only the agent service (`only=["agent"]`, plus the identity service every mesh runs) with
its usual settings: durable PostgreSQL and JetStream, tracing to the local collector, INFO logs, default
pool size. Every call carries the local admin's bearer token, verified by Envoy as in production.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import grpc

from bench.core import Context, Side, add_target, load_row, measure, ratio
from bench.procs import BenchError, Proc, Processes, port_open, wait_until
from bench.scenarios import cached
from bench.scenarios.bare_stack import BareStack
from chassis.tls import server_name
from chassis.tooling.gateway_ratelimit import OVERRIDE_ENV
from chassis.tooling.infra.ports import free_port
from chassis.tooling.supervisor import SUPERVISOR_IDENTITY, Mesh, MeshOptions
from protomesh.agent.v1 import agent_service_pb2, agent_service_pb2_grpc

SEED_AGENTS = 200
REST_VS_BARE = 0.95
"""Targets (issue 18): the mesh's REST read >= 0.95x the bare stack's throughput, p99 <= 1.1x its p99..."""
REST_P99_VS_BARE = 1.1
REST_VS_FASTAPI = 0.75
"""... and >= 0.75x FastAPI + uvicorn's, 1 vs 1 and 2 vs 2."""


def seed(mesh: Mesh, count: int) -> list[str]:
    """Register `count` agents through the gateway (as the local admin); their ids."""
    ids = []
    with grpc.insecure_channel(mesh.gateway) as channel:
        stub = agent_service_pb2_grpc.AgentServiceStub(channel)
        for n in range(count):
            reply = stub.RegisterAgent(agent_service_pb2.RegisterAgentRequest(
                name=f"bench-seed-{n}", type="calculator", description="read by the benchmark",
                labels={"bench": "seed"}), timeout=10, metadata=mesh.auth_metadata())
            ids.append(reply.agent.agent_id)
    return ids


def get_json(url: str, headers: dict[str, str] | None = None) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
        return json.loads(response.read())


def gateway_headers(mesh: Mesh) -> dict[str, str]:
    """What every call through the gateway carries: the local admin's bearer token (one per scenario; the
    bench mesh issues 30-minute tokens so none expires under load)."""
    headers = mesh.auth_headers()
    if not headers:
        raise BenchError("no access token from the mesh's identity service")
    return headers


def replica_headers(mesh: Mesh) -> dict[str, str]:
    """What Envoy forwards to a replica for that token: its verified payload as x-protomesh-claims (the
    JWT's payload segment, base64url), so calls straight to a replica carry the same principal."""
    token = gateway_headers(mesh)["authorization"].removeprefix("Bearer ")
    return {"x-protomesh-claims": token.split(".")[1]}


def replica_tls(mesh: Mesh, service: str) -> dict[str, str]:
    """The client certificate a call straight to a replica presents (mTLS inside the mesh: chassis.tls)."""
    files = mesh.tls_files(SUPERVISOR_IDENTITY)
    return {"cert": str(files.cert), "key": str(files.key), "ca": str(files.ca), "server_name": server_name(service)}


class FastApiPeer:
    """uvicorn running bench.peers.fastapi_app with N workers, on the mesh's PostgreSQL."""

    def __init__(self, ctx: Context, mesh: Mesh, workers: int) -> None:
        self.port = free_port()
        self.proc = Proc(f"fastapi-{workers}w", [
            sys.executable, "-m", "uvicorn", "bench.peers.fastapi_app:app", "--host", "127.0.0.1",
            "--port", str(self.port), "--workers", str(workers)], ctx.log_dir,
            env={"DATABASE_URL": mesh.database_url, "DB_POOL_MIN": "2", "DB_POOL_MAX": "10",
                 # It verifies the bearer token itself, against the same JWKS the gateway uses.
                 "JWKS_URL": f"{mesh.issuer}/oauth2/jwks", "ISSUER": mesh.issuer})

    def wait(self, agent_id: str, headers: dict[str, str]) -> None:
        wait_until(lambda: port_open(self.port), 60, f"{self.proc.name} to listen")
        wait_until(lambda: get_json(f"http://127.0.0.1:{self.port}/v1/agents/{agent_id}", headers)["agent"], 30,
                   f"{self.proc.name} to answer")


def run(ctx: Context, wanted: list[str]) -> None:
    ctx.say(f"==> mesh scenarios {', '.join(wanted)}: starting PostgreSQL, NATS, Envoy and the agent service")
    env = {"LOG_LEVEL": "INFO", "IDENTITY_ACCESS_TOKEN_TTL": "30m"}
    if not ctx.options.replica_tracing:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = ""  # replicas untraced; Envoy still sends its spans
        ctx.say("    replicas run without tracing (--no-replica-tracing)")
    if ctx.options.trace_sampling is not None:
        sampling = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                    "OTEL_TRACES_SAMPLER_ARG": str(ctx.options.trace_sampling)}
        env.update(sampling)
        os.environ.update(sampling)  # Envoy's config is generated in this process and follows it too
        ctx.say(f"    traces sampled at {ctx.options.trace_sampling:.0%} (--trace-sampling)")
    else:
        ctx.say("    tracing at the local mesh's default (docs/tracing.md)")
    # The gateway's per-caller rate limits would measure themselves: one principal sends every request.
    os.environ[OVERRIDE_ENV] = "off"
    options = MeshOptions(state_dir=ctx.work_dir / "mesh", gateway_port=free_port(), default_replicas=1,
                          only=["agent"], service_env=env)
    mesh = Mesh(options, progress=lambda message: ctx.say("    " + message.strip()))
    mesh.start()
    try:
        ids = seed(mesh, 20 if ctx.options.smoke else SEED_AGENTS)
        gateway_json = get_json(f"http://{mesh.gateway}/v1/agents/{ids[0]}", gateway_headers(mesh))
        # The REST sides call as an organization member (a service account), as the cached read does: a platform
        # admin's every read is audited (chassis.audit), which neither peer does.
        member = (cached.member_headers(mesh, gateway_headers(mesh), gateway_json["agent"]["organization_id"])
                  if "rest" in wanted else {})
        if "rest" in wanted:
            rest(ctx, mesh, ids, replicas=1, headers=member)
        if "cached" in wanted:
            cached_read(ctx, mesh, ids, gateway_json["agent"]["organization_id"])
        ctx.say("    scaling the agent service to 2 replicas")
        mesh._scale_to("agent", 2)
        if "rest" in wanted:
            rest(ctx, mesh, ids, replicas=2, headers=member)
        if "envoy" in wanted:
            envoy(ctx, mesh, ids)
        if "crud" in wanted:
            crud(ctx, mesh)
    finally:
        mesh.stop()


def _mesh_pids(mesh: Mesh) -> list[int]:
    pids = [r.pid for r in mesh.replicas.get("agent", []) if r.pid]
    if mesh.envoy is not None and mesh.envoy.pid:
        pids.append(mesh.envoy.pid)
    return pids


SUPERVISOR = "supervisor (trace collector)"


def _shared(mesh: Mesh) -> dict[str, Processes]:
    """What every side's calls may cost CPU in besides its own servers: PostgreSQL (postmaster and backends) and
    the supervisor (this process: the trace collector, the registry bridge), which runs whichever side is measured."""
    groups = {SUPERVISOR: Processes((os.getpid(),), tree=False)}
    if mesh.postgres is not None and mesh.postgres.pid:
        groups["postgresql"] = Processes((mesh.postgres.pid,))
    return groups


def _mesh_groups(mesh: Mesh) -> Callable[[], dict[str, Processes]]:
    def groups() -> dict[str, Processes]:
        replicas = tuple(r.pid for r in mesh.replicas.get("agent", []) if r.pid)
        identity = tuple(r.pid for r in mesh.replicas.get("identity", []) if r.pid)
        return {"agent replica(s)": Processes(replicas),
                "envoy": Processes((mesh.envoy.pid,) if mesh.envoy is not None and mesh.envoy.pid else ()),
                "identity replica(s)": Processes(identity),
                "nats-server": Processes((mesh.nats.pid,) if mesh.nats is not None and mesh.nats.pid else ()),
                **_shared(mesh)}
    return groups


def rest(ctx: Context, mesh: Mesh, ids: list[str], *, replicas: int, headers: dict[str, str]) -> None:
    scenario = "rest_read"
    ctx.say(f"==> {scenario}: GET /v1/agents/{{id}} through Envoy ({replicas} replica(s)) vs the bare stack "
            f"({replicas} bare grpc.aio server(s)) vs FastAPI + uvicorn ({replicas} worker(s))")
    peer = FastApiPeer(ctx, mesh, replicas)
    bare: BareStack | None = None
    try:
        bare = BareStack(ctx, mesh, replicas)
        peer.wait(ids[0], headers)
        for name, url in (("FastAPI", f"http://127.0.0.1:{peer.port}"), ("bare stack", f"http://{bare.address}")):
            _same_answer(name, get_json(f"{url}/v1/agents/{ids[0]}", headers), get_json(
                f"http://{mesh.gateway}/v1/agents/{ids[0]}", headers))
            _refuses_bad_tokens(name, f"{url}/v1/agents/{ids[0]}", headers)
        paths = [f"/v1/agents/{agent_id}" for agent_id in ids]
        # Every side gets the same Authorization header, and verifies it: the same bytes on the wire, and the
        # same principal (organization) for the store's tenancy filter.
        # `Cache-Control: no-cache` (RFC 9111: the caller wants the read run) makes the replica run the SQL as
        # the peers do, instead of answering repeats from its cache: the same work on every side.
        workload = {"kind": "http_get", "paths": paths, "op": "GetAgent",
                    "headers": {**headers, "cache-control": "no-cache"}}
        shared = _shared(mesh)
        stack = bare
        results = measure(ctx, [
            Side(f"envoy+{replicas}r", {"protocol": "http", "targets": [mesh.gateway], "workload": workload},
                 lambda: _mesh_pids(mesh), _mesh_groups(mesh)),
            Side(f"bare-stack-{replicas}s", {"protocol": "http", "targets": [stack.address], "workload": workload},
                 lambda: [*stack.server_pids(), *stack.envoy_pid()],
                 lambda: {"bare grpc.aio server(s)": Processes(tuple(stack.server_pids())),
                          "envoy": Processes(tuple(stack.envoy_pid())), **shared}),
            Side(f"fastapi-{replicas}w", {"protocol": "http", "targets": [f"127.0.0.1:{peer.port}"],
                                          "workload": workload}, lambda: [peer.proc.pid],
                 lambda: {"uvicorn (workers)": Processes((peer.proc.pid,)), **shared}),
        ])
    finally:
        peer.proc.stop()
        if bare is not None:
            bare.stop()
    _rest_report(ctx, scenario, replicas, results[f"envoy+{replicas}r"], results[f"bare-stack-{replicas}s"],
                 results[f"fastapi-{replicas}w"])


def _refuses_bad_tokens(name: str, url: str, headers: dict[str, str]) -> None:
    """A peer that let an unverified call through would not pay for the check the gateway makes."""
    token = headers["authorization"].removeprefix("Bearer ")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")  # the signature no longer matches
    for case, sent in (("no token", {}), ("a forged signature", {"authorization": f"Bearer {forged}"})):
        try:
            get_json(url, sent)
        except urllib.error.HTTPError as refused:
            if refused.code == 401:
                continue
            raise BenchError(f"the {name} peer answered {refused.code} to a call with {case}, not 401") from refused
        raise BenchError(f"the {name} peer answered a call with {case}: it does not verify the token")


def _same_answer(name: str, theirs: Any, gateway_json: Any) -> None:
    """A peer must answer the gateway's JSON (timestamps aside): otherwise it does other work."""
    untimed = ({k: v for k, v in reply["agent"].items() if not k.endswith("_time")} for reply in (theirs, gateway_json))
    if set(theirs["agent"]) != set(gateway_json["agent"]) or next(untimed) != next(untimed):
        raise BenchError(f"the {name} peer answers another shape than the gateway: {theirs} vs {gateway_json}")


def _rest_report(ctx: Context, scenario: str, n: int, ours: dict[str, Any], bare: dict[str, Any],
                 fastapi: dict[str, Any]) -> None:
    vs_bare, vs_fastapi = f"bare stack, {n} server(s)", f"FastAPI + uvicorn, {n} worker(s)"
    ours_bare = ratio("throughput", ours["throughput"], bare["throughput"], target=REST_VS_BARE, vs=vs_bare)
    p99_bare = ratio("p99", ours["p99_ms"], bare["p99_ms"], target=REST_P99_VS_BARE, higher_is_better=False,
                     vs=vs_bare)
    ours_fastapi = ratio("throughput", ours["throughput"], fastapi["throughput"], target=REST_VS_FASTAPI,
                         vs=vs_fastapi)
    bare_fastapi = ratio("throughput", bare["throughput"], fastapi["throughput"], vs=vs_fastapi)
    ctx.rows += [
        load_row(scenario, f"FastAPI + uvicorn, {n} worker(s), same SQL/driver/pool, verifies the token", fastapi,
                 role="peer"),
        load_row(scenario, f"bare stack: Envoy (jwt_authn, transcoder, router, mTLS) + {n} bare grpc.aio server(s)",
                 bare, role="peer", ratios=[
                     bare_fastapi, ratio("p99", bare["p99_ms"], fastapi["p99_ms"], higher_is_better=False,
                                         vs=vs_fastapi)],
                 note="the architecture's cost: bare stack / FastAPI; server CPU and RSS include its Envoy"),
        load_row(scenario, f"REST through the mesh's gateway, {n} agent replica(s)", ours, role="ours",
                 ratios=[ours_bare, p99_bare, ours_fastapi,
                         ratio("p99", ours["p99_ms"], fastapi["p99_ms"], higher_is_better=False, vs=vs_fastapi),
                         ratio("server CPU per call", ours["server_cpu_us_per_req"], bare["server_cpu_us_per_req"],
                               higher_is_better=False, vs=vs_bare)],
                 note="the chassis' cost: mesh / bare stack; server CPU and RSS include Envoy"),
    ]
    add_target(ctx, f"REST read >= {REST_VS_BARE:g}x the bare stack, p99 <= {REST_P99_VS_BARE:g}x its p99, {n} vs {n}",
               f"throughput {ours_bare['value']:.2f}x ({ours['throughput']:.0f} vs {bare['throughput']:.0f} req/s), "
               f"p99 {p99_bare['value']:.2f}x ({ours['p99_ms']:.1f} vs {bare['p99_ms']:.1f} ms)",
               ours_bare["met"] and p99_bare["met"])
    add_target(ctx, f"REST read >= {REST_VS_FASTAPI:g}x FastAPI + uvicorn, {n} vs {n}",
               f"throughput {ours_fastapi['value']:.2f}x ({ours['throughput']:.0f} vs {fastapi['throughput']:.0f} "
               f"req/s); the bare stack {bare_fastapi['value']:.2f}x FastAPI", ours_fastapi["met"])


def cached_read(ctx: Context, mesh: Mesh, ids: list[str], organization_id: str) -> None:
    """The cached read (bench.scenarios.cached) against a FastAPI peer of 1 worker."""
    peer = FastApiPeer(ctx, mesh, 1)
    try:
        peer.wait(ids[0], gateway_headers(mesh))
        cached.run(ctx, mesh, ids, peer, gateway_headers(mesh), organization_id, lambda: _mesh_pids(mesh))
    finally:
        peer.proc.stop()


def envoy(ctx: Context, mesh: Mesh, ids: list[str]) -> None:
    scenario = "grpc_envoy"
    ctx.say(f"==> {scenario}: gRPC GetAgent through Envoy to 2 replicas vs direct")
    payloads = [agent_service_pb2.GetAgentRequest(agent_id=i).SerializeToString().hex() for i in ids]
    workload = {"kind": "grpc_get", "method": "/protomesh.agent.v1.AgentService/GetAgent", "payloads": payloads,
                "headers": gateway_headers(mesh)}
    # Straight to a replica there is no gateway to verify the token: the calls carry what it would forward.
    direct = {**workload, "headers": replica_headers(mesh)}
    replicas = mesh.replicas["agent"]
    if len(replicas) != 2:
        raise BenchError(f"expected 2 agent replicas, found {len(replicas)}")
    results = measure(ctx, [
        Side("grpc-envoy-2r", {"protocol": "grpc", "targets": [mesh.gateway], "workload": workload},
             lambda: _mesh_pids(mesh)),
        Side("grpc-direct-2r", {"protocol": "grpc", "targets": [r.address for r in replicas], "workload": direct,
                                "tls": replica_tls(mesh, "agent")},
             lambda: [r.pid for r in replicas if r.pid]),
        Side("grpc-direct-1r", {"protocol": "grpc", "targets": [replicas[0].address], "workload": direct,
                                "tls": replica_tls(mesh, "agent")},
             lambda: [replicas[0].pid] if replicas[0].pid else []),
    ])
    via, direct2, direct1 = results["grpc-envoy-2r"], results["grpc-direct-2r"], results["grpc-direct-1r"]
    ctx.rows += [
        load_row(scenario, "gRPC straight to 1 replica", direct1, role="peer"),
        load_row(scenario, "gRPC straight to 2 replicas (client round robin)", direct2, role="peer"),
        load_row(scenario, "gRPC through Envoy, 2 replicas", via, role="ours", ratios=[
            ratio("throughput", via["throughput"], direct2["throughput"], vs="direct, 2 replicas"),
            ratio("throughput", via["throughput"], direct1["throughput"], vs="direct, 1 replica"),
            ratio("p99", via["p99_ms"], direct2["p99_ms"], higher_is_better=False, vs="direct, 2 replicas"),
        ], note="server CPU and RSS include Envoy"),
    ]


def crud(ctx: Context, mesh: Mesh) -> None:
    scenario = "agent_crud"
    ctx.say(f"==> {scenario}: the Agent service's CRUD mix over REST through Envoy, 2 replicas")
    results = measure(ctx, [Side("crud-envoy-2r", {"protocol": "http", "targets": [mesh.gateway],
                                                   "workload": {"kind": "crud", "agent_type": "calculator",
                                                                "headers": gateway_headers(mesh)}},
                                 lambda: _mesh_pids(mesh))])
    result = results["crud-envoy-2r"]
    ops = result.get("by_op", {})
    note = "per cycle: register, get, get, update, list, get, deregister"
    if ops:
        note += "; p50/p99 ms by operation: " + ", ".join(
            f"{op} {s['p50_ms']:.1f}/{s['p99_ms']:.1f}" for op, s in ops.items())
    ctx.rows.append(load_row(scenario, "Agent CRUD mix through Envoy, 2 replicas", result, role="ours", note=note))
