"""`call` tasks: any unary method of the mesh's contracts, by name, through the chassis' resilient client.

The request is built from the task's rendered `with` (JSON names or proto names), the response comes
back as JSON-like data; the idempotency key derived from (execution, task path, attempt) rides along as
the `idempotency-key` metadata, so a call repeated after a crash is answered with its first result by
services that honour keys (chassis.idempotency).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from chassis.client import ServiceClient
from chassis.errors import ResourceExhausted, ServiceError
from chassis.idempotency import METADATA_KEY
from chassis.replica import Replica
from services.workflow.dsl.contracts import find_method, mesh_service_of
from services.workflow.engine.outcomes import ERRORS, WorkflowError


class _GenericStub:
    """A stub for any service of the contracts: an attribute per method, made from its descriptor."""

    def __init__(self, channel: grpc.aio.Channel, service: ServiceDescriptor) -> None:
        for method in service.methods:
            request = message_factory.GetMessageClass(method.input_type)
            response = message_factory.GetMessageClass(method.output_type)
            setattr(self, method.name, channel.unary_unary(
                f"/{service.full_name}/{method.name}", request_serializer=request.SerializeToString,
                response_deserializer=response.FromString))


def _stub_factory(service: ServiceDescriptor) -> Callable[[grpc.aio.Channel], Any]:
    return lambda channel: _GenericStub(channel, service)


class MeshCaller:
    """Calls mesh methods by full name; one discovery-aware client per gRPC service, opened on first use."""

    def __init__(self, replica: Replica, timeout: float) -> None:
        self._replica = replica
        self._timeout = timeout
        self._clients: dict[str, ServiceClient[Any]] = {}

    async def _client(self, method: MethodDescriptor) -> ServiceClient[Any]:
        service = method.containing_service
        client = self._clients.get(service.full_name)
        if client is None:
            if self._replica.registry is None:
                raise WorkflowError(ERRORS + "configuration", 503, "no registry",
                                    "the workflow service has no registry to find other services in (NATS_URL)")
            client = ServiceClient(self._replica.registry, mesh_service_of(method), _stub_factory(service),
                                   caller=self._replica.caller, grpc_service=service.full_name)
            await client.start(wait=5.0)
            self._clients[service.full_name] = client
        return client

    async def call(self, full_name: str, arguments: Any, idempotency_key: str, instance: str) -> Any:
        """The method's response as JSON-like data; a failure as a WorkflowError naming the task."""
        method = find_method(full_name)
        if method is None:  # checked at registration; only a contract removed since then gets here
            raise WorkflowError(ERRORS + "configuration", 404, f"no method {full_name}", instance=instance)
        request = message_factory.GetMessageClass(method.input_type)()
        try:
            json_format.ParseDict(arguments if arguments is not None else {}, request)
        except json_format.ParseError as exc:
            raise WorkflowError(ERRORS + "validation", 400, f"bad request for {full_name}", str(exc),
                                instance) from None
        client = await self._client(method)
        invoke = getattr(client.stub, method.name)
        deadline = time.monotonic() + self._timeout
        pause = 0.005
        while True:
            try:
                response = await invoke(request, timeout=max(deadline - time.monotonic(), 0.05),
                                        metadata=((METADATA_KEY, idempotency_key),))
                break
            except grpc.aio.AioRpcError as error:
                # UNAVAILABLE is transient (no replica up yet, or the callee still recording the first answer
                # to this key): retried with the same key until the call's deadline, then the task fails.
                if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() + pause > deadline:
                    raise WorkflowError.of_rpc(error, full_name, instance) from None
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.5)
            except ResourceExhausted as full:
                # This replica's own bulkhead for the callee is full (many executions call it at once): wait
                # for a slot instead of failing the task, within the call's deadline.
                if time.monotonic() + pause > deadline:
                    raise WorkflowError(ERRORS + "communication", 429, f"{full_name} is busy", full.message,
                                        instance) from None
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.1)
            except ServiceError as refused:  # an open breaker, no replica registered: the client's own refusals
                raise WorkflowError(ERRORS + "communication", 503, f"{full_name} is unavailable", refused.message,
                                    instance) from None
        return json_format.MessageToDict(response, preserving_proto_field_name=True)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
