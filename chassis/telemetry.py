"""Tracing from the standard OTEL_* variables: gRPC server/client spans, SQL spans, W3C context propagation.

With OTEL_EXPORTER_OTLP_ENDPOINT unset nothing is installed and tracing costs nothing; the local
mesh sets it to its own small OTLP receiver (chassis.tooling.trace_store), so traces land on disk.

Which calls are traced (docs/tracing.md): a share of new traces (OTEL_TRACES_SAMPLER/_ARG, by default
LOCAL_DEFAULT_RATIO) is sampled where the trace starts (Envoy, or the replica for a direct call) and
recorded whole; every other call keeps only its start and outcome, and its server span is emitted at
its end when it failed or was slow (PROTOMESH_TRACE_KEEP, PROTOMESH_TRACE_SLOW_MS). A recording span
costs tens of microseconds and its export more; the record of an unsampled call costs nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.sampling import Sampler

logger = logging.getLogger(__name__)

LOCAL_DEFAULT_RATIO = 0.1
"""Share of new traces recorded whole when OTEL_TRACES_SAMPLER is unset (the local mesh's default)."""
DEFAULT_SLOW_MS = 250.0
"""An unsampled call at least this slow still gets its server span (PROTOMESH_TRACE_SLOW_MS)."""

_provider: Any = None
_ratio = LOCAL_DEFAULT_RATIO
_keep_failed = True
_slow_seconds = DEFAULT_SLOW_MS / 1000


def tracing_enabled() -> bool:
    """Whether this process exports spans."""
    return _provider is not None


def configure_tracing(service: str, instance_id: str) -> bool:
    """Install the OpenTelemetry SDK when OTEL_EXPORTER_OTLP_ENDPOINT is set; return whether it did."""
    global _provider, _ratio, _keep_failed, _slow_seconds
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not endpoint or _provider is not None:
        return _provider is not None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service),
                                "service.instance.id": instance_id})
    _ratio = sampling_ratio()
    _keep_failed, _slow_seconds = kept_unsampled()
    sampler = ParentBased(root=_no_background_client_roots(_ratio))
    provider = TracerProvider(resource=resource, sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True),
                                                   schedule_delay_millis=250))
    trace.set_tracer_provider(provider)
    # SQL spans come from chassis.sql_spans' cursor (chassis.db pools use it), only under a recording span.
    _provider = provider
    logger.info("tracing on", extra={"otlp_endpoint": endpoint, "sampling_ratio": _ratio,
                                     "keep_failed": _keep_failed, "slow_ms": _slow_seconds * 1000})
    return True


