"""Tracing from the standard OTEL_* variables: gRPC server/client spans, SQL spans, W3C context propagation.

With OTEL_EXPORTER_OTLP_ENDPOINT unset nothing is installed and tracing costs nothing; the local
mesh sets it to its own small OTLP receiver (chassis.tooling.trace_store), so traces land on disk.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.sampling import Sampler

logger = logging.getLogger(__name__)

_provider: Any = None
_ratio = 1.0


def tracing_enabled() -> bool:
    """Whether this process exports spans."""
    return _provider is not None


def configure_tracing(service: str, instance_id: str) -> bool:
    """Install the OpenTelemetry SDK when OTEL_EXPORTER_OTLP_ENDPOINT is set; return whether it did."""
    global _provider
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not endpoint or _provider is not None:
        return _provider is not None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service),
                                "service.instance.id": instance_id})
    sampler = ParentBased(root=_no_background_client_roots(sampling_ratio()))
    provider = TracerProvider(resource=resource, sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True),
                                                   schedule_delay_millis=250))
    trace.set_tracer_provider(provider)
    global _ratio
    _ratio = sampling_ratio()
    PsycopgInstrumentor().instrument(skip_dep_check=True)
    _provider = provider
    logger.info("tracing on", extra={"otlp_endpoint": endpoint})
    return True


def sampling_ratio() -> float:
    """Share of new traces recorded, from the standard OTEL_TRACES_SAMPLER(_ARG) variables (default: all).

    The local mesh records every trace, which is what a person debugging on one machine wants;
    a busy deployment sets e.g. OTEL_TRACES_SAMPLER=parentbased_traceidratio, OTEL_TRACES_SAMPLER_ARG=0.05.
    Envoy's gateway sampling follows the same value.
    """
    sampler = os.environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if sampler in ("always_off", "parentbased_always_off"):
        return 0.0
    if sampler not in ("traceidratio", "parentbased_traceidratio"):
        return 1.0
    try:
        return min(max(float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", "1")), 0.0), 1.0)
    except ValueError:
        return 1.0


def _no_background_client_roots(ratio: float) -> Sampler:
    """Samples new traces at the configured ratio, except those that would start at a client span (a
    health probe's SELECT 1, a background poll): they belong to no request and would bury the rest."""
    # Defined here, not at module level: the SDK is imported only once tracing is configured.
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult, TraceIdRatioBased
    from opentelemetry.trace import SpanKind

    class NoBackgroundClientRoots(Sampler):
        def __init__(self) -> None:
            self._ratio = TraceIdRatioBased(ratio)

        def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: Any = None,
                          attributes: Any = None, links: Any = None, trace_state: Any = None) -> SamplingResult:
            if kind == SpanKind.CLIENT:
                return SamplingResult(Decision.DROP, attributes)
            if kind == SpanKind.SERVER:  # server_span already applied the ratio before creating it
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
            return self._ratio.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

        def get_description(self) -> str:
            return "NoBackgroundClientRoots"

    return NoBackgroundClientRoots()


_NO_SPAN = contextlib.nullcontext()
_UNTRACED_PREFIX = "/grpc.health.v1.Health/"


def server_span(method: str, headers: dict[str, str], attributes: dict[str, str]) -> Any:
    """A SERVER span for one call, continuing the caller's trace (a no-op context when tracing is off).

    The chassis's call interceptor opens it itself instead of using OpenTelemetry's gRPC server
    interceptor: the same span for a fraction of the per-call cost. Health checks are not traced.
    """
    if _provider is None or method.startswith(_UNTRACED_PREFIX):
        return _NO_SPAN
    # Decide sampling before building anything: an unsampled call then costs nothing here.
    parent = headers.get("traceparent", "")
    if parent:
        if parent.endswith("-00"):
            return _NO_SPAN
    elif _ratio < 1.0 and random.random() >= _ratio:  # noqa: S311 trace sampling, not a secret
        return _NO_SPAN
    from opentelemetry import propagate, trace

    return _tracer().start_as_current_span(method, context=propagate.extract(headers) if headers else None,
                                            kind=trace.SpanKind.SERVER, attributes=attributes,
                                            record_exception=False, set_status_on_exception=False)


def end_server_span(span_cm: Any, code: int, name: str) -> None:
    """Close a span opened by server_span, recording the gRPC status."""
    if span_cm is _NO_SPAN:
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    span.set_attribute("rpc.grpc.status_code", code)
    if code != 0:
        span.set_status(trace.Status(trace.StatusCode.ERROR, name))
    span_cm.__exit__(None, None, None)


_TRACER: Any = None


def _tracer() -> Any:
    global _TRACER
    if _TRACER is None:
        from opentelemetry import trace

        _TRACER = trace.get_tracer("protomesh.chassis")
    return _TRACER


def client_interceptors() -> list[Any]:
    """gRPC client interceptors that start client spans and inject the trace context."""
    if not tracing_enabled():
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors())


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the active span, hex, or None."""
    if not tracing_enabled():
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def shutdown_tracing() -> None:
    """Flush and stop exporting (at replica shutdown)."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def producer_headers(name: str) -> dict[str, str]:
    """Start and end a PRODUCER span for an event or task being written, returning its trace headers.

    The span is a child of the call being served, so a consumer's span continues the same trace.
    Empty when tracing is off (callers then pass the incoming headers on unchanged).
    """
    if not tracing_enabled():
        return {}
    from opentelemetry import propagate, trace

    tracer = trace.get_tracer("protomesh.events")
    carrier: dict[str, str] = {}
    with tracer.start_as_current_span(name, kind=trace.SpanKind.PRODUCER):
        propagate.inject(carrier)
    return carrier


@contextlib.contextmanager
def consumer_span(name: str, headers: dict[str, str]) -> Iterator[dict[str, str]]:
    """Handle a message inside a CONSUMER span continuing the trace in its headers; yields the headers
    of the new span (to pass on), or the incoming ones when tracing is off."""
    if not tracing_enabled():
        yield headers
        return
    from opentelemetry import propagate, trace

    tracer = trace.get_tracer("protomesh.events")
    with tracer.start_as_current_span(name, context=propagate.extract(headers), kind=trace.SpanKind.CONSUMER):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        yield carrier
