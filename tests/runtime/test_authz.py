"""chassis.authz: roles to permissions from the contracts, the per-call check in the interceptor, the tenant.

The enforcement is exercised over real channels to the agent service served in process (real PostgreSQL
and NATS): what the interceptor refuses never reaches the servicer, whatever the request says.
"""

from __future__ import annotations

import importlib
import uuid

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.rpc import error_details_pb2

import chassis
from chassis import authz
from chassis.identity import Principal, Unauthenticated, acting_as, reset_principal, service_principal, set_principal
from chassis.testing import TEST_ORGANIZATION, TEST_PLATFORM_ADMIN, TEST_PRINCIPAL, InProcess, principal_with_role
from protomesh.agent.v1 import agent_service_pb2 as agent_pb
from protomesh.agent.v1.agent_service_pb2_grpc import AgentServiceStub
from services.agent.deps import AgentDeps
from tests.support.errors import async_failure, status_of
from tests.support.inprocess import in_process_service

agent = in_process_service("services.agent", env={"AGENT_WORKERS": "1"}, scope="module")


def _error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    for detail in status_of(error).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError(f"no ErrorInfo in {error}")


# --- permissions ---------------------------------------------------------------------------------


def test_each_role_holds_its_own_permissions_and_those_below_it() -> None:
    viewer, member = authz.role_permissions("viewer"), authz.role_permissions("member")
    admin, owner = authz.role_permissions("admin"), authz.role_permissions("owner")
    assert "agents.read" in viewer and "agents.write" not in viewer
    assert viewer < member and {"agents.execute", "integrations.invoke"} <= member
    assert member < admin and {"members.write", "apikeys.write", "audit.read"} <= admin
    assert admin < owner and "organizations.write" in owner
    assert not owner & authz.PLATFORM_PERMISSIONS
    assert authz.role_permissions("no-such-role") == frozenset()


def test_a_principal_holds_its_roles_permissions_and_a_platform_admin_every_one() -> None:
    assert authz.permissions_of(principal_with_role("viewer")) == authz.role_permissions("viewer")
    two_roles = Principal(subject="u", roles=frozenset({"viewer", "member"}), organization="o")
    assert authz.permissions_of(two_roles) == authz.role_permissions("member")
    assert authz.permissions_of(Principal(subject="nobody")) == frozenset()
    assert authz.permissions_of(TEST_PLATFORM_ADMIN) == authz.all_permissions()
    assert authz.permissions_of(TEST_PLATFORM_ADMIN) >= authz.PLATFORM_PERMISSIONS
    # A service account (client credentials): its registered roles.
    account = Principal(subject="client:ci", kind="service", organization="o", roles=frozenset({"viewer"}))
    assert authz.permissions_of(account) == authz.role_permissions("viewer")


def test_an_api_key_holds_the_permissions_its_scopes_name_and_never_a_platform_one() -> None:
    key = Principal(subject="apikey:1", kind="api_key", organization="o",
                    scopes=frozenset({"agents.read", "agents.execute", "keys.rotate", "users.write", "no.such"}))
    assert authz.permissions_of(key) == {"agents.read", "agents.execute"}
    # `mesh`, what keys were given before permissions existed, stands for the member role.
    legacy = Principal(subject="apikey:2", kind="api_key", organization="o", scopes=frozenset({"mesh"}))
    assert authz.permissions_of(legacy) == authz.role_permissions("member")
    # Roles on a key's claims are not its permissions: only its scopes are.
    forged = Principal(subject="apikey:3", kind="api_key", organization="o", roles=frozenset({"owner"}))
    assert authz.permissions_of(forged) == frozenset()


