"""Every ContextService operation as native gRPC through Envoy, with status codes and error details.

The stub calls as the local admin (its bearer token on every call); access-list cases call as service
accounts (tests/e2e/context_principals.py) by passing their token as metadata.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2, struct_pb2
from grpc_status import rpc_status

from chassis.tooling.mesh_testing import RestClient, mesh_channel, running_mesh
from chassis.tooling.supervisor import Mesh
from protomesh.common.v1 import service_info_pb2
from protomesh.context.v1 import context_pb2
from protomesh.context.v1 import context_service_pb2 as pb
from protomesh.context.v1.context_service_pb2_grpc import ContextServiceStub
from tests.e2e.context_principals import ServiceAccount, service_account
from tests.support.errors import bad_fields, failure, reason

T = 10  # seconds per call


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    """PostgreSQL, NATS, two context replicas and Envoy."""
    with running_mesh(only=["context"]) as started:
        yield started


@pytest.fixture(scope="module")
def stub(mesh: Mesh) -> Iterator[ContextServiceStub]:
    """A gRPC stub for ContextService through Envoy."""
    with mesh_channel(mesh) as channel:
        yield ContextServiceStub(channel)


@pytest.fixture(scope="module")
def accounts(mesh: Mesh) -> dict[str, ServiceAccount]:
    """A service account a context is shared with and one it is not."""
    admin = RestClient.for_mesh(mesh)
    return {role: service_account(mesh, admin, f"context-grpc-{role}") for role in ("reader", "outsider")}


def struct(**values: Any) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(values)
    return s


def new_context(stub: ContextServiceStub, **fields: Any) -> context_pb2.Context:
    fields = {"name": "grpc", "type": "session", **fields}
    return stub.CreateContext(pb.CreateContextRequest(**fields), timeout=T).context


def test_every_operation(stub: ContextServiceStub) -> None:
    ctx = new_context(stub, metadata=struct(a=1), tags=["g"], ttl=duration_pb2.Duration(seconds=600))
    assert ctx.version == 1 and ctx.status == context_pb2.CONTEXT_STATUS_ACTIVE and ctx.HasField("expire_time")
    assert stub.GetContext(pb.GetContextRequest(context_id=ctx.context_id), timeout=T).context.access_count == 1

    masked = stub.UpdateContext(pb.UpdateContextRequest(
        context_id=ctx.context_id, update_mask=field_mask_pb2.FieldMask(paths=["expire_time", "metadata"]),
        expected_version=1), timeout=T).context
    assert masked.version == 2 and not masked.HasField("expire_time") and dict(masked.metadata) == {}

    base = stub.AddLayer(pb.AddLayerRequest(context_id=ctx.context_id, name="base", layer_type="base",
                                            data=struct(x={"y": 1, "z": 2})), timeout=T)
    assert base.layer.position == 1 and base.context.layer_count == 1
    top = stub.AddLayer(pb.AddLayerRequest(context_id=ctx.context_id, name="top", layer_type="user",
                                           data=struct(x={"y": 5})), timeout=T).layer
    got = stub.GetLayer(pb.GetLayerRequest(context_id=ctx.context_id, layer_id=top.layer_id), timeout=T).layer
    assert got == top
    updated = stub.UpdateLayer(pb.UpdateLayerRequest(context_id=ctx.context_id, layer_id=top.layer_id,
                                                     data=struct(x={"z": None}, w=True), expected_version=1),
                               timeout=T)
    assert updated.layer.version == 2 and updated.layer.name == "top"
    listed = stub.ListLayers(pb.ListLayersRequest(context_id=ctx.context_id), timeout=T)
    assert [layer.name for layer in listed.layers] == ["base", "top"] and listed.page_info.total_size == 2
    resolved = stub.GetResolvedContext(pb.GetResolvedContextRequest(context_id=ctx.context_id), timeout=T)
    assert resolved.data == struct(x={"y": 1}, w=True)
    assert list(resolved.layer_ids) == [base.layer.layer_id, top.layer_id]

    shared = stub.ShareContext(pb.ShareContextRequest(context_id=ctx.context_id, service="service:billing"),
                               timeout=T)
    assert list(shared.context.shared_with) == ["service:billing"]
    unshared = stub.UnshareContext(pb.UnshareContextRequest(context_id=ctx.context_id, service="service:billing"),
                                   timeout=T)
    assert list(unshared.context.shared_with) == []

    analytics = stub.GetContextAnalytics(pb.GetContextAnalyticsRequest(context_id=ctx.context_id),
                                         timeout=T).analytics
    assert analytics.layer_count == 2 and dict(analytics.layers_by_type) == {"base": 1, "user": 1}
    assert analytics.reads_last_24h == 4 and analytics.writes_last_24h == 6
    assert analytics.access_count == 10
    summary = stub.GetAnalyticsSummary(pb.GetAnalyticsSummaryRequest(), timeout=T)
    assert summary.total_contexts >= 1 and summary.contexts_by_type["session"] >= 1
    trends = stub.GetUsageTrends(pb.GetUsageTrendsRequest(context_id=ctx.context_id, last=2), timeout=T)
    assert len(trends.buckets) == 2 and (trends.total_reads, trends.total_writes) == (4, 6)

    found = stub.ListContexts(pb.ListContextsRequest(tags=["g"], owner=ctx.owner), timeout=T)
    assert ctx.context_id in [c.context_id for c in found.contexts]
    gone = stub.DeleteLayer(pb.DeleteLayerRequest(context_id=ctx.context_id, layer_id=top.layer_id,
                                                  expected_version=2), timeout=T)
    assert gone.context.layer_count == 1
    deleted = stub.DeleteContext(pb.DeleteContextRequest(context_id=ctx.context_id), timeout=T)
    assert deleted.deleted_layers == 1
    assert failure(stub.GetContext, pb.GetContextRequest(context_id=ctx.context_id)).code() == grpc.StatusCode.NOT_FOUND


def test_replica_endpoints(stub: ContextServiceStub) -> None:
    info = stub.GetInfo(pb.GetInfoRequest(), timeout=T)
    assert info.info.name == "context" and info.max_layer_bytes == 256 * 1024
    assert stub.GetHealth(pb.GetHealthRequest(), timeout=T).health.state == service_info_pb2.HEALTH_STATE_SERVING
    assert stub.GetReadiness(pb.GetReadinessRequest(), timeout=T).health.service == "context"
    assert stub.GetLiveness(pb.GetLivenessRequest(), timeout=T).state == service_info_pb2.HEALTH_STATE_SERVING


def test_invalid_argument_names_fields_even_for_values_json_cannot_carry(stub: ContextServiceStub) -> None:
    assert bad_fields(failure(stub.CreateContext, pb.CreateContextRequest())) == {"name", "type"}
    ctx = new_context(stub)
    data = struct(ok=1, nested={"k": 1})
    data.fields["nan"].number_value = float("nan")
    data.fields["nested"].struct_value.fields["inf"].number_value = float("-inf")
    data.fields["nul"].string_value = "a\x00b"
    data.fields["unset"].CopyFrom(struct_pb2.Value())
    error = failure(stub.AddLayer, pb.AddLayerRequest(context_id=ctx.context_id, name="l", layer_type="t", data=data))
    assert bad_fields(error) == {"data.nan", "data.nested.inf", "data.nul", "data.unset"}
    assert reason(error) == "ERROR_REASON_INVALID_ARGUMENT"
    both = pb.CreateContextRequest(name="n", type="t", ttl=duration_pb2.Duration(seconds=5))
    both.expire_time.GetCurrentTime()
    assert bad_fields(failure(stub.CreateContext, both)) == {"ttl"}


def test_error_codes_and_reasons(mesh: Mesh, stub: ContextServiceStub, accounts: dict[str, ServiceAccount]) -> None:
    ctx = new_context(stub, shared_with=[accounts["reader"].subject])
    layer = stub.AddLayer(pb.AddLayerRequest(context_id=ctx.context_id, name="l", layer_type="t"), timeout=T).layer

    missing = failure(stub.GetLayer, pb.GetLayerRequest(context_id=ctx.context_id, layer_id=str(uuid.uuid4())))
    assert missing.code() == grpc.StatusCode.NOT_FOUND and reason(missing) == "ERROR_REASON_NOT_FOUND"

    stale = failure(stub.UpdateLayer, pb.UpdateLayerRequest(context_id=ctx.context_id, layer_id=layer.layer_id,
                                                            name="x", expected_version=9))
    assert stale.code() == grpc.StatusCode.ABORTED and "re-read" in (stale.details() or "")
    assert rpc_status.from_call(stale) is not None and reason(stale) == "ERROR_REASON_ABORTED"

    duplicate = failure(stub.AddLayer, pb.AddLayerRequest(context_id=ctx.context_id, name="l", layer_type="t"))
    assert duplicate.code() == grpc.StatusCode.ALREADY_EXISTS

    # The admin owns it; the outsider is not on its list; the reader is, which does not make it the owner.
    outsider, reader = (accounts[role].metadata() for role in ("outsider", "reader"))
    resolved = pb.GetResolvedContextRequest(context_id=ctx.context_id)
    assert stub.GetResolvedContext(resolved, timeout=T, metadata=reader).context.context_id == ctx.context_id
    denied = failure(functools.partial(stub.GetResolvedContext, metadata=outsider), resolved)
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED and reason(denied) == "ERROR_REASON_PERMISSION_DENIED"
    assert accounts["outsider"].subject in (denied.details() or "")
    not_owner = failure(functools.partial(stub.ShareContext, metadata=reader),
                        pb.ShareContextRequest(context_id=ctx.context_id, service="service:crm"))
    assert not_owner.code() == grpc.StatusCode.PERMISSION_DENIED
    with mesh_channel(mesh, authenticated=False) as anonymous:
        unauthenticated = failure(ContextServiceStub(anonymous).GetContext,
                                  pb.GetContextRequest(context_id=ctx.context_id))
    assert unauthenticated.code() == grpc.StatusCode.UNAUTHENTICATED

    stub.UpdateContext(pb.UpdateContextRequest(context_id=ctx.context_id, status=context_pb2.CONTEXT_STATUS_ARCHIVED),
                       timeout=T)
    read_only = failure(stub.DeleteLayer, pb.DeleteLayerRequest(context_id=ctx.context_id, layer_id=layer.layer_id))
    assert read_only.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(read_only) == "ERROR_REASON_FAILED_PRECONDITION"
