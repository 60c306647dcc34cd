"""Server interceptors: every call is logged once with its outcome, errors get their gRPC form, and the
access the contract declares is enforced (chassis.identity, chassis.authz).

The steps of one call, in order (`_wrap_unary`): identity (the verified claims → the principal) →
authorization (the method's permission; output-only request fields) → validation (buf.validate) →
the servicer. An audit record (docs/authorization.md, "Audit trail") belongs where `_wrap_unary`
knows the outcome: its `finally`, which has the method, the principal and the final status code.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import grpc
import psycopg
import psycopg_pool
from google.protobuf.message import DecodeError

from chassis import authz, metrics, telemetry, tls
from chassis.audit import Recorder
from chassis.caching import ReplicaCache
from chassis.callcontext import PROPAGATED_HEADERS, CallContext, current_call, response_headers
from chassis.errors import DependencyFailed, FieldViolation, InvalidArgument, ServiceError, Unavailable
from chassis.identity import (
    CLAIMS_HEADER,
    HOW_TO_AUTHENTICATE,
    InvalidClaims,
    Principal,
    Unauthenticated,
    current_principal,
    parse_claims_header,
    set_principal,
)
from chassis.validation import validate_before

logger = logging.getLogger("chassis.calls")

Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def _nul_fields(message: Any, prefix: str = "") -> list[str]:
    """Paths of the string fields (at any depth) that contain a NUL character."""
    found: list[str] = []
    if not hasattr(message, "ListFields"):
        return found
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        values = value.values() if hasattr(value, "values") and callable(value.values) else (
            value if field.is_repeated else [value])
        for item in values:
            if isinstance(item, str) and "\x00" in item:
                found.append(path)
                break
            found += _nul_fields(item, f"{path}.")
    return found


def _as_service_error(exc: Exception, request: Any = None) -> ServiceError | None:
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, psycopg.DataError) and "NUL" in str(exc):
        # PostgreSQL text cannot hold NUL; the client sent one (e.g. ?name_contains=%00): their mistake, named.
        fields = _nul_fields(request) or ["request"]
        return InvalidArgument([FieldViolation(f, "contains a NUL character (\\u0000); remove it") for f in fields])
    if isinstance(exc, psycopg_pool.PoolTimeout | psycopg.OperationalError):
        return Unavailable("the database is unavailable; retry shortly")
    if isinstance(exc, grpc.aio.AioRpcError):
        # A dependency's error keeps its status (a missing context stays NOT_FOUND, an outage UNAVAILABLE).
        return DependencyFailed(exc.code(), f"dependency call failed: {exc.details()}")
    return None


class _Undecodable:
    """Stands in for a request grpc could not decode, so the call fails as INVALID_ARGUMENT, not UNKNOWN."""

    def __init__(self, error: DecodeError) -> None:
        self.error = error


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as exc:  # e.g. a Struct nested deeper than protobuf's 100-level limit
            return _Undecodable(exc)

    return decode


def _decoded(request: Any) -> Any:
    if isinstance(request, _Undecodable):
        raise InvalidArgument([FieldViolation(
            "request", f"cannot be decoded: {request.error}; protobuf nests messages at most 100 levels deep,"
            " which is about 33 levels of JSON objects in a google.protobuf.Struct")])
    return request


class _StatusWithTrailers(grpc.Status):
    def __init__(self, status: grpc.Status, extra: tuple[tuple[str, str], ...]) -> None:
        self.code = status.code
        self.details = status.details
        self.trailing_metadata = (*(status.trailing_metadata or ()), *extra)


INSTANCE_HEADER = "x-protomesh-instance"
"""Trailer naming the replica that answered (grpcurl -v shows it; the mesh uses it to probe routing)."""


class _CallLine:
    """The per-call log line, formatted by hand: this runs on every call, and the logging module's
    record/formatter path costs several times more for the same JSON. What is the same for every call of
    a method is encoded once; the timestamp's seconds once per second."""

    def __init__(self, service: str, instance: str, method: str) -> None:
        self._head = f'","level":"info","logger":"chassis.calls","msg":"call","service":{json.dumps(service)},' \
                     f'"instance":{json.dumps(instance)}'
        self._method = f',"method":{json.dumps(method)},"status":"'
        self._second = -1
        self._stamp = ""

    def __call__(self, code: str, elapsed: float, peer: str, ids: tuple[str, str] | None) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        trace = f',"trace_id":"{ids[0]}","span_id":"{ids[1]}"' if ids else ""
        return (f'{{"ts":"{self._stamp}.{int(now % 1 * 1000):03d}Z{self._head}{trace}{self._method}{code}",'
                f'"duration_ms":{elapsed * 1000:.3f},"peer":{json.dumps(peer)}}}\n')


def _principal_of(claims: str | None, public: bool) -> Principal | None:
    """The call's principal from its claims header; UNAUTHENTICATED if a protected method has none."""
    if claims is not None:
        try:
            return parse_claims_header(claims)
        except InvalidClaims as exc:
            # Only the gateway or a replica sets the header, so a bad one is a bug upstream, not the caller's.
            raise Unauthenticated(f"the verified claims the call carries cannot be read ({exc}); "
                                  f"{HOW_TO_AUTHENTICATE}") from None
    if not public:
        raise Unauthenticated(HOW_TO_AUTHENTICATE)
    return None


