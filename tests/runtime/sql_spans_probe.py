"""Runs SQL through a chassis.db pool inside one sampled and one unsampled call, then flushes its spans.

A process of its own (tracing is configured once per process, as in a replica), for tests/runtime/test_tracing.py:

    OTEL_EXPORTER_OTLP_ENDPOINT=... python -m tests.runtime.sql_spans_probe DATABASE_URL SAMPLED_PARENT UNSAMPLED_PARENT
"""

from __future__ import annotations

import asyncio
import sys

from chassis import db, telemetry

ATTRIBUTES = {"rpc.system": "grpc", "rpc.service": "probe.Probe", "rpc.method": "Read"}


async def main(url: str, parents: list[str]) -> None:
    pool = db.open_pool(url, "public", min_size=1, max_size=1, timeout=5)
    await pool.open(wait=True)
    try:
        for traceparent in parents:
            # What the call interceptor does around a servicer: open the call's span (or not), run, close.
            span = telemetry.server_span("/probe.Probe/Read", traceparent, (("traceparent", traceparent),),
                                         ATTRIBUTES)
            span.__enter__()
            try:
                async with pool.connection() as conn:
                    await conn.execute("SELECT 1 AS probe")
            finally:
                telemetry.end_server_span(span, 0, "OK")
    finally:
        await pool.close()


if __name__ == "__main__":
    assert telemetry.configure_tracing("sql-probe", "probe-1"), "OTEL_EXPORTER_OTLP_ENDPOINT is not set"
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
    telemetry.shutdown_tracing()  # flushes the spans to the collector