def sampling_ratio() -> float:
    """Share of new traces recorded whole, from the standard OTEL_TRACES_SAMPLER(_ARG) variables.

    Unset: LOCAL_DEFAULT_RATIO; failed and slow calls are traced whatever the ratio (kept_unsampled).
    `always_on` records every trace (what `protomesh traces` showed before: it costs the replica about
    a fifth of its CPU); a busy deployment sets e.g. parentbased_traceidratio with 0.05.
    Envoy's gateway sampling follows the same value.
    """
    sampler = os.environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if not sampler:
        return LOCAL_DEFAULT_RATIO
    if sampler in ("always_on", "parentbased_always_on"):
        return 1.0
    if sampler in ("always_off", "parentbased_always_off"):
        return 0.0
    if sampler not in ("traceidratio", "parentbased_traceidratio"):
        return LOCAL_DEFAULT_RATIO
    try:
        return min(max(float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", "1")), 0.0), 1.0)
    except ValueError:
        return LOCAL_DEFAULT_RATIO


def kept_unsampled() -> tuple[bool, float]:
    """(keep failed calls, slow threshold in seconds) for calls the sampler left out.

    PROTOMESH_TRACE_KEEP lists what is kept: `failed,slow` (default), `failed`, `slow` or `none`;
    PROTOMESH_TRACE_SLOW_MS is the threshold (default DEFAULT_SLOW_MS). A threshold of infinity keeps no slow call.
    """
    keep = {k.strip() for k in os.environ.get("PROTOMESH_TRACE_KEEP", "failed,slow").lower().split(",")}
    try:
        slow_ms = float(os.environ.get("PROTOMESH_TRACE_SLOW_MS", "") or DEFAULT_SLOW_MS)
    except ValueError:
        slow_ms = DEFAULT_SLOW_MS
    return "failed" in keep, (max(slow_ms, 0.0) / 1000 if "slow" in keep else float("inf"))


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
UNSAMPLED = contextlib.nullcontext()
"""What server_span returns for a call the sampler left out that carries no trace context: nothing is
recorded while it runs, and its server span is emitted at its end only if it failed or was slow
(keeps, emit_server_span)."""
_UNTRACED_PREFIX = "/grpc.health.v1.Health/"
_UNSAMPLED_FLAGS = tuple("02468ace")
"""Last hex digit of a traceparent whose trace-flags lack the sampled bit (0x01)."""


class _InCallersTrace:
    """An unsampled call that carries the caller's trace context: it is made current (a non-recording span,
    no SDK span built) so that the call's log line, audit record and outbound calls keep the caller's trace
    id, and its SQL costs no span. Like UNSAMPLED, it is kept at its end only if it failed or was slow."""

    __slots__ = ("_context", "_token")

    def __init__(self, context: Any) -> None:
        self._context = context
        self._token: Any = None

    def __enter__(self) -> None:
        from opentelemetry import context

        self._token = context.attach(self._context)

    def __exit__(self, *exc: object) -> None:
        from opentelemetry import context

        context.detach(self._token)


def _unsampled(traceparent: str) -> Any:
    """UNSAMPLED, or the caller's (unsampled) trace context made current when the traceparent is well formed.

    Parsed by hand (version-traceid-spanid-flags): OpenTelemetry's propagator costs several times more.
    """
    parts = traceparent.split("-")
    if len(parts) < 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return UNSAMPLED
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return UNSAMPLED
    if not trace_id or not span_id:
        return UNSAMPLED
    from opentelemetry import context, trace

    remote = trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(flags & 0xFF))
    return _InCallersTrace(trace.set_span_in_context(trace.NonRecordingSpan(remote), context.Context()))


def server_span(method: str, traceparent: str, headers: tuple[tuple[str, str], ...],
                attributes: dict[str, str]) -> Any:
    """A SERVER span for one call, continuing the caller's trace; _NO_SPAN when tracing is off (or for a
    health check); for a call the sampler leaves out, UNSAMPLED or the caller's trace context (_unsampled).
    `headers` are the call's propagated ones.

    The chassis's call interceptor opens it itself instead of using OpenTelemetry's gRPC server
    interceptor: the same span for a fraction of the per-call cost.
    """
    if _provider is None or method.startswith(_UNTRACED_PREFIX):
        return _NO_SPAN
    # Decide sampling before building anything: an unsampled call then costs almost nothing here.
    if traceparent:
        if traceparent.endswith(_UNSAMPLED_FLAGS):
            return _unsampled(traceparent)
    elif _ratio < 1.0 and random.random() >= _ratio:  # noqa: S311 trace sampling, not a secret
        return UNSAMPLED
    from opentelemetry import propagate, trace

    return _tracer().start_as_current_span(method, context=propagate.extract(dict(headers)) if traceparent else None,
                                            kind=trace.SpanKind.SERVER, attributes=attributes,
                                            record_exception=False, set_status_on_exception=False)


def keeps(span_cm: Any, code: int, elapsed: float) -> bool:
    """Whether an unsampled call is kept after all: it failed, or took at least the slow threshold."""
    return ((code != 0 and _keep_failed) or elapsed >= _slow_seconds) and (
        span_cm is UNSAMPLED or isinstance(span_cm, _InCallersTrace))


def emit_server_span(method: str, headers: tuple[tuple[str, str], ...], attributes: dict[str, str],
                     code: int, name: str, elapsed: float) -> tuple[str, str]:
    """Record the server span of an unsampled call that just ended (keeps said so), in the caller's trace
    when it has one; return its (trace id, span id) for the call's log line.

    Only this span is in the trace: the call's SQL and outbound calls were not recorded while it ran.
    """
    from opentelemetry import trace

    end = time.time_ns()
    span = _tracer().start_span(method, context=_sampled_parent(headers), kind=trace.SpanKind.SERVER,
                                attributes=attributes, start_time=end - int(elapsed * 1e9))
    span.set_attribute("protomesh.trace.kept", "failed" if code != 0 and _keep_failed else "slow")
    _set_outcome(span, code, name)
    span.end(end_time=end)
    context = span.get_span_context()
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def _sampled_parent(headers: tuple[tuple[str, str], ...]) -> Any:
    """The caller's span context marked sampled, so that the parent-based sampler records the kept span
    in the caller's trace; an empty context (a new trace) when the call carries none."""
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace

    parent = trace.get_current_span(propagate.extract(dict(headers))).get_span_context()
    if not parent.is_valid:
        return otel_context.Context()
    sampled = trace.SpanContext(parent.trace_id, parent.span_id, is_remote=True,
                                trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED), trace_state=parent.trace_state)
    return trace.set_span_in_context(trace.NonRecordingSpan(sampled))


def _set_outcome(span: Any, code: int, name: str) -> None:
    from opentelemetry import trace

    span.set_attribute("rpc.grpc.status_code", code)
    if code != 0:
        span.set_status(trace.Status(trace.StatusCode.ERROR, name))


def end_server_span(span_cm: Any, code: int, name: str) -> None:
    """Close what server_span opened, recording the gRPC status on a recording span."""
    if span_cm is _NO_SPAN or span_cm is UNSAMPLED:
        return
    if not isinstance(span_cm, _InCallersTrace):
        from opentelemetry import trace

        _set_outcome(trace.get_current_span(), code, name)
    span_cm.__exit__(None, None, None)


def sql_cursor_class() -> Any:
    """The cursor class for a pool's connections (chassis.db): SQL spans under a recording span when
    tracing is on; None (psycopg's own) when it is off."""
    if _provider is None:
        return None
    from chassis.sql_spans import TracedCursor

    return TracedCursor


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