def _wrap_unary(service: str, instance: str, method: str, behavior: Handler,
                identity: tuple[tuple[str, str], ...], rule: authz.MethodRule = authz.AUTHENTICATED,
                audit: Recorder | None = None) -> Handler:
    # Everything that is the same for every call of the method is looked up here, once.
    duration = metrics.RPC_DURATION.labels(service, method)
    counters: dict[grpc.StatusCode, Any] = {}
    _, grpc_service, grpc_method = method.split("/", 2)
    span_attributes = {"rpc.system": "grpc", "rpc.service": grpc_service, "rpc.method": grpc_method}
    call_line = _CallLine(service, instance, method)
    ok = grpc.StatusCode.OK

    async def observed(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        if identity:
            # Trailers, not headers: headers sent early would commit the response, and Envoy can no
            # longer retry a call whose replica dies after sending them.
            context.set_trailing_metadata(identity)
        code = ok
        remaining = context.time_remaining()
        # One pass over the metadata: the headers passed on to outbound calls, the claims, the trace parent.
        propagated: tuple[tuple[str, str], ...] = ()
        claims = None
        traceparent = ""
        for key, value in context.invocation_metadata() or ():
            if key in PROPAGATED_HEADERS and isinstance(value, str):
                if key == CLAIMS_HEADER:
                    claims = value
                elif key == "traceparent":
                    traceparent = value
                propagated += ((key, value),)
        if claims is not None and not tls.trusted_peer(context):
            # Claims count only from the gateway or a replica (a certificate of the trust domain: chassis.tls).
            claims = None
            propagated = tuple((k, v) for k, v in propagated if k != CLAIMS_HEADER)
        current_call.set(CallContext(None if remaining is None else time.monotonic() + remaining, propagated))
        headers: list[tuple[str, str]] = []
        response_headers.set(headers)
        span = telemetry.server_span(method, traceparent, propagated, span_attributes)
        span.__enter__()
        try:
            # 1. Identity. Set even when None: the call's task inherits the server's context, which holds
            # the service's own principal (chassis.server), and an anonymous caller must not act as it.
            principal = _principal_of(claims, rule.public)
            set_principal(principal)
            # 2. Authorization, before validation and the servicer: a caller without the permission learns
            # nothing about the request's rules. The rule was read from the descriptors once per method.
            authz.check(rule, principal)
            request = _decoded(request)
            authz.check_request(rule, request)
            # 3. Validation (validate_before, wrapped around the servicer), 4. the servicer.
            response = await behavior(request, context)
            code = context.code() or ok
            return response
        except Exception as exc:
            if isinstance(exc, grpc.aio.AbortError):
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            error = _as_service_error(exc, request)
            if error is None:
                code = grpc.StatusCode.INTERNAL
                logger.exception("unhandled error", extra={"method": method})
                await context.abort(grpc.StatusCode.INTERNAL, "internal error; the service log has the details",
                                    trailing_metadata=identity)
            else:
                code = error.code
                status = error.to_status()
                await context.abort_with_status(_StatusWithTrailers(status, identity))
            raise  # abort raises; this keeps type checkers honest
        finally:
            if isinstance(code, int):
                code = grpc.StatusCode.UNKNOWN
            elapsed = time.perf_counter() - started
            duration.observe(elapsed)
            counter = counters.get(code)
            if counter is None:
                counter = counters[code] = metrics.RPC_REQUESTS.labels(service, method, code.name)
            counter.inc()
            status_number = code.value[0]
            ids: tuple[str, str] | None
            if telemetry.keeps(span, status_number, elapsed):
                # Left out by the sampler, but failed or slow: its span is recorded now, after the fact.
                ids = telemetry.emit_server_span(method, propagated, span_attributes, status_number, code.name,
                                                 elapsed)
            else:
                ids = telemetry.current_ids() if span is not telemetry.UNSAMPLED else None  # the caller's, if any
            if logger.isEnabledFor(logging.INFO):
                sys.stdout.write(call_line(code.name, elapsed, context.peer(), ids))
            if audit is not None and audit.wants(method, code, current_principal()):  # chassis.audit
                await audit.record(method, code, request, context, claims)
            telemetry.end_server_span(span, status_number, code.name)
            if headers and code == ok:
                # Last, right before the answer goes out (chassis.callcontext.response_headers says why).
                await context.send_initial_metadata(headers)

    return observed


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Logs one line per call (method, status, duration) and maps domain errors to statuses.

    Wrapped handlers are cached per method so the per-call cost is one dict lookup.
    """

    def __init__(self, instance_id: str = "", service: str = "", audit: Recorder | None = None,
                 cache: ReplicaCache | None = None) -> None:
        self._service = service
        self._audit = audit
        self._replica_cache = cache
        self._instance = instance_id
        self._cache: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        self._identity = ((INSTANCE_HEADER, instance_id),) if instance_id else ()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        cached = self._cache.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is None or not handler.unary_unary or handler.request_streaming or handler.response_streaming:
            return handler
        # Field rules from the contract (buf.validate) are checked inside the observed call, so a refused
        # request is logged, counted and traced like any other INVALID_ARGUMENT.
        # Servicers of a grpc.aio server are coroutines; the stubs type the handler as a sync callable.
        behavior = validate_before(cast(Handler, handler.unary_unary))
        if self._replica_cache is not None:
            # Inside the observed call, after authorization: a cached read or a fenced write (chassis.caching).
            behavior = self._replica_cache.wrap(method, behavior)
        wrapped = grpc.unary_unary_rpc_method_handler(
            _wrap_unary(self._service, self._instance, method, behavior, self._identity,
                        authz.method_rule(method), self._audit),
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
        self._cache[method] = wrapped
        return wrapped