def test_a_mesh_service_is_a_member_of_the_organization_it_acts_for() -> None:
    own = service_principal("notification")
    assert authz.permissions_of(own) == authz.role_permissions("member")
    with acting_as(own):
        assert chassis.tenant() == chassis.Tenant(organization=None, subject="service:notification", cross_org=False)
        with chassis.acting_for("org-a") as principal:
            assert principal.organization == "org-a" and principal.subject == "service:notification"
            assert chassis.tenant() == chassis.Tenant(organization="org-a", subject="service:notification",
                                                      cross_org=False)
            assert chassis.current_principal() == principal
        assert chassis.tenant().organization is None
    # A user's call cannot switch organization.
    with acting_as(TEST_PRINCIPAL), pytest.raises(RuntimeError), chassis.acting_for("org-a"):
        pass


def test_the_tenant_is_the_principals_organization_and_only_a_platform_admin_crosses() -> None:
    with acting_as(TEST_PRINCIPAL):
        assert chassis.tenant() == chassis.Tenant(TEST_ORGANIZATION, TEST_PRINCIPAL.subject, cross_org=False)
    with acting_as(TEST_PLATFORM_ADMIN):
        assert chassis.tenant().cross_org
    token = set_principal(None)
    try:
        with pytest.raises(Unauthenticated):
            chassis.tenant()
    finally:
        reset_principal(token)


# --- output-only request fields ------------------------------------------------------------------


