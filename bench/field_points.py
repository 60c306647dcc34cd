"""The field service under load through the gateway: point-in-field lookups over 10,000 fields of one
organization, and the boundary write path (validation, geodesic area, overlap check, new version).

A measurement to read, not a test: nothing asserts it. It starts a mesh of its own (identity + field, the
gateway's rate limits off), imports a grid of 10,000 square fields (100 x 100, 0.001° cells with gaps) as the
member of a new organization, then runs the project's load generator (bench.loadgen, its own process) twice:

- lookup: FindFieldsAtPoint at points spread over the grid (each inside one field), `--concurrency` in flight;
- write:  ChangeBoundary redrawing 200 of the fields in turn (a 64-vertex polygon inside the field's cell,
          alternating two sizes), `--write-concurrency` in flight.

For each it prints throughput, p50/p99 and the server CPU per request (the field replicas and Envoy, over the
measured window; PostgreSQL is reported apart as other CPU).

    .venv/bin/python -m bench.field_points [--concurrency 100] [--duration 10] [--replicas 1] [--trace-sampling 0.05]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2

from bench.procs import run_loadgen
from chassis.tooling.infra.ports import free_port
from chassis.tooling.supervisor import Mesh, MeshOptions
from protomesh.field.v1 import field_service_pb2 as pb
from protomesh.field.v1.field_service_pb2_grpc import FieldServiceStub

GRID = 100
CELL = 0.001
"""Degrees between field corners; each field is 80% of its cell, so neighbours never touch."""
WEST, SOUTH = 5.0, 52.0


def square(col: int, row: int) -> dict[str, Any]:
    west, south = WEST + col * CELL, SOUTH + row * CELL
    side = CELL * 0.8
    ring = [[west, south], [west + side, south], [west + side, south + side], [west, south + side], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def round_field(col: int, row: int, scale: float, vertices: int = 64) -> dict[str, Any]:
    cx, cy, radius = WEST + (col + 0.4) * CELL, SOUTH + (row + 0.4) * CELL, CELL * 0.4 * scale
    ring = [[cx + radius * math.cos(2 * math.pi * i / vertices), cy + radius * math.sin(2 * math.pi * i / vertices)]
            for i in range(vertices)]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def struct(data: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(data)
    return message


def member_headers(mesh: Mesh) -> dict[str, str]:
    """The bearer token of a member of a new organization (a user signed in by the device flow, as in the
    e2e tests): a platform admin's reads would each be audited, which an organization's member's are not."""
    from tests.e2e.authz_support import create_organization, member

    admin = mesh.token()
    assert admin, "the mesh has no CLI session of the admin"
    return dict(member(mesh, admin, create_organization(mesh, admin, "field-bench"), "member").headers)


def seed(mesh: Mesh, headers: dict[str, str]) -> dict[tuple[int, int], str]:
    """A farm and GRID x GRID fields imported in batches of 500; field ids by (col, row)."""
    ids: dict[tuple[int, int], str] = {}
    with grpc.insecure_channel(mesh.gateway) as channel:
        stub = FieldServiceStub(channel)
        metadata = tuple(headers.items())
        farm = stub.CreateFarm(pb.CreateFarmRequest(name="bench farm"), metadata=metadata, timeout=10).farm
        cells = [(c, r) for r in range(GRID) for c in range(GRID)]
        for start in range(0, len(cells), 500):
            batch = cells[start:start + 500]
            features = [{"type": "Feature", "properties": {"name": f"f-{c}-{r}"}, "geometry": square(c, r)}
                        for c, r in batch]
            reply = stub.ImportFields(pb.ImportFieldsRequest(
                farm_id=farm.farm_id, feature_collection=struct({"type": "FeatureCollection", "features": features})),
                metadata=metadata, timeout=120)
            ids.update({cell: f.field_id for cell, f in zip(batch, reply.fields, strict=True)})
    return ids


