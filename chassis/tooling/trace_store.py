"""A small OTLP trace receiver for one machine: spans from Envoy and every replica, kept on disk, shown as trees.

It implements the OTLP/gRPC TraceService Export call and appends each export request as it came,
length-prefixed, to <dir>/spans.otlp, so a person can see where a slow request spent its time
without running Jaeger or an OpenTelemetry Collector. `protomesh traces` and `protomesh trace ID`
read the file. The receiver does not even parse what it stores: decoding every span and writing it
as JSON cost ~150 µs of the supervisor's CPU per traced request; the reader decodes instead, when
someone asks.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from collections import defaultdict
from collections.abc import Iterable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

MAX_FILE_BYTES = 64 * 1024 * 1024
_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _attr_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in ("string_value", "bool_value", "int_value", "double_value") else str(value)


def spans_of(request: trace_service_pb2.ExportTraceServiceRequest) -> Iterable[dict[str, Any]]:
    """Flatten an OTLP export into one dict per span."""
    for resource_spans in request.resource_spans:
        resource = {a.key: _attr_value(a.value) for a in resource_spans.resource.attributes}
        service = str(resource.get("service.name", "unknown"))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield {
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "name": span.name,
                    "service": service,
                    "kind": _KINDS.get(span.kind, str(span.kind)),
                    "start_ns": span.start_time_unix_nano,
                    "end_ns": span.end_time_unix_nano,
                    "status": span.status.code,
                    "attributes": {a.key: _attr_value(a.value) for a in span.attributes},
                }


_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_LENGTH = struct.Struct(">I")
_EMPTY_RESPONSE = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()


class _Receiver(grpc.GenericRpcHandler):
    """Export, with the request kept as bytes (no deserializer) and appended to the file as it is."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(self._export)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        return self._handler if handler_call_details.method == _EXPORT_METHOD else None

    def _export(self, request: bytes, context: Any) -> bytes:
        with self._lock:
            if self._path.exists() and self._path.stat().st_size > MAX_FILE_BYTES:
                self._path.replace(self._path.with_suffix(".1.otlp"))
            # Spans carry request attributes: readable by their owner only, in a 0700 folder.
            with open(os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as out:
                out.write(_LENGTH.pack(len(request)) + request)
        return _EMPTY_RESPONSE


class TraceCollector:
    """OTLP/gRPC receiver on 127.0.0.1 writing spans under `directory`."""

    def __init__(self, directory: Path, port: int = 0) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
        self.path = directory / "spans.otlp"
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self._server.add_generic_rpc_handlers((_Receiver(self.path),))
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")

    @property
    def endpoint(self) -> str:
        """Value for OTEL_EXPORTER_OTLP_ENDPOINT."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve in the background."""
        self._server.start()

    def stop(self) -> None:
        """Stop serving (after a short grace for in-flight exports)."""
        self._server.stop(1).wait()


def _stored_spans(path: Path) -> Iterable[dict[str, Any]]:
    """The spans of one file: length-prefixed export requests, or JSON lines (a store written before)."""
    data = path.read_bytes()
    if path.suffix == ".jsonl":
        yield from (json.loads(line) for line in data.decode().splitlines() if line.strip())
        return
    offset = 0
    while offset + _LENGTH.size <= len(data):
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + length > len(data):
            break  # a record still being written
        yield from spans_of(trace_service_pb2.ExportTraceServiceRequest.FromString(data[offset:offset + length]))
        offset += length


def load_traces(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """Every stored span, grouped by trace id."""
    traces: dict[str, list[dict[str, Any]]] = defaultdict(list)
    names = ("spans.1.jsonl", "spans.jsonl", "spans.1.otlp", "spans.otlp")
    for path in (directory / name for name in names):
        if path.exists():
            for span in _stored_spans(path):
                traces[span["trace_id"]].append(span)
    return dict(traces)


def summarize(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """Root span name, start, duration, span count and services of one trace."""
    start = min(s["start_ns"] for s in spans)
    end = max(s["end_ns"] for s in spans)
    ids = {s["span_id"] for s in spans}
    roots = [s for s in spans if s["parent_span_id"] not in ids] or spans
    root = min(roots, key=lambda s: s["start_ns"])
    return {"trace_id": spans[0]["trace_id"], "root": f"{root['service']}: {root['name']}", "start_ns": start,
            "duration_ms": (end - start) / 1e6, "spans": len(spans),
            "services": sorted({s["service"] for s in spans})}


def render_tree(spans: list[dict[str, Any]]) -> str:
    """One trace as an indented tree with durations and offsets from the trace's start."""
    by_parent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    ids = {s["span_id"] for s in spans}
    for span in spans:
        by_parent[span["parent_span_id"] if span["parent_span_id"] in ids else ""].append(span)
    start = min(s["start_ns"] for s in spans)
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for span in sorted(by_parent.get(parent, []), key=lambda s: s["start_ns"]):
            duration = (span["end_ns"] - span["start_ns"]) / 1e6
            offset = (span["start_ns"] - start) / 1e6
            error = "  ERROR" if span.get("status") == 2 else ""
            lines.append(f"{'  ' * depth}{span['service']}: {span['name']} [{span['kind']}] "
                         f"{duration:.2f} ms (+{offset:.2f} ms){error}")
            walk(span["span_id"], depth + 1)

    walk("", 0)
    return "\n".join(lines)
