"""Tenancy (docs/authorization.md): contexts, their layers and usage are their organization's.

A principal of organization B names A's context and layers by id in every RPC: always NOT_FOUND, like an
id that does not exist, even when A's access list names B's subject (access lists stay within an
organization); B's lists, summaries and trends never count A's. A platform admin sees both organizations.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
import psycopg
from google.protobuf import field_mask_pb2

from chassis.events.envelope import ORGANIZATION_HEADER, headers_for
from chassis.identity import Principal
from chassis.testing import InProcess
from protomesh.context.v1 import context_service_pb2 as pb
from protomesh.context.v1.context_service_pb2_grpc import ContextServiceStub
from protomesh.events.v1 import envelope_pb2
from services.context.deps import ContextDeps
from tests.support.errors import async_failure, bad_fields

Stub = ContextServiceStub


def _orgs() -> tuple[Principal, Principal, Principal]:
    """A member of a new organization A, an admin of a new organization B, and a platform admin of B."""
    a, b = f"org-a-{uuid.uuid4().hex[:6]}", f"org-b-{uuid.uuid4().hex[:6]}"
    return (Principal(subject=str(uuid.uuid4()), organization=a, roles=frozenset({"member"})),
            Principal(subject=str(uuid.uuid4()), organization=b, roles=frozenset({"admin"})),
            Principal(subject=str(uuid.uuid4()), organization=b, roles=frozenset({"member"}),
                      platform_admin=True))


async def test_another_organizations_contexts_and_layers_are_not_found(
        context_service: InProcess[ContextDeps]) -> None:
    alice_p, bob_p, _ = _orgs()
    alice, bob = context_service.stub(Stub, alice_p), context_service.stub(Stub, bob_p)
    kind = f"kind-{uuid.uuid4().hex[:6]}"
    # Shared with B's subject by name: the list holds subjects, the organization still decides.
    ctx = (await alice.CreateContext(pb.CreateContextRequest(name="a", type=kind,
                                                             shared_with=[bob_p.subject]))).context
    layer = (await alice.AddLayer(pb.AddLayerRequest(context_id=ctx.context_id, name="l", layer_type="t"))).layer
    assert ctx.organization_id == alice_p.organization and layer.organization_id == alice_p.organization
    cid, lid = ctx.context_id, layer.layer_id

    calls: list[tuple[Callable[..., Any], Any]] = [
        (bob.GetContext, pb.GetContextRequest(context_id=cid)),
        (bob.UpdateContext, pb.UpdateContextRequest(context_id=cid, name="mine")),
        (bob.DeleteContext, pb.DeleteContextRequest(context_id=cid)),
        (bob.ListLayers, pb.ListLayersRequest(context_id=cid)),
        (bob.AddLayer, pb.AddLayerRequest(context_id=cid, name="x", layer_type="t")),
        (bob.GetLayer, pb.GetLayerRequest(context_id=cid, layer_id=lid)),
        (bob.UpdateLayer, pb.UpdateLayerRequest(context_id=cid, layer_id=lid, name="x")),
        (bob.DeleteLayer, pb.DeleteLayerRequest(context_id=cid, layer_id=lid)),
        (bob.GetResolvedContext, pb.GetResolvedContextRequest(context_id=cid)),
        (bob.ShareContext, pb.ShareContextRequest(context_id=cid, service=bob_p.subject)),
        (bob.UnshareContext, pb.UnshareContextRequest(context_id=cid, service=bob_p.subject)),
        (bob.GetContextAnalytics, pb.GetContextAnalyticsRequest(context_id=cid)),
    ]
    for call, request in calls:
        error = await async_failure(call, request)
        assert error.code() == grpc.StatusCode.NOT_FOUND, (call, request, error.details())

    assert cid not in [c.context_id for c in (await bob.ListContexts(pb.ListContextsRequest())).contexts]
    assert list((await bob.ListContexts(pb.ListContextsRequest(type=kind))).contexts) == []
    summary = await bob.GetAnalyticsSummary(pb.GetAnalyticsSummaryRequest())
    assert kind not in summary.contexts_by_type and summary.total_contexts == 0
    trends = await bob.GetUsageTrends(pb.GetUsageTrendsRequest(context_id=cid))
    assert (trends.total_reads, trends.total_writes) == (0, 0)
    assert (await bob.GetInfo(pb.GetInfoRequest())).context_count == 0

    # Nothing B tried changed or counted anything of A's.
    after = (await alice.GetContext(pb.GetContextRequest(context_id=cid))).context
    assert (after.name, after.version, after.layer_count, after.access_count) == ("a", 1, 1, 2)
    assert (await alice.GetAnalyticsSummary(pb.GetAnalyticsSummaryRequest())).contexts_by_type[kind] == 1


async def test_a_platform_admin_sees_every_organization(context_service: InProcess[ContextDeps]) -> None:
    alice_p, bob_p, root_p = _orgs()
    alice, bob, root = (context_service.stub(Stub, p) for p in (alice_p, bob_p, root_p))
    kind = f"kind-{uuid.uuid4().hex[:6]}"
    private = pb.CreateContextRequest(name="a", type=kind, shared_with=["service:nobody"])
    a = (await alice.CreateContext(private)).context
    b = (await bob.CreateContext(pb.CreateContextRequest(name="b", type=kind))).context
    listed = await root.ListContexts(pb.ListContextsRequest(type=kind))
    assert {c.context_id: c.organization_id for c in listed.contexts} == {
        a.context_id: alice_p.organization, b.context_id: bob_p.organization}
    assert (await root.GetAnalyticsSummary(pb.GetAnalyticsSummaryRequest())).contexts_by_type[kind] == 2
    # A layer a platform admin adds is the context's organization's; what it creates is its own's.
    added = await root.AddLayer(pb.AddLayerRequest(context_id=a.context_id, name="by-root", layer_type="t"))
    assert added.layer.organization_id == alice_p.organization
    mine = (await root.CreateContext(pb.CreateContextRequest(name="r", type=kind))).context
    assert mine.organization_id == root_p.organization
    assert (await root.DeleteContext(pb.DeleteContextRequest(context_id=a.context_id))).deleted_layers == 1


async def test_the_organization_is_output_only(context_service: InProcess[ContextDeps]) -> None:
    alice_p, _, _ = _orgs()
    alice = context_service.stub(Stub, alice_p)
    ctx = (await alice.CreateContext(pb.CreateContextRequest(name="a", type="t"))).context
    mask = field_mask_pb2.FieldMask(paths=["organization_id"])
    error = await async_failure(alice.UpdateContext, pb.UpdateContextRequest(context_id=ctx.context_id,
                                                                             update_mask=mask))
    assert bad_fields(error) == {"update_mask.paths[0]"}
    layer = (await alice.AddLayer(pb.AddLayerRequest(context_id=ctx.context_id, name="l", layer_type="t"))).layer
    error = await async_failure(alice.UpdateLayer, pb.UpdateLayerRequest(
        context_id=ctx.context_id, layer_id=layer.layer_id, update_mask=mask))
    assert bad_fields(error) == {"update_mask.paths[0]"}
    assert all("organization_id" not in m.fields_by_name for m in pb.DESCRIPTOR.message_types_by_name.values())


async def test_events_carry_the_organization(context_service: InProcess[ContextDeps]) -> None:
    alice_p, _, _ = _orgs()
    alice = context_service.stub(Stub, alice_p)
    ctx = (await alice.CreateContext(pb.CreateContextRequest(name="evented", type="t"))).context
    await alice.AddLayer(pb.AddLayerRequest(context_id=ctx.context_id, name="l", layer_type="t"))
    await alice.DeleteContext(pb.DeleteContextRequest(context_id=ctx.context_id))
    assert context_service.database_url
    async with await psycopg.AsyncConnection.connect(context_service.database_url) as conn:
        cur = await conn.execute("SELECT event_type, envelope FROM context.outbox WHERE event_type LIKE"
                                 " 'protomesh.context.%%' ORDER BY seq")
        envelopes = [envelope_pb2.Envelope.FromString(raw) for _, raw in await cur.fetchall()]
    mine = [e for e in envelopes if e.subject.startswith(f"contexts/{ctx.context_id}")]
    assert [e.type.rsplit(".", 1)[1] for e in mine] == ["ContextCreated", "LayerAdded", "ContextDeleted"]
    for envelope in mine:
        assert envelope.organization_id == alice_p.organization
        assert headers_for(envelope)[ORGANIZATION_HEADER] == alice_p.organization