def pids(mesh: Mesh) -> list[int]:
    found = [r.pid for r in mesh.replicas.get("field", []) if r.pid]
    if mesh.envoy is not None and mesh.envoy.pid:
        found.append(mesh.envoy.pid)
    return found


def report(name: str, result: dict[str, Any]) -> dict[str, Any]:
    row = {"case": name, "throughput_per_s": result["throughput"], "p50_ms": result["p50_ms"],
           "p99_ms": result["p99_ms"], "errors": result["errors"],
           "server_cpu_us_per_request": result["server_cpu_us_per_req"],
           "other_cpu_s": result["other_cpu_s"], "generator_cpu_s": result["generator_cpu_s"]}
    print(json.dumps(row))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=100, help="lookups in flight")
    parser.add_argument("--write-concurrency", type=int, default=8, help="boundary writes in flight")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per case")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--replicas", type=int, default=1, help="field replicas")
    parser.add_argument("--trace-sampling", type=float, default=None,
                        help="fraction of new traces recorded whole (default: the local mesh's own, docs/tracing.md)")
    args = parser.parse_args()
    os.environ["PROTOMESH_RATE_LIMITS"] = "off"  # the gateway's per-caller limits would measure themselves
    env = {"LOG_LEVEL": "WARNING", "IDENTITY_ACCESS_TOKEN_TTL": "30m"}
    if args.trace_sampling is not None:
        sampling = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                    "OTEL_TRACES_SAMPLER_ARG": str(args.trace_sampling)}
        env.update(sampling)
        os.environ.update(sampling)  # Envoy's config is generated in this process and follows it too
    random.seed(15)
    with tempfile.TemporaryDirectory(prefix="field-bench-") as work:
        options = MeshOptions(state_dir=Path(work) / "mesh", gateway_port=free_port(), default_replicas=args.replicas,
                              only=["field"], service_env=env)
        mesh = Mesh(options, progress=lambda message: print("   ", message.strip()))
        mesh.start()
        try:
            headers = member_headers(mesh)
            ids = seed(mesh, headers)
            print(f"    seeded {len(ids)} fields")
            points = []
            for _ in range(500):
                col, row = random.randrange(GRID), random.randrange(GRID)
                points.append(pb.FindFieldsAtPointRequest(
                    longitude=WEST + (col + random.uniform(0.05, 0.75)) * CELL,
                    latitude=SOUTH + (row + random.uniform(0.05, 0.75)) * CELL).SerializeToString().hex())
            log_dir = Path(work) / "logs"
            log_dir.mkdir()
            lookup = run_loadgen({
                "protocol": "grpc", "targets": [mesh.gateway], "concurrency": args.concurrency,
                "warmup": args.warmup, "duration": args.duration,
                "workload": {"kind": "grpc_get", "method": "/protomesh.field.v1.FieldService/FindFieldsAtPoint",
                             "payloads": points, "headers": headers}}, log_dir, pids(mesh), "field-lookup")
            report(f"FindFieldsAtPoint over {len(ids)} fields, {args.concurrency} in flight", lookup)
            redraws = []
            for col, row in random.sample(sorted(ids), 200):
                for scale in (0.9, 0.7):
                    redraws.append(pb.ChangeBoundaryRequest(
                        field_id=ids[(col, row)], boundary=struct(round_field(col, row, scale))
                    ).SerializeToString().hex())
            write = run_loadgen({
                "protocol": "grpc", "targets": [mesh.gateway], "concurrency": args.write_concurrency,
                "warmup": args.warmup, "duration": args.duration,
                "workload": {"kind": "grpc_get", "method": "/protomesh.field.v1.FieldService/ChangeBoundary",
                             "payloads": redraws, "headers": headers}}, log_dir, pids(mesh), "field-write")
            report(f"ChangeBoundary (64 vertices, area + overlap check + version), {args.write_concurrency} in "
                   "flight", write)
        finally:
            mesh.stop()


if __name__ == "__main__":
    main()
