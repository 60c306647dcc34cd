"""Where a replica's CPU goes: a py-spy raw profile summed into the runtime's parts.

    py-spy record --gil --format raw -r 250 -d 8 -p PID -o prof.txt   # while scripts/bench loads it
    python -m bench.profile_summary prof.txt [more.txt ...]

Each sample is given to the innermost frame that belongs to a known part (tracing, logging,
metrics, SQL driver, protobuf, the handler, grpc, NATS, the event loop), so a span that wraps
a handler does not swallow the handler's own time. With --gil only samples holding the GIL are
recorded: the Python CPU of the process, which is what limits a one-process asyncio server.
"""

from __future__ import annotations

import argparse
from collections import Counter

# py-spy names files relative to their sys.path entry, and OpenTelemetry's instrumentation shows up
# as e.g. grpc/_aio_server.py or trace/__init__.py: those markers come first.
TRACING = ("grpc/_aio_server.py", "grpc/_server.py", "grpc/filters/", "trace/", "_decorator.py", "attributes/",
           "context/", "propagate/", "composite.py", "resources/", "id_generator", "util/_importlib",
           "instrumentation/", "chassis/telemetry.py", "opentelemetry")
EXPORT = ("_shared_internal/", "trace_exporter/", "grpc/exporter.py", "trace_encoder/", "common/_internal/",
          "sdk/trace/export")
"""Frames of the span exporter's thread: everything under them (its gRPC client too) is tracing."""

PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("tracing: spans in the call path", TRACING),
    ("logging: a JSON line per call", ("chassis/logs.py", "logging/__init__.py", "json/")),
    ("metrics: Prometheus", ("prometheus_client/", "chassis/metrics.py")),
    ("chassis call interceptor", ("chassis/interceptors.py", "chassis/callcontext.py")),
    ("events runtime (relay, consumer)", ("chassis/events/",)),
    ("SQL driver and pool (psycopg)", ("psycopg/", "psycopg_pool/", "psycopg_binary/")),
    ("NATS client", ("nats/",)),
    ("handler and messages", ("services/", "bench/peers/", "chassis/protos.py", "protobuf/")),
    ("grpc Python layer", ("grpc/_channel.py", "grpc/aio/", "grpc/__init__.py", "grpc/_utilities.py",
                           "grpc/_common.py", "grpc_")),
    ("event loop, with grpc's C core under it", ("asyncio/", "uvloop/", "selectors.py")),
]


def part_of(stack: list[str]) -> str:
    """The part of the innermost frame that belongs to one; 'other' when none does."""
    if any(marker in frame for frame in stack for marker in EXPORT):
        return "tracing: span export (batch thread, OTLP client)"
    for frame in reversed(stack):
        for name, markers in PARTS:
            if any(marker in frame for marker in markers):
                return name
    return "other"


def summarize(paths: list[str]) -> list[tuple[str, float]]:
    """(part, share of samples) sorted by share."""
    counts: Counter[str] = Counter()
    for path in paths:
        with open(path) as handle:
            for line in handle:
                stack, _, count = line.rstrip().rpartition(" ")
                if stack and count.isdigit():
                    counts[part_of(stack.split(";"))] += int(count)
    total = sum(counts.values()) or 1
    return [(name, n / total) for name, n in counts.most_common()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profiles", nargs="+", help="py-spy --format raw output files")
    parser.add_argument("--us-per-op", type=float, default=0.0,
                        help="GIL-holding CPU per operation (µs), to print each part in µs too")
    args = parser.parse_args()
    for name, share in summarize(args.profiles):
        extra = f"  {share * args.us_per_op:6.0f} µs/op" if args.us_per_op else ""
        print(f"{share * 100:5.1f}%{extra}  {name}")


if __name__ == "__main__":
    main()
