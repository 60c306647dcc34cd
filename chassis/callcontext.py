"""What an incoming call passes on to the calls it makes: its deadline, its trace context and its caller."""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass

PROPAGATED_HEADERS = ("traceparent", "tracestate", "x-request-id", "x-protomesh-claims")
"""Incoming metadata copied onto every outbound call made while serving the request. The verified claims
(chassis.identity.CLAIMS_HEADER) are among them: the callee acts on behalf of the same principal."""


@dataclass(frozen=True)
class CallContext:
    """The deadline and propagated headers of the call being served."""

    deadline: float | None
    """time.monotonic() value by which the caller wants an answer, or None for no deadline."""
    headers: tuple[tuple[str, str], ...] = ()

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None."""
        return None if self.deadline is None else max(self.deadline - time.monotonic(), 0.0)


current_call: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar("current_call", default=None)


def outbound_timeout(default: float) -> float:
    """The timeout for an outbound call: the default, shortened to what the current caller has left."""
    call = current_call.get()
    remaining = call.remaining() if call else None
    return default if remaining is None else min(default, remaining)


def outbound_metadata() -> tuple[tuple[str, str], ...]:
    """Headers to propagate on an outbound call (trace headers only when OpenTelemetry is not injecting them)."""
    call = current_call.get()
    if not call:
        return ()
    from chassis.telemetry import tracing_enabled

    if tracing_enabled():
        return tuple((k, v) for k, v in call.headers if k not in ("traceparent", "tracestate"))
    return call.headers


response_headers: contextvars.ContextVar[list[tuple[str, str]] | None] = contextvars.ContextVar(
    "response_headers", default=None)
"""Headers (initial metadata) a layer inside the call wants sent with its answer (chassis.caching's ETag).

They are sent by the call's outermost layer (chassis.interceptors) only once everything else is done,
right before the answer: initial metadata commits the response, and Envoy can no longer retry a call
whose replica dies after sending it. Sent any earlier, a replica killed while the call logged, audited
or ended its span lost that call (503) instead of it being retried on another replica."""


def add_response_headers(headers: list[tuple[str, str]]) -> None:
    """Queue headers for the answer of the call being served (the chassis' interceptor opened its list)."""
    pending = response_headers.get()
    if pending is not None:
        pending.extend(headers)
