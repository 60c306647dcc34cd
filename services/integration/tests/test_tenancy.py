"""Tenancy of integrations over a real channel (docs/authorization.md, Tenancy; OWASP API1 and API3).

An integration and its credentials belong to the organization of the principal that registered it. A member
of another organization gets NOT_FOUND for every call naming it by id — reads, updates, deletes, probes,
invocations, cache and breaker calls alike — and never sees it in a list, a count or a client-wide probe;
a platform admin sees every organization. Each test makes its own organizations, so counts are exact.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2
from google.protobuf.message import Message

from chassis.identity import Principal
from chassis.testing import InProcess
from protomesh.integration.v1 import integration_pb2
from protomesh.integration.v1 import integration_service_pb2 as pb
from protomesh.integration.v1.integration_service_pb2_grpc import IntegrationServiceStub
from tests.support.errors import async_failure, bad_fields

LOCAL = integration_pb2.INTEGRATION_KIND_LOCAL_STORAGE


def struct(**fields: Any) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(fields)
    return s


def admin_of(organization: str) -> Principal:
    """An organization admin: every integration permission, so what stops it is tenancy, not a role."""
    return Principal(subject=f"user-{uuid.uuid4().hex[:8]}", kind="user", organization=organization,
                     roles=frozenset({"admin"}))


def new_organization() -> str:
    return f"org-{uuid.uuid4().hex[:12]}"


PLATFORM_ADMIN = Principal(subject="user-platform", kind="user", organization=new_organization(),
                           platform_admin=True)


def stub_as(integration: InProcess[Any], principal: Principal | None) -> IntegrationServiceStub:
    return integration.stub(IntegrationServiceStub, principal=principal)


async def new_dir(stub: IntegrationServiceStub, root: Path, name: str = "") -> integration_pb2.Integration:
    reply = await stub.CreateIntegration(pb.CreateIntegrationRequest(
        name=name or f"dir-{uuid.uuid4().hex[:8]}", kind=LOCAL, config=struct(root=str(root))))
    return reply.integration


def calls_by_id(stub: IntegrationServiceStub, iid: str) -> dict[str, tuple[Any, Message]]:
    """Every RPC that names one integration, with a request the contract accepts."""
    return {
        "GetIntegration": (stub.GetIntegration, pb.GetIntegrationRequest(integration_id=iid)),
        "UpdateIntegration": (stub.UpdateIntegration, pb.UpdateIntegrationRequest(
            integration_id=iid, description="taken over", expected_version=1)),
        "DeleteIntegration": (stub.DeleteIntegration, pb.DeleteIntegrationRequest(integration_id=iid)),
        "CheckIntegrationHealth": (stub.CheckIntegrationHealth, pb.CheckIntegrationHealthRequest(integration_id=iid)),
        "GetIntegrationStatus": (stub.GetIntegrationStatus, pb.GetIntegrationStatusRequest(integration_id=iid)),
        "TestIntegration": (stub.TestIntegration, pb.TestIntegrationRequest(integration_id=iid)),
        "InvokeIntegration": (stub.InvokeIntegration, pb.InvokeIntegrationRequest(
            integration_id=iid, operation="get", parameters=struct(key="secret.txt"))),
        "GetRateLimitStatus": (stub.GetRateLimitStatus, pb.GetRateLimitStatusRequest(integration_id=iid)),
        "GetCacheStats": (stub.GetCacheStats, pb.GetCacheStatsRequest(integration_id=iid)),
        "ClearCache": (stub.ClearCache, pb.ClearCacheRequest(integration_id=iid)),
        "GetCircuitBreakerStatus": (stub.GetCircuitBreakerStatus,
                                    pb.GetCircuitBreakerStatusRequest(integration_id=iid)),
        "ResetCircuitBreaker": (stub.ResetCircuitBreaker, pb.ResetCircuitBreakerRequest(integration_id=iid)),
    }


async def test_every_rpc_naming_an_integration_is_covered() -> None:
    # async: an aio channel needs a loop, and a sync test has one only if no earlier test cleared it.
    # A new RPC taking an integration_id must join calls_by_id, or this fails: no call escapes the check below.
    service = pb.DESCRIPTOR.services_by_name["IntegrationService"]
    naming = {m.name for m in service.methods if "integration_id" in m.input_type.fields_by_name}
    assert naming == set(calls_by_id(IntegrationServiceStub(grpc.aio.insecure_channel("unused")), "x"))


async def test_another_organization_gets_not_found_for_every_call_by_id(integration: InProcess[Any],
                                                                        tmp_path: Path) -> None:
    org_a, org_b = new_organization(), new_organization()
    a, b = stub_as(integration, admin_of(org_a)), stub_as(integration, admin_of(org_b))
    mine = await new_dir(a, tmp_path / "a")
    assert mine.organization_id == org_a, "stamped with the creator's organization"
    await a.InvokeIntegration(pb.InvokeIntegrationRequest(
        integration_id=mine.integration_id, operation="put", parameters=struct(key="secret.txt", content="A's")))

    for name, (call, request) in calls_by_id(b, mine.integration_id).items():
        refused = await async_failure(call, request)
        assert refused.code() == grpc.StatusCode.NOT_FOUND, f"{name}: {refused.code()} {refused.details()}"
        assert mine.integration_id in (refused.details() or ""), f"{name} is NOT_FOUND for the integration itself"

    # Nothing B tried changed, deleted or read A's integration: A still has it as it was, file and all.
    still = (await a.GetIntegration(pb.GetIntegrationRequest(integration_id=mine.integration_id))).integration
    assert (still.version, still.description) == (1, "")
    got = await a.InvokeIntegration(pb.InvokeIntegrationRequest(
        integration_id=mine.integration_id, operation="get", parameters=struct(key="secret.txt")))
    assert got.result["content"] == "A's"


async def test_lists_counts_and_client_probes_show_only_the_callers_organization(
        integration: InProcess[Any], tmp_path: Path) -> None:
    org_a, org_b = new_organization(), new_organization()
    a, b = stub_as(integration, admin_of(org_a)), stub_as(integration, admin_of(org_b))
    name = f"shared-name-{uuid.uuid4().hex[:6]}"
    theirs = await new_dir(a, tmp_path / "a", name)
    # Names are unique per organization: B may use the name A took, and learns nothing from it.
    mine = await new_dir(b, tmp_path / "b", name.upper())

    for stub, own, other in ((a, theirs, mine), (b, mine, theirs)):
        listed = await stub.ListIntegrations(pb.ListIntegrationsRequest(page_size=100))
        assert [i.integration_id for i in listed.integrations] == [own.integration_id]
        assert listed.page_info.total_size == 1
        by_name = await stub.ListIntegrations(pb.ListIntegrationsRequest(name_contains=name))
        assert other.integration_id not in {i.integration_id for i in by_name.integrations}
        clients = await stub.ListClients(pb.ListClientsRequest())
        assert {c.client_type: c.integration_count for c in clients.clients}["local_storage"] == 1
        assert (await stub.GetInfo(pb.GetInfoRequest())).integration_count == 1
        health = (await stub.CheckClientHealth(pb.CheckClientHealthRequest(client_type="local_storage"))).health
        assert [e.name for e in health.integrations] == [own.name]
        every = await stub.CheckAllClientsHealth(pb.CheckAllClientsHealthRequest())
        assert [e.name for c in every.clients for e in c.integrations] == [own.name]
        tested = await stub.TestClient(pb.TestClientRequest(client_type="local_storage"))
        assert [r.integration_id for r in tested.results] == [own.integration_id]


async def test_a_platform_admin_sees_and_changes_every_organizations_integrations(integration: InProcess[Any],
                                                                                  tmp_path: Path) -> None:
    org_a, org_b = new_organization(), new_organization()
    made = [await new_dir(stub_as(integration, admin_of(org)), tmp_path / org) for org in (org_a, org_b)]
    platform = stub_as(integration, PLATFORM_ADMIN)
    listed = await platform.ListIntegrations(pb.ListIntegrationsRequest(page_size=1000))
    assert {i.integration_id for i in made} <= {i.integration_id for i in listed.integrations}
    for one in made:
        got = (await platform.GetIntegration(pb.GetIntegrationRequest(integration_id=one.integration_id))).integration
        assert got.organization_id == one.organization_id
    changed = (await platform.UpdateIntegration(pb.UpdateIntegrationRequest(
        integration_id=made[1].integration_id, description="fixed by the platform", expected_version=1))).integration
    assert (changed.description, changed.organization_id) == ("fixed by the platform", org_b), "it stays in B"


async def test_a_mesh_service_acts_only_within_the_organization_it_acts_for(integration: InProcess[Any],
                                                                             tmp_path: Path) -> None:
    org = new_organization()
    mine = await new_dir(stub_as(integration, admin_of(org)), tmp_path / "a")
    # What chassis.acting_for makes of the agent service running an execution of this organization.
    acting = Principal(subject="service:agent", kind="service", organization=org, roles=frozenset({"member"}),
                       scopes=frozenset({"mesh"}))
    put = pb.InvokeIntegrationRequest(integration_id=mine.integration_id, operation="put",
                                      parameters=struct(key="x.txt", content="ok"))
    assert (await stub_as(integration, acting).InvokeIntegration(put)).attempts == 1
    # The same service on its own (no organization) finds no integration at all.
    alone = Principal(subject="service:agent", kind="service", roles=frozenset({"member"}), scopes=frozenset({"mesh"}))
    refused = await async_failure(stub_as(integration, alone).InvokeIntegration, put)
    assert refused.code() == grpc.StatusCode.NOT_FOUND
    listed = await stub_as(integration, alone).ListIntegrations(pb.ListIntegrationsRequest())
    assert list(listed.integrations) == []


async def test_the_organization_is_output_only(integration: InProcess[Any], tmp_path: Path) -> None:
    org = new_organization()
    a = stub_as(integration, admin_of(org))
    mine = await new_dir(a, tmp_path / "a")
    moved = await async_failure(a.UpdateIntegration, pb.UpdateIntegrationRequest(
        integration_id=mine.integration_id, update_mask=field_mask_pb2.FieldMask(paths=["organization_id"])))
    assert moved.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(moved) == {"update_mask.paths[0]"} and "'organization_id' cannot be changed" in (
        moved.details() or "")
    got = (await a.GetIntegration(pb.GetIntegrationRequest(integration_id=mine.integration_id))).integration
    assert got.organization_id == org


@pytest.mark.parametrize("principal", [
    Principal(subject="user-platform-alone", kind="user", platform_admin=True),
], ids=["platform admin outside every organization"])
async def test_a_caller_outside_every_organization_cannot_own_an_integration(
        integration: InProcess[Any], tmp_path: Path, principal: Principal) -> None:
    refused = await async_failure(stub_as(integration, principal).CreateIntegration, pb.CreateIntegrationRequest(
        name=f"orphan-{uuid.uuid4().hex[:6]}", kind=LOCAL, config=struct(root=str(tmp_path))))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "organization" in (refused.details() or "")
