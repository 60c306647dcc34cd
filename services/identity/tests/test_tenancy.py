"""Tenancy of the identity service, in process over a real channel: an admin of organization B never sees
organization A's members, users, API keys or OAuth clients (NOT_FOUND by id, absent from lists), a platform
admin sees them all, and nobody grants a role or an API-key scope beyond its own permissions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import grpc
import pytest

from chassis import Principal
from chassis.testing import TEST_PLATFORM_ADMIN, InProcess
from protomesh.identity.v1 import api_key_service_pb2 as key_pb
from protomesh.identity.v1 import client_service_pb2 as client_pb
from protomesh.identity.v1 import identity_pb2
from protomesh.identity.v1 import organization_service_pb2 as org_pb
from protomesh.identity.v1 import user_service_pb2 as user_pb
from protomesh.identity.v1.api_key_service_pb2_grpc import ApiKeyServiceStub
from protomesh.identity.v1.client_service_pb2_grpc import ClientServiceStub
from protomesh.identity.v1.organization_service_pb2_grpc import OrganizationServiceStub
from protomesh.identity.v1.user_service_pb2_grpc import UserServiceStub
from services.identity.deps import IdentityDeps

_ROLES = {"owner": identity_pb2.ROLE_OWNER, "admin": identity_pb2.ROLE_ADMIN,
          "member": identity_pb2.ROLE_MEMBER, "viewer": identity_pb2.ROLE_VIEWER}


@dataclass(frozen=True)
class Org:
    """An organization with a user of each role, signed in to it."""

    organization_id: str
    users: dict[str, str]
    """role -> user id"""

    def principal(self, role: str) -> Principal:
        return Principal(subject=self.users[role], kind="user", organization=self.organization_id,
                         roles=frozenset({role}))


async def _org(identity: InProcess[IdentityDeps], tag: str) -> Org:
    """An organization (by the platform admin) with an owner, an admin, a member and a viewer."""
    orgs = identity.stub(OrganizationServiceStub, principal=TEST_PLATFORM_ADMIN)
    users = identity.stub(UserServiceStub, principal=TEST_PLATFORM_ADMIN)
    org_id = (await orgs.CreateOrganization(org_pb.CreateOrganizationRequest(
        name=f"{tag}-{uuid.uuid4().hex[:8]}"))).organization.organization_id
    ids: dict[str, str] = {}
    for role, number in _ROLES.items():
        user = (await users.CreateUser(user_pb.CreateUserRequest(
            email=f"{tag}-{role}-{uuid.uuid4().hex[:8]}@example.com", display_name=f"{tag} {role}",
            # pragma: allowlist nextline secret - fake credential, test input
            password="a long enough password"))).user
        await orgs.AddMember(org_pb.AddMemberRequest(organization_id=org_id, user_id=user.user_id, role=number))
        ids[role] = user.user_id
    return Org(org_id, ids)


@pytest.fixture(scope="module")
async def two(identity: InProcess[IdentityDeps]) -> tuple[Org, Org]:
    return await _org(identity, "tenant-a"), await _org(identity, "tenant-b")


async def _code(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


NOT_FOUND = grpc.StatusCode.NOT_FOUND


async def test_another_organizations_members_and_users_are_unknown(identity: InProcess[IdentityDeps],
                                                                    two: tuple[Org, Org]) -> None:
    a, b = two
    orgs = identity.stub(OrganizationServiceStub, principal=b.principal("admin"))
    users = identity.stub(UserServiceStub, principal=b.principal("admin"))
    a_member = a.users["member"]
    assert await _code(orgs.GetOrganization(org_pb.GetOrganizationRequest(organization_id=a.organization_id))) \
        == NOT_FOUND
    assert await _code(orgs.ListMembers(org_pb.ListMembersRequest(organization_id=a.organization_id))) == NOT_FOUND
    assert await _code(orgs.AddMember(org_pb.AddMemberRequest(
        organization_id=a.organization_id, user_id=b.users["member"], role=identity_pb2.ROLE_MEMBER))) == NOT_FOUND
    assert await _code(orgs.ChangeMemberRole(org_pb.ChangeMemberRoleRequest(
        organization_id=a.organization_id, user_id=a_member, role=identity_pb2.ROLE_VIEWER))) == NOT_FOUND
    assert await _code(orgs.RemoveMember(org_pb.RemoveMemberRequest(
        organization_id=a.organization_id, user_id=a_member))) == NOT_FOUND
    assert await _code(orgs.InviteMember(org_pb.InviteMemberRequest(
        organization_id=a.organization_id, email="x@example.com", role=identity_pb2.ROLE_VIEWER))) == NOT_FOUND
    assert await _code(users.GetUser(user_pb.GetUserRequest(user_id=a_member))) == NOT_FOUND
    assert await _code(users.ListUsers(user_pb.ListUsersRequest(organization_id=a.organization_id))) == NOT_FOUND
    listed = await users.ListUsers(user_pb.ListUsersRequest(page_size=1000))
    assert {u.user_id for u in listed.users} == set(b.users.values())
    listed_orgs = await orgs.ListOrganizations(org_pb.ListOrganizationsRequest())
    assert [o.organization_id for o in listed_orgs.organizations] == [b.organization_id]
    # A's membership is untouched, and B's admin manages B.
    platform = identity.stub(OrganizationServiceStub, principal=TEST_PLATFORM_ADMIN)
    members = await platform.ListMembers(org_pb.ListMembersRequest(organization_id=a.organization_id))
    assert {m.user_id: m.role for m in members.members}[a_member] == identity_pb2.ROLE_MEMBER
    own = await orgs.ListMembers(org_pb.ListMembersRequest(organization_id=b.organization_id))
    assert {m.user_id for m in own.members} == set(b.users.values())
    # Renaming or re-passwording someone else is NOT_FOUND too, even inside the same organization.
    assert await _code(users.UpdateUser(user_pb.UpdateUserRequest(user_id=b.users["member"],
                                                                  display_name="renamed"))) == NOT_FOUND
    mine = await users.UpdateUser(user_pb.UpdateUserRequest(user_id=b.users["admin"], display_name="B's admin"))
    assert mine.user.display_name == "B's admin"


async def test_another_organizations_api_keys_are_unknown(identity: InProcess[IdentityDeps],
                                                          two: tuple[Org, Org]) -> None:
    a, b = two
    a_keys = identity.stub(ApiKeyServiceStub, principal=a.principal("admin"))
    created = await a_keys.CreateApiKey(key_pb.CreateApiKeyRequest(name="a's key", scopes=["agents.read"]))
    assert created.api_key.organization_id == a.organization_id
    key_id = created.api_key.api_key_id
    b_keys = identity.stub(ApiKeyServiceStub, principal=b.principal("admin"))
    assert await _code(b_keys.GetApiKey(key_pb.GetApiKeyRequest(api_key_id=key_id))) == NOT_FOUND
    assert await _code(b_keys.RotateApiKey(key_pb.RotateApiKeyRequest(api_key_id=key_id))) == NOT_FOUND
    assert await _code(b_keys.RevokeApiKey(key_pb.RevokeApiKeyRequest(api_key_id=key_id))) == NOT_FOUND
    assert await _code(b_keys.ListApiKeys(key_pb.ListApiKeysRequest(organization_id=a.organization_id))) == NOT_FOUND
    assert await _code(b_keys.CreateApiKey(key_pb.CreateApiKeyRequest(
        organization_id=a.organization_id, name="planted", scopes=["agents.read"]))) == NOT_FOUND
    assert key_id not in {k.api_key_id for k in (await b_keys.ListApiKeys(key_pb.ListApiKeysRequest())).api_keys}
    # Still active, and seen by its organization and by a platform admin.
    assert (await a_keys.GetApiKey(key_pb.GetApiKeyRequest(api_key_id=key_id))).api_key.status == \
        identity_pb2.API_KEY_STATUS_ACTIVE
    platform = identity.stub(ApiKeyServiceStub, principal=TEST_PLATFORM_ADMIN)
    assert (await platform.GetApiKey(key_pb.GetApiKeyRequest(api_key_id=key_id))).api_key.api_key_id == key_id


async def test_another_organizations_clients_are_unknown(identity: InProcess[IdentityDeps],
                                                         two: tuple[Org, Org]) -> None:
    a, b = two
    a_clients = identity.stub(ClientServiceStub, principal=a.principal("admin"))
    registered = await a_clients.RegisterClient(client_pb.RegisterClientRequest(
        name="a's worker", grant_types=["client_credentials"], scopes=["mesh"], roles=[identity_pb2.ROLE_MEMBER]))
    client = registered.client
    assert client.organization_id == a.organization_id
    b_clients = identity.stub(ClientServiceStub, principal=b.principal("admin"))
    assert await _code(b_clients.GetClient(client_pb.GetClientRequest(client_id=client.client_id))) == NOT_FOUND
    assert await _code(b_clients.DisableClient(client_pb.DisableClientRequest(client_id=client.client_id))) \
        == NOT_FOUND
    assert await _code(b_clients.ListClients(client_pb.ListClientsRequest(
        organization_id=a.organization_id))) == NOT_FOUND
    listed = await b_clients.ListClients(client_pb.ListClientsRequest(include_disabled=True))
    assert client.client_id not in {c.client_id for c in listed.clients}
    assert not (await a_clients.GetClient(client_pb.GetClientRequest(client_id=client.client_id))).client.disabled
    platform = identity.stub(ClientServiceStub, principal=TEST_PLATFORM_ADMIN)
    everyone = await platform.ListClients(client_pb.ListClientsRequest(page_size=1000))
    assert client.client_id in {c.client_id for c in everyone.clients}


async def test_api_key_scopes_are_permissions_the_creator_holds(identity: InProcess[IdentityDeps],
                                                                two: tuple[Org, Org]) -> None:
    a, _ = two
    as_admin = identity.stub(ApiKeyServiceStub, principal=a.principal("admin"))
    made = await as_admin.CreateApiKey(key_pb.CreateApiKeyRequest(name="ok", scopes=["audit.read", "agents.write"]))
    assert list(made.api_key.scopes) == ["audit.read", "agents.write"]
    for scope, code in (("organizations.write", grpc.StatusCode.PERMISSION_DENIED),  # the owner's, not an admin's
                        ("keys.rotate", grpc.StatusCode.INVALID_ARGUMENT),  # platform-only: never a key's
                        ("agents:read", grpc.StatusCode.INVALID_ARGUMENT),  # not a permission name
                        ("openid", grpc.StatusCode.INVALID_ARGUMENT)):
        got = await _code(as_admin.CreateApiKey(key_pb.CreateApiKeyRequest(name="too much", scopes=[scope])))
        assert got == code, (scope, got)
    as_owner = identity.stub(ApiKeyServiceStub, principal=a.principal("owner"))
    assert await _code(as_owner.CreateApiKey(key_pb.CreateApiKeyRequest(
        name="owner's", scopes=["organizations.write"]))) == grpc.StatusCode.OK
    # A key holding apikeys.write mints keys within its own scopes only.
    narrow = Principal(subject=f"apikey:{uuid.uuid4()}", kind="api_key", organization=a.organization_id,
                       scopes=frozenset({"apikeys.write", "agents.read"}))
    as_key = identity.stub(ApiKeyServiceStub, principal=narrow)
    assert await _code(as_key.CreateApiKey(key_pb.CreateApiKeyRequest(name="k", scopes=["agents.read"]))) \
        == grpc.StatusCode.OK
    assert await _code(as_key.CreateApiKey(key_pb.CreateApiKeyRequest(name="k", scopes=["agents.write"]))) \
        == grpc.StatusCode.PERMISSION_DENIED
    assert await _code(as_key.RotateApiKey(key_pb.RotateApiKeyRequest(api_key_id=made.api_key.api_key_id))) \
        == grpc.StatusCode.PERMISSION_DENIED  # its successor would carry audit.read and agents.write


async def test_roles_are_granted_up_to_the_callers_own(identity: InProcess[IdentityDeps],
                                                       two: tuple[Org, Org]) -> None:
    a, _ = two
    admin = identity.stub(OrganizationServiceStub, principal=a.principal("admin"))
    newcomer = (await identity.stub(UserServiceStub, principal=TEST_PLATFORM_ADMIN).CreateUser(
        user_pb.CreateUserRequest(email=f"new-{uuid.uuid4().hex[:8]}@example.com", display_name="New",
            # pragma: allowlist nextline secret - fake credential, test input
                                  password="a long enough password"))).user.user_id
    assert await _code(admin.AddMember(org_pb.AddMemberRequest(
        organization_id=a.organization_id, user_id=newcomer, role=identity_pb2.ROLE_OWNER))) \
        == grpc.StatusCode.PERMISSION_DENIED
    assert await _code(admin.ChangeMemberRole(org_pb.ChangeMemberRoleRequest(
        organization_id=a.organization_id, user_id=a.users["owner"], role=identity_pb2.ROLE_VIEWER))) \
        == grpc.StatusCode.PERMISSION_DENIED  # an admin does not demote an owner
    assert await _code(admin.RemoveMember(org_pb.RemoveMemberRequest(
        organization_id=a.organization_id, user_id=a.users["owner"]))) == grpc.StatusCode.PERMISSION_DENIED
    added = await admin.AddMember(org_pb.AddMemberRequest(organization_id=a.organization_id, user_id=newcomer,
                                                          role=identity_pb2.ROLE_ADMIN))
    assert added.membership.role == identity_pb2.ROLE_ADMIN
    clients = identity.stub(ClientServiceStub, principal=a.principal("admin"))
    assert await _code(clients.RegisterClient(client_pb.RegisterClientRequest(
        name="too strong", grant_types=["client_credentials"], roles=[identity_pb2.ROLE_OWNER]))) \
        == grpc.StatusCode.PERMISSION_DENIED