def _synthetic_method() -> tuple[descriptor_pool.DescriptorPool, str]:
    """A contract with a write embedding the object it writes, which carries organization_id and owner."""
    file = descriptor_pb2.FileDescriptorProto(name="authz_test/v1/thing.proto", package="authz_test.v1",
                                              syntax="proto3")
    thing = file.message_type.add(name="Thing")
    for number, name in enumerate(("name", "organization_id", "owner"), start=1):
        thing.field.add(name=name, number=number, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    request = file.message_type.add(name="UpdateThingRequest")
    request.field.add(name="thing", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                      type_name=".authz_test.v1.Thing", label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    request.field.add(name="created_by", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                      label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    request.field.add(name="organization_id", number=3, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                      label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    service = file.service.add(name="ThingService")
    service.method.add(name="UpdateThing", input_type=".authz_test.v1.UpdateThingRequest",
                       output_type=".authz_test.v1.Thing")
    service.method.add(name="ListThings", input_type=".authz_test.v1.UpdateThingRequest",
                       output_type=".authz_test.v1.Thing",
                       options=descriptor_pb2.MethodOptions(idempotency_level=descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return pool, "authz_test.v1.ThingService"


def test_a_write_setting_the_organization_or_owner_of_its_object_is_refused_naming_the_field() -> None:
    pool, service = _synthetic_method()
    update = pool.FindMethodByName(f"{service}.UpdateThing")
    paths = authz.output_only_paths(update)
    # The top-level organization_id selects where the call acts (identity's RPCs); the object's is output only.
    assert set(paths) == {("thing", "organization_id"), ("thing", "owner"), ("created_by",)}
    assert authz.output_only_paths(pool.FindMethodByName(f"{service}.ListThings")) == ()  # reads may filter
    request_class = message_factory.GetMessageClass(update.input_type)
    rule = authz.MethodRule(permission="things.write", output_only=paths)
    clean = request_class(organization_id="org-a", thing={"name": "renamed"})
    authz.check_request(rule, clean)
    assert authz.set_output_only(rule, clean) == []
    dirty = request_class(created_by="mallory", thing={"organization_id": "org-b"})
    assert sorted(authz.set_output_only(rule, dirty)) == ["created_by", "thing.organization_id"]
    with pytest.raises(chassis.errors.InvalidArgument) as refused:
        authz.check_request(rule, dirty)
    assert {v.field for v in refused.value.violations} == {"created_by", "thing.organization_id"}


def test_no_write_request_of_the_contracts_can_carry_an_organization_or_owner() -> None:
    # docs/authorization.md: organization_id and owner are OUTPUT_ONLY on the resource messages and absent
    # from every create/update request (an update_mask naming them is refused by the mask's own check);
    # the rule above guards a request that would embed its object or declare such a field.
    importlib.import_module("protomesh.integration.v1.integration_service_pb2")  # fills the default pool
    importlib.import_module("protomesh.notification.v1.notification_service_pb2")
    for path in ("/protomesh.agent.v1.AgentService/RegisterAgent", "/protomesh.agent.v1.AgentService/UpdateAgent",
                 "/protomesh.context.v1.ContextService/CreateContext",
                 "/protomesh.context.v1.ContextService/UpdateContext",
                 "/protomesh.integration.v1.IntegrationService/UpdateIntegration",
                 "/protomesh.notification.v1.NotificationService/CreateSubscription"):
        assert authz.method_rule(path).output_only == (), path


# --- enforcement, over real channels -------------------------------------------------------------


async def test_a_viewer_reads_but_cannot_write_and_the_denial_names_the_permission(agent: InProcess[AgentDeps]) -> None:
    viewer = agent.stub(AgentServiceStub, principal=principal_with_role("viewer"))
    await viewer.ListAgents(agent_pb.ListAgentsRequest(), timeout=10)
    denied = await async_failure(viewer.RegisterAgent, agent_pb.RegisterAgentRequest(name="v", type="calculator"))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "agents.write" in (denied.details() or "")
    info = _error_info(denied)
    assert info.reason == "ERROR_REASON_PERMISSION_DENIED"
    assert dict(info.metadata) == {"permission": "agents.write", "organization": TEST_ORGANIZATION}


async def test_authorization_comes_before_validation(agent: InProcess[AgentDeps]) -> None:
    # An invalid request from a caller without the permission learns nothing about the request's rules.
    viewer = agent.stub(AgentServiceStub, principal=principal_with_role("viewer"))
    denied = await async_failure(viewer.RegisterAgent, agent_pb.RegisterAgentRequest(type="no-such-type"))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    anonymous = agent.stub(AgentServiceStub, principal=None)
    refused = await async_failure(anonymous.RegisterAgent, agent_pb.RegisterAgentRequest(type="no-such-type"))
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_member_writes_and_executes(agent: InProcess[AgentDeps]) -> None:
    member = agent.stub(AgentServiceStub, principal=principal_with_role("member"))
    registered = await member.RegisterAgent(agent_pb.RegisterAgentRequest(name=f"m-{uuid.uuid4().hex[:6]}",
                                                                          type="calculator"), timeout=10)
    request = agent_pb.ExecuteAgentRequest(agent_id=registered.agent.agent_id)
    request.input.update({"expression": "6 * 7"})
    executed = await member.ExecuteAgent(request, timeout=10)
    assert executed.execution.execution_id


async def test_an_api_key_may_do_what_its_scopes_name_and_nothing_else(agent: InProcess[AgentDeps]) -> None:
    key = Principal(subject="apikey:read-only", kind="api_key", organization=TEST_ORGANIZATION,
                    scopes=frozenset({"agents.read"}), api_key_id="read-only")
    stub = agent.stub(AgentServiceStub, principal=key)
    await stub.ListAgentTypes(agent_pb.ListAgentTypesRequest(), timeout=10)
    denied = await async_failure(stub.ExecuteAgent, agent_pb.ExecuteAgentRequest(agent_id=str(uuid.uuid4())))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED and _error_info(denied).metadata["permission"] \
        == "agents.execute"


async def test_authenticated_and_public_methods(agent: InProcess[AgentDeps]) -> None:
    nobody = Principal(subject="user-without-roles", organization="org-elsewhere")
    info = await agent.stub(AgentServiceStub, principal=nobody).GetInfo(agent_pb.GetInfoRequest(), timeout=10)
    assert info.info.name == "agent"  # GetInfo: any verified principal
    await agent.stub(AgentServiceStub, principal=None).GetHealth(agent_pb.GetHealthRequest(), timeout=10)
    refused = await async_failure(agent.stub(AgentServiceStub, principal=None).GetInfo, agent_pb.GetInfoRequest())
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_platform_admin_without_an_organization_may_call_anything(agent: InProcess[AgentDeps]) -> None:
    admin = Principal(subject=str(uuid.uuid4()), kind="user", platform_admin=True)
    await agent.stub(AgentServiceStub, principal=admin).ListAgents(agent_pb.ListAgentsRequest(), timeout=10)

