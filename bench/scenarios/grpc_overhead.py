"""The runtime's overhead: the same GetAgent handler in a chassis replica vs. a bare grpc.aio server.

Three servers run side by side (only one is loaded at a time): a bare grpc.aio server, a chassis
service with everything a mesh replica has (OpenTelemetry tracing exported to the mesh's local
collector, Prometheus metrics, one JSON log line per call, error mapping, health, reflection), and
the same chassis service with tracing off, which splits the overhead between tracing and the rest.
"""

from __future__ import annotations

import grpc

from bench.core import Context, Side, add_target, load_row, measure, ratio
from bench.peers.handler import METHOD, ORGANIZATION, request_payloads
from bench.procs import Proc, python, wait_until
from chassis.identity import CLAIMS_HEADER, encode_claims
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
        ports = {"bare": free_port(), "chassis": free_port(), "chassis_sampled": free_port(),
                 "chassis_untraced": free_port()}
        procs.append(Proc("bare-grpc", python("bench.peers.bare_grpc", "--port", str(ports["bare"])), ctx.log_dir))
        # "sampled": the standard OTel settings a busy deployment uses (5% of new traces recorded).
        sampled = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.05"}
        chassis_cases = (("chassis", collector.endpoint, {}), ("chassis_sampled", collector.endpoint, sampled),
                         ("chassis_untraced", "", {}))
        for key, endpoint, extra in chassis_cases:
            procs.append(Proc(key, python("bench.peers.chassis_echo"), ctx.log_dir, env={
                "GRPC_PORT": str(ports[key]), "GRPC_HOST": "127.0.0.1", "INSTANCE_ID": f"bench-{key}",
                "OTEL_SERVICE_NAME": "bench-echo", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "LOG_LEVEL": "INFO",
                # Compared with a bare gRPC server over plaintext: the chassis' own cost, not TLS's.
                "MESH_TLS": "off",
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
    bare, full, untraced = results["bare"], results["chassis"], results["chassis_untraced"]
    sampled_result = results["chassis_sampled"]
    vs = "bare grpc.aio"
    full_ratio = ratio("throughput", full["throughput"], bare["throughput"], vs=vs)
    sampled_ratio = ratio("throughput", sampled_result["throughput"], bare["throughput"], target=0.85, vs=vs)
    ctx.rows += [
        load_row(SCENARIO, "bare grpc.aio server, same handler", bare, role="peer"),
        load_row(SCENARIO, "chassis replica: every call traced, metrics, logging, errors", full, role="info", ratios=[
            full_ratio,
            ratio("p99", full["p99_ms"], bare["p99_ms"], higher_is_better=False, vs=vs),
            ratio("server CPU per call", full["server_cpu_us_per_req"], bare["server_cpu_us_per_req"],
                  higher_is_better=False, vs=vs),
        ]),
        load_row(SCENARIO, "chassis replica, all on, traces sampled at 5%", sampled_result, role="ours", ratios=[
            sampled_ratio,
            ratio("server CPU per call", sampled_result["server_cpu_us_per_req"], bare["server_cpu_us_per_req"],
                  higher_is_better=False, vs=vs),
        ]),
        load_row(SCENARIO, "chassis replica, tracing off", untraced, role="info", ratios=[
            ratio("throughput", untraced["throughput"], bare["throughput"], vs=vs),
            ratio("server CPU per call", untraced["server_cpu_us_per_req"], bare["server_cpu_us_per_req"],
                  higher_is_better=False, vs=vs),
        ]),
    ]
    add_target(ctx, "chassis (all interceptors on) keeps >= 85% of bare grpc.aio throughput",
               f"{sampled_ratio['value']:.2f}x with traces sampled at 5% ({sampled_result['throughput']:.0f} vs "
               f"{bare['throughput']:.0f} calls/s); {full_ratio['value']:.2f}x when every call is traced and exported "
               "(the local mesh's default)", sampled_ratio["met"])
