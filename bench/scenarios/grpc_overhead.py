"""The runtime's overhead: the same GetAgent handler in a chassis replica vs. a bare grpc.aio server.

Five servers run side by side (only one is loaded at a time): a bare grpc.aio server on uvloop (the
peer: the same event loop as a replica) and on asyncio's default loop (to show what the loop alone changes),
a chassis service with everything a mesh replica has at the local mesh's defaults (OpenTelemetry
tracing exported to the mesh's local collector at the default sampling, failed and slow calls always
kept; Prometheus metrics, one JSON log line per call, identity, authorization, validation, error
mapping, health, reflection), the same service with every call traced (OTEL_TRACES_SAMPLER=always_on),
and with tracing off, which split the overhead between tracing and the rest.
"""

from __future__ import annotations

import grpc

from bench.core import Context, Side, add_target, load_row, measure, ratio
from bench.peers.handler import METHOD, ORGANIZATION, request_payloads
from bench.procs import Proc, python, wait_until
from chassis.identity import CLAIMS_HEADER, encode_claims
from chassis.telemetry import LOCAL_DEFAULT_RATIO
from chassis.tooling.infra.ports import free_port
from chassis.tooling.trace_store import TraceCollector

SCENARIO = "grpc_overhead"


# What the gateway forwards for a verified token: every call names its principal, as in the mesh (the
# chassis refuses a protected method without one, and GetAgent without the permission a role grants: a
# mesh service's `member` role in the organization owning the agents; the bare server ignores it).
CLAIMS = {CLAIMS_HEADER: encode_claims({"sub": "service:bench", "kind": "service", "scope": "mesh",
                                        "org": ORGANIZATION, "roles": ["member"]})}


def _answers(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        channel.unary_unary(METHOD)(request_payloads()[0], timeout=1, metadata=tuple(CLAIMS.items()))
    return True


def run(ctx: Context) -> None:
    ctx.say(f"==> {SCENARIO}: unary gRPC, chassis replica vs bare grpc.aio (same handler)")
    collector = TraceCollector(ctx.work_dir / "traces")
    collector.start()
    procs: list[Proc] = []
    try:
        ports = {"bare": free_port(), "bare_asyncio": free_port(), "chassis": free_port(),
                 "chassis_all_traced": free_port(), "chassis_untraced": free_port()}
        procs.append(Proc("bare-grpc", python("bench.peers.bare_grpc", "--port", str(ports["bare"])), ctx.log_dir))
        procs.append(Proc("bare-grpc-asyncio", python("bench.peers.bare_grpc", "--port", str(ports["bare_asyncio"]),
                                                      "--loop", "asyncio"), ctx.log_dir))
        # "chassis": the sampling the local mesh uses when OTEL_TRACES_SAMPLER is unset (chassis.telemetry).
        everything = {"OTEL_TRACES_SAMPLER": "always_on"}
        chassis_cases = (("chassis", collector.endpoint, {}), ("chassis_all_traced", collector.endpoint, everything),
                         ("chassis_untraced", "", {}))
        for key, endpoint, extra in chassis_cases:
            procs.append(Proc(key, python("bench.peers.chassis_echo"), ctx.log_dir, env={
                "GRPC_PORT": str(ports[key]), "GRPC_HOST": "127.0.0.1", "INSTANCE_ID": f"bench-{key}",
                "OTEL_SERVICE_NAME": "bench-echo", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "LOG_LEVEL": "INFO",
                # Compared with a bare gRPC server over plaintext: the chassis' own cost, not TLS's.
                "MESH_TLS": "off", "OTEL_TRACES_SAMPLER": "", "OTEL_TRACES_SAMPLER_ARG": "",
                **extra}))
        for proc, port in zip(procs, ports.values(), strict=True):
            wait_until(lambda port=port: _answers(port), 60, f"{proc.name} to answer GetAgent")
        payloads = [p.hex() for p in request_payloads()]

        def side(key: str, proc: Proc) -> Side:
            return Side(key, {"protocol": "grpc", "targets": [f"127.0.0.1:{ports[key]}"],
                              "workload": {"kind": "grpc_get", "method": METHOD, "payloads": payloads,
                                           "headers": CLAIMS}},
                        lambda: [proc.pid])

        results = measure(ctx, [side(k, p) for k, p in zip(ports, procs, strict=True)])
    finally:
        for proc in procs:
            proc.stop()
        collector.stop()
    bare, default, untraced = results["bare"], results["chassis"], results["chassis_untraced"]
    everything, bare_asyncio = results["chassis_all_traced"], results["bare_asyncio"]
    vs = "bare grpc.aio"
    default_ratio = ratio("throughput", default["throughput"], bare["throughput"], target=0.90, vs=vs)
    all_ratio = ratio("throughput", everything["throughput"], bare["throughput"], vs=vs)
    ctx.rows += [
        load_row(SCENARIO, "bare grpc.aio server, same handler (uvloop, as a replica)", bare, role="peer"),
        load_row(SCENARIO, "bare grpc.aio server on asyncio's default loop", bare_asyncio, role="info", ratios=[
            ratio("throughput", bare_asyncio["throughput"], bare["throughput"], vs=vs),
            ratio("server CPU per call", bare_asyncio["server_cpu_us_per_req"], bare["server_cpu_us_per_req"],
                  higher_is_better=False, vs=vs),
        ]),
        load_row(SCENARIO, f"chassis replica, all on, default sampling ({LOCAL_DEFAULT_RATIO:.0%} + failed/slow)",
                 default, role="ours", ratios=[
                     default_ratio,
                     ratio("p99", default["p99_ms"], bare["p99_ms"], higher_is_better=False, vs=vs),
                     ratio("server CPU per call", default["server_cpu_us_per_req"], bare["server_cpu_us_per_req"],
                           higher_is_better=False, vs=vs),
                 ]),
        load_row(SCENARIO, "chassis replica: every call traced, metrics, logging, errors", everything, role="info",
                 ratios=[
                     all_ratio,
                     ratio("p99", everything["p99_ms"], bare["p99_ms"], higher_is_better=False, vs=vs),
                     ratio("server CPU per call", everything["server_cpu_us_per_req"], bare["server_cpu_us_per_req"],
                           higher_is_better=False, vs=vs),
                 ]),
        load_row(SCENARIO, "chassis replica, tracing off", untraced, role="info", ratios=[
            ratio("throughput", untraced["throughput"], bare["throughput"], vs=vs),
            ratio("server CPU per call", untraced["server_cpu_us_per_req"], bare["server_cpu_us_per_req"],
                  higher_is_better=False, vs=vs),
        ]),
    ]
    add_target(ctx, "chassis (every interceptor on, the default sampling) >= 0.90x bare grpc.aio",
               f"{default_ratio['value']:.2f}x at the default sampling ({default['throughput']:.0f} vs "
               f"{bare['throughput']:.0f} calls/s); {all_ratio['value']:.2f}x when every call is traced and exported",
               default_ratio["met"])
