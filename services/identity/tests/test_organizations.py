"""OrganizationService over a real channel, in process: organizations, members, roles, invitations."""

from __future__ import annotations

import dataclasses
import uuid

import grpc
import pytest
from psycopg.rows import dict_row

from chassis import Principal
from chassis.testing import TEST_PLATFORM_ADMIN, InProcess
from protomesh.identity.v1 import identity_pb2
from protomesh.identity.v1 import organization_service_pb2 as pb
from protomesh.identity.v1 import user_service_pb2 as user_pb
from protomesh.identity.v1.organization_service_pb2_grpc import OrganizationServiceStub
from protomesh.identity.v1.user_service_pb2_grpc import UserServiceStub
from services.identity.deps import IdentityDeps
from services.identity.tests.errors import named_field


async def _user(identity: InProcess[IdentityDeps], tag: str = "m") -> identity_pb2.User:
    reply = await identity.stub(UserServiceStub, principal=TEST_PLATFORM_ADMIN).CreateUser(user_pb.CreateUserRequest(
        # pragma: allowlist nextline secret - fake credential, test input
        email=f"{tag}-{uuid.uuid4().hex[:8]}@example.com", display_name="Member", password="a long enough password"))
    return reply.user


def _as(user: identity_pb2.User, organization_id: str = "", role: str = "") -> Principal:
    """The user signed in (to `organization_id` with `role`, when given)."""
    return Principal(subject=user.user_id, kind="user", organization=organization_id,
                     roles=frozenset({role} if role else ()))


async def _org(identity: InProcess[IdentityDeps], owner: identity_pb2.User) -> pb.CreateOrganizationResponse:
    """An organization created by `owner` as a platform admin (organizations.create is platform-only)."""
    stub = identity.stub(OrganizationServiceStub, principal=dataclasses.replace(_as(owner), platform_admin=True))
    return await stub.CreateOrganization(pb.CreateOrganizationRequest(name=f"org-{uuid.uuid4().hex[:8]}"))


async def _membership_events(identity: InProcess[IdentityDeps], organization_id: str) -> list[str]:
    async with identity.replica.db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT event_type FROM outbox WHERE nats_subject LIKE %s ORDER BY seq",
                          ("%membership_changed",))
        return [r["event_type"] for r in await cur.fetchall()]


async def test_the_creating_user_becomes_owner(identity: InProcess[IdentityDeps]) -> None:
    owner = await _user(identity, "owner")
    created = await _org(identity, owner)
    assert created.owner.user_id == owner.user_id and created.owner.role == identity_pb2.ROLE_OWNER
    assert created.organization.member_count == 1
    assert created.organization.display_name == created.organization.name
    stub = identity.stub(OrganizationServiceStub, principal=TEST_PLATFORM_ADMIN)
    got = await stub.GetOrganization(pb.GetOrganizationRequest(organization_id=created.organization.organization_id))
    assert got.organization == created.organization
    mine = await stub.ListOrganizations(pb.ListOrganizationsRequest(user_id=owner.user_id))
    assert [o.organization_id for o in mine.organizations] == [created.organization.organization_id]
    assert "protomesh.identity.v1.MembershipChanged" in await _membership_events(identity, "")


