"""Every write that is not idempotent by itself accepts an idempotency key (AIP-155 `request_id`).

An RPC whose idempotency_level is unset has side effects that a plain retry would repeat; with a key,
the chassis (chassis.idempotency) applies it once and Envoy and the resilient client may retry it.
The servicer side is checked too: each such method is wrapped by @idempotent.
"""

from __future__ import annotations

import importlib

import protovalidate
import pytest
from google.protobuf import descriptor, descriptor_pb2

from chassis.contracts import mesh_grpc_services
from protomesh.agent.v1 import agent_service_pb2
from protomesh.context.v1 import context_service_pb2
from protomesh.integration.v1 import integration_service_pb2
from protomesh.notification.v1 import notification_service_pb2

_FILES = (agent_service_pb2, context_service_pb2, integration_service_pb2, notification_service_pb2)
_SERVICERS = {
    "protomesh.agent.v1.AgentService": "services.agent.servicer:AgentServicer",
    "protomesh.context.v1.ContextService": "services.context.servicer:ContextServicer",
    "protomesh.integration.v1.IntegrationService": "services.integration.servicer:IntegrationServicer",
    "protomesh.notification.v1.NotificationService": "services.notification.servicer:NotificationServicer",
}
WITHOUT_KEY = {
    # Probes: they open a connection to the external system and report how it went; nothing is
    # created or changed (a repeat only probes again), so there is no first result worth replaying.
    "protomesh.integration.v1.IntegrationService/TestIntegration",
    "protomesh.integration.v1.IntegrationService/TestClient",
}


def _services() -> list[descriptor.ServiceDescriptor]:
    return [s for f in _FILES for s in f.DESCRIPTOR.services_by_name.values()]


def _keyless_writes() -> list[str]:
    missing = []
    for service in _services():
        for method in service.methods:
            level = method.GetOptions().idempotency_level
            if level != descriptor_pb2.MethodOptions.IDEMPOTENCY_UNKNOWN:
                continue  # NO_SIDE_EFFECTS and IDEMPOTENT calls are safe to retry as they are
            name = f"{service.full_name}/{method.name}"
            if "request_id" not in method.input_type.fields_by_name and name not in WITHOUT_KEY:
                missing.append(name)
    return missing


def test_the_four_services_are_checked() -> None:
    assert {s.full_name for s in _services()} == set(_SERVICERS)
    assert set(_SERVICERS) <= set(mesh_grpc_services())


def test_every_non_idempotent_rpc_takes_a_request_id() -> None:
    assert _keyless_writes() == []


def test_the_exemptions_are_real_methods() -> None:
    methods = {f"{s.full_name}/{m.name}" for s in _services() for m in s.methods}
    assert methods >= WITHOUT_KEY


def test_request_id_is_an_optional_bounded_string() -> None:
    validator = protovalidate.Validator()
    for service in _services():
        for method in service.methods:
            field = method.input_type.fields_by_name.get("request_id")
            if field is None:
                continue
            assert field.type == descriptor.FieldDescriptor.TYPE_STRING, method.full_name
            cls = importlib.import_module(method.input_type.file.name.replace("/", ".").removesuffix(".proto")
                                          + "_pb2")
            message = getattr(cls, method.input_type.name)
            # Only request_id is set, so only its own rule may be named (other fields may be required).
            ok = {v.proto.field.elements[0].field_name for v in validator.collect_violations(
                message(request_id="0b5c6a1e-5d1a-4c3e-9f00-1c2d3e4f5a6b"))}
            bad = {v.proto.field.elements[0].field_name for v in validator.collect_violations(
                message(request_id="x" * 65))}
            assert "request_id" not in ok and "request_id" in bad, method.full_name


def test_each_keyed_write_is_wrapped_by_the_chassis() -> None:
    unwrapped = []
    for service in _services():
        module_name, cls_name = _SERVICERS[service.full_name].split(":")
        servicer = getattr(importlib.import_module(module_name), cls_name)
        for method in service.methods:
            # @idempotent keeps the method's name (functools.wraps) and exposes the original.
            keyed = "request_id" in method.input_type.fields_by_name
            if keyed and not hasattr(getattr(servicer, method.name), "__wrapped__"):
                unwrapped.append(method.full_name)
    assert unwrapped == []


def test_the_check_fails_on_a_keyless_write(monkeypatch: pytest.MonkeyPatch) -> None:
    # The check can fail: without its exemptions the two probes are reported.
    monkeypatch.setitem(globals(), "WITHOUT_KEY", set())
    assert sorted(_keyless_writes()) == sorted([
        "protomesh.integration.v1.IntegrationService/TestClient",
        "protomesh.integration.v1.IntegrationService/TestIntegration",
    ])
