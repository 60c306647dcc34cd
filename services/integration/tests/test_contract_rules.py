"""Every rule integration_service.proto declares, over the real channel: a request breaking it is
INVALID_ARGUMENT naming the field, before the servicer runs (so no integration needs to exist)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2

from chassis.testing import InProcess
from protomesh.integration.v1 import integration_service_pb2 as pb
from protomesh.integration.v1.integration_service_pb2_grpc import IntegrationServiceStub
from tests.support.errors import async_failure, bad_fields

ID = str(uuid.uuid4())
LOCAL = 4  # INTEGRATION_KIND_LOCAL_STORAGE


def config(**fields: Any) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(fields)
    return s


def create(**fields: Any) -> pb.CreateIntegrationRequest:
    return pb.CreateIntegrationRequest(**{"name": "ok", "kind": LOCAL, **fields})


def update(**fields: Any) -> pb.UpdateIntegrationRequest:
    return pb.UpdateIntegrationRequest(**{"integration_id": ID, **fields})


def invoke(**fields: Any) -> pb.InvokeIntegrationRequest:
    return pb.InvokeIntegrationRequest(**{"integration_id": ID, "operation": "get", **fields})


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=paths)


ID_ONLY = ["GetIntegration", "DeleteIntegration", "CheckIntegrationHealth", "GetIntegrationStatus",
           "TestIntegration", "GetRateLimitStatus", "GetCacheStats", "ClearCache", "GetCircuitBreakerStatus",
           "ResetCircuitBreaker"]

CASES: list[tuple[str, str, Any, set[str]]] = [
    # ListIntegrations
    ("page_size below 0", "ListIntegrations", pb.ListIntegrationsRequest(page_size=-1), {"page_size"}),
    ("page_size above 1000", "ListIntegrations", pb.ListIntegrationsRequest(page_size=1001), {"page_size"}),
    ("page_token too long", "ListIntegrations", pb.ListIntegrationsRequest(page_token="x" * 1025), {"page_token"}),
    ("kind not defined", "ListIntegrations", pb.ListIntegrationsRequest(kind=42), {"kind"}),  # type: ignore[arg-type]
    ("name_contains too long", "ListIntegrations", pb.ListIntegrationsRequest(name_contains="x" * 129),
     {"name_contains"}),
    ("enabled not a boolean", "ListIntegrations", pb.ListIntegrationsRequest(enabled="maybe"), {"enabled"}),
    ("label key malformed", "ListIntegrations", pb.ListIntegrationsRequest(label="Bad Key"), {"label"}),
    ("label too long", "ListIntegrations", pb.ListIntegrationsRequest(label="k=" + "v" * 319), {"label"}),
    # CreateIntegration
    ("create without name and kind", "CreateIntegration", pb.CreateIntegrationRequest(), {"name", "kind"}),
    ("name malformed", "CreateIntegration", create(name=" bad\nname"), {"name"}),
    ("name too long", "CreateIntegration", create(name="n" * 129), {"name"}),
    ("kind not defined", "CreateIntegration", create(kind=99), {"kind"}),
    ("description too long", "CreateIntegration", create(description="d" * 2001), {"description"}),
    ("credential empty", "CreateIntegration", create(credentials={"token": ""}), {"credentials.token"}),
    ("credential too long", "CreateIntegration", create(credentials={"token": "t" * 8193}), {"credentials.token"}),
    ("credential name empty", "CreateIntegration", create(credentials={"": "x"}), {'credentials[""]'}),
    ("too many credentials", "CreateIntegration", create(credentials={f"c{i}": "x" for i in range(17)}),
     {"credentials"}),
    ("label key malformed", "CreateIntegration", create(labels={"Bad Key": "v"}), {'labels["Bad Key"]'}),
    ("label value too long", "CreateIntegration", create(labels={"team": "v" * 257}), {"labels.team"}),
    ("too many labels", "CreateIntegration", create(labels={f"l{i}": "v" for i in range(33)}), {"labels"}),
    # UpdateIntegration
    ("update without id", "UpdateIntegration", update(integration_id="", description="x"), {"integration_id"}),
    ("new name empty", "UpdateIntegration", update(name=""), {"name"}),
    ("masked name missing", "UpdateIntegration", update(update_mask=mask("name")), {"name"}),
    ("new description too long", "UpdateIntegration", update(description="d" * 2001), {"description"}),
    ("expected_version negative", "UpdateIntegration", update(description="x", expected_version=-1),
     {"expected_version"}),
    ("new credential empty", "UpdateIntegration", update(credentials={"token": ""}), {"credentials.token"}),
    ("new label key malformed", "UpdateIntegration", update(labels={"Bad": "v"}), {"labels.Bad"}),
    # InvokeIntegration
    ("invoke without id", "InvokeIntegration", invoke(integration_id=""), {"integration_id"}),
    ("invoke request_id malformed", "InvokeIntegration", invoke(request_id="a b"), {"request_id"}),
    ("create request_id too long", "CreateIntegration", create(request_id="x" * 65), {"request_id"}),
    ("operation missing", "InvokeIntegration", invoke(operation=""), {"operation"}),
    ("operation too long", "InvokeIntegration", invoke(operation="o" * 65), {"operation"}),
    # pragma: allowlist nextline secret - fake credential, test input
    ("client_key with a space", "InvokeIntegration", invoke(client_key="has space"), {"client_key"}),
    ("client_key too long", "InvokeIntegration", invoke(client_key="k" * 129), {"client_key"}),
    # Clients
    ("client health without type", "CheckClientHealth", pb.CheckClientHealthRequest(), {"client_type"}),
    ("client test without type", "TestClient", pb.TestClientRequest(), {"client_type"}),
    ("credentials without config", "TestClient", pb.TestClientRequest(client_type="http", credentials={"t": "x"}),
     {"config"}),
    ("test credential empty", "TestClient",
     pb.TestClientRequest(client_type="http", config=config(base_url="http://h"), credentials={"token": ""}),
     {"credentials.token"}),
    *[(f"{rpc} without id", rpc, getattr(pb, f"{rpc}Request")(), {"integration_id"}) for rpc in ID_ONLY],
]


@pytest.mark.parametrize(("rpc", "request_", "fields"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_a_broken_rule_is_invalid_argument_naming_the_field(
        integration: InProcess[Any], rpc: str, request_: Any, fields: set[str]) -> None:
    call: Callable[..., Any] = getattr(integration.stub(IntegrationServiceStub), rpc)
    error = await async_failure(call, request_)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    named = bad_fields(error)
    # The contract's fields, plus whatever the kind's own checks (config, credentials) add in the same answer.
    assert fields <= named and all(f.startswith(("config", "credentials")) for f in named - fields), error.details()


async def test_a_request_within_the_rules_reaches_the_servicer(integration: InProcess[Any]) -> None:
    """The edges the rules allow pass them: the servicer answers (here: the id names nothing)."""
    stub = integration.stub(IntegrationServiceStub)
    listed = await stub.ListIntegrations(pb.ListIntegrationsRequest(
        page_size=1000, enabled="TRUE", label="team=" + "v" * 256, name_contains="n" * 128))
    assert listed.page_info.total_size == 0
    error = await async_failure(stub.InvokeIntegration, invoke(client_key="k" * 128, operation="o" * 64))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await async_failure(stub.UpdateIntegration, update(name="n" * 128, update_mask=mask("name")))
    assert error.code() == grpc.StatusCode.NOT_FOUND