async def test_a_taken_name_is_already_exists_and_a_bad_one_is_named(identity: InProcess[IdentityDeps]) -> None:
    stub = identity.stub(OrganizationServiceStub, principal=TEST_PLATFORM_ADMIN)
    name = f"taken-{uuid.uuid4().hex[:6]}"
    await stub.CreateOrganization(pb.CreateOrganizationRequest(name=name))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateOrganization(pb.CreateOrganizationRequest(name=name))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS and named_field(caught.value) == "name"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateOrganization(pb.CreateOrganizationRequest(name="Not A Slug"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "name" in (caught.value.details() or "")


async def test_add_change_role_list_and_remove_members(identity: InProcess[IdentityDeps]) -> None:
    owner, member = await _user(identity, "owner"), await _user(identity, "member")
    org_id = (await _org(identity, owner)).organization.organization_id
    stub = identity.stub(OrganizationServiceStub, principal=TEST_PLATFORM_ADMIN)
    added = await stub.AddMember(pb.AddMemberRequest(organization_id=org_id, user_id=member.user_id,
                                                     role=identity_pb2.ROLE_VIEWER))
    assert added.membership.role == identity_pb2.ROLE_VIEWER and added.membership.email == member.email
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.AddMember(pb.AddMemberRequest(organization_id=org_id, user_id=member.user_id,
                                                 role=identity_pb2.ROLE_MEMBER))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    changed = await stub.ChangeMemberRole(pb.ChangeMemberRoleRequest(organization_id=org_id, user_id=member.user_id,
                                                                     role=identity_pb2.ROLE_ADMIN))
    assert changed.membership.role == identity_pb2.ROLE_ADMIN
    members = await stub.ListMembers(pb.ListMembersRequest(organization_id=org_id))
    assert [m.user_id for m in members.members] == [owner.user_id, member.user_id]
    admins = await stub.ListMembers(pb.ListMembersRequest(organization_id=org_id, role=identity_pb2.ROLE_ADMIN))
    assert [m.user_id for m in admins.members] == [member.user_id]
    await stub.RemoveMember(pb.RemoveMemberRequest(organization_id=org_id, user_id=member.user_id))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RemoveMember(pb.RemoveMemberRequest(organization_id=org_id, user_id=member.user_id))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_last_owner_stays(identity: InProcess[IdentityDeps]) -> None:
    owner = await _user(identity, "owner")
    org_id = (await _org(identity, owner)).organization.organization_id
    stub = identity.stub(OrganizationServiceStub, principal=TEST_PLATFORM_ADMIN)
    for call in (stub.ChangeMemberRole(pb.ChangeMemberRoleRequest(organization_id=org_id, user_id=owner.user_id,
                                                                  role=identity_pb2.ROLE_MEMBER)),
                 stub.RemoveMember(pb.RemoveMemberRequest(organization_id=org_id, user_id=owner.user_id))):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    second = await _user(identity, "second")
    await stub.AddMember(pb.AddMemberRequest(organization_id=org_id, user_id=second.user_id,
                                             role=identity_pb2.ROLE_OWNER))
    await stub.RemoveMember(pb.RemoveMemberRequest(organization_id=org_id, user_id=owner.user_id))


async def test_an_invited_user_accepts_and_no_one_else_can(identity: InProcess[IdentityDeps]) -> None:
    owner, invited, other = await _user(identity, "owner"), await _user(identity, "invited"), await _user(identity)
    org_id = (await _org(identity, owner)).organization.organization_id
    stub = identity.stub(OrganizationServiceStub, principal=_as(owner, org_id, "owner"))
    invitation = (await stub.InviteMember(pb.InviteMemberRequest(
        organization_id=org_id, email=f"  {invited.email.upper()} ", role=identity_pb2.ROLE_MEMBER))).invitation
    assert invitation.email == invited.email and invitation.status == identity_pb2.INVITATION_STATUS_PENDING
    assert invitation.invited_by == owner.user_id
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.InviteMember(pb.InviteMemberRequest(organization_id=org_id, email=invited.email,
                                                       role=identity_pb2.ROLE_MEMBER))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS and named_field(caught.value) == "email"
    accept = pb.AcceptInvitationRequest(organization_id=org_id, invitation_id=invitation.invitation_id)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await identity.stub(OrganizationServiceStub, principal=_as(other)).AcceptInvitation(accept)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    accepted = await identity.stub(OrganizationServiceStub, principal=_as(invited)).AcceptInvitation(accept)
    assert accepted.membership.role == identity_pb2.ROLE_MEMBER
    assert accepted.invitation.status == identity_pb2.INVITATION_STATUS_ACCEPTED
    again = await identity.stub(OrganizationServiceStub, principal=_as(invited)).AcceptInvitation(accept)
    assert again.membership.user_id == invited.user_id  # IDEMPOTENT: a repeat answers the same membership
    listed = await stub.ListInvitations(pb.ListInvitationsRequest(
        organization_id=org_id, status=identity_pb2.INVITATION_STATUS_ACCEPTED))
    assert [i.invitation_id for i in listed.invitations] == [invitation.invitation_id]


async def test_a_cancelled_invitation_cannot_be_accepted(identity: InProcess[IdentityDeps]) -> None:
    owner, invited = await _user(identity, "owner"), await _user(identity, "invited")
    org_id = (await _org(identity, owner)).organization.organization_id
    stub = identity.stub(OrganizationServiceStub, principal=TEST_PLATFORM_ADMIN)
    invitation = (await stub.InviteMember(pb.InviteMemberRequest(organization_id=org_id, email=invited.email,
                                                                 role=identity_pb2.ROLE_VIEWER))).invitation
    cancelled = await stub.CancelInvitation(pb.CancelInvitationRequest(organization_id=org_id,
                                                                        invitation_id=invitation.invitation_id))
    assert cancelled.invitation.status == identity_pb2.INVITATION_STATUS_CANCELLED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await identity.stub(OrganizationServiceStub, principal=_as(invited)).AcceptInvitation(
            pb.AcceptInvitationRequest(organization_id=org_id, invitation_id=invitation.invitation_id))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
