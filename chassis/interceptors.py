"""Server interceptors: every call is logged once with its outcome, and errors get their gRPC form."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import psycopg
import psycopg_pool
from google.protobuf.message import DecodeError

from chassis import metrics
from chassis.callcontext import PROPAGATED_HEADERS, CallContext, current_call
from chassis.errors import DependencyFailed, FieldViolation, InvalidArgument, ServiceError, Unavailable

logger = logging.getLogger("chassis.calls")

Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def _as_service_error(exc: Exception) -> ServiceError | None:
    if isinstance(exc, ServiceError):
        return exc
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


def _wrap_unary(service: str, method: str, behavior: Handler, identity: tuple[tuple[str, str], ...]) -> Handler:
    duration = metrics.RPC_DURATION.labels(service, method)

    async def observed(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        if identity:
            # Trailers, not headers: headers sent early would commit the response, and Envoy can no
            # longer retry a call whose replica dies after sending them.
            context.set_trailing_metadata(identity)
        code = grpc.StatusCode.OK
        remaining = context.time_remaining()
        propagated = tuple((k, v) for k, v in (context.invocation_metadata() or ()) if k in PROPAGATED_HEADERS)
        current_call.set(CallContext(None if remaining is None else time.monotonic() + remaining, propagated))
        try:
            response = await behavior(_decoded(request), context)
            code = context.code() or grpc.StatusCode.OK
            return response
        except Exception as exc:
            if isinstance(exc, grpc.aio.AbortError):
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            error = _as_service_error(exc)
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
            metrics.RPC_REQUESTS.labels(service, method, code.name).inc()
            logger.info(
                "call",
                extra={
                    "method": method,
                    "status": code.name,
                    "duration_ms": round(elapsed * 1000, 3),
                    "peer": context.peer(),
                },
            )

    return observed


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Logs one line per call (method, status, duration) and maps domain errors to statuses.

    Wrapped handlers are cached per method so the per-call cost is one dict lookup.
    """

    def __init__(self, instance_id: str = "", service: str = "") -> None:
        self._service = service
        self._cache: dict[str, grpc.RpcMethodHandler] = {}
        self._identity = ((INSTANCE_HEADER, instance_id),) if instance_id else ()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        cached = self._cache.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is None or not handler.unary_unary or handler.request_streaming or handler.response_streaming:
            return handler
        wrapped = grpc.unary_unary_rpc_method_handler(
            _wrap_unary(self._service, method, handler.unary_unary, self._identity),
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
        self._cache[method] = wrapped
        return wrapped
