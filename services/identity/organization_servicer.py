"""OrganizationService: organizations, memberships and invitations.

Tenancy (services.identity.tenancy): a caller reads and manages its own organization only (a platform admin
any); another organization is NOT_FOUND. A role given to a member (added, invited or changed) never holds a
permission the caller lacks, and a member whose role does exceed the caller's (an owner, for an admin) is
not demoted or removed by it.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

import grpc

from chassis import Replica
from chassis.errors import FailedPrecondition, NotFound
from chassis.idempotency import idempotent
from chassis.resources import Key, Keyset, found, resource_id
from protomesh.identity.v1 import identity_pb2, organization_service_pb2_grpc
from protomesh.identity.v1 import organization_service_pb2 as pb
from services.identity import callers, tenancy
from services.identity.deps import IdentityDeps
from services.identity.messages import invitation_message, membership_message, organization_message, role_name
from services.identity.rows import UserRow
from services.identity.user_servicer import normalise_email

logger = logging.getLogger(__name__)

_ORGANIZATIONS = Keyset("organizations", (Key("created_at", datetime), Key("id", uuid.UUID)))
_MEMBERS = Keyset("members", (Key("created_at", datetime), Key("user_id", uuid.UUID)))
_INVITATIONS = Keyset.newest_first("invitations")
_INVITATION_STATUS = {identity_pb2.INVITATION_STATUS_PENDING: "pending",
                      identity_pb2.INVITATION_STATUS_ACCEPTED: "accepted",
                      identity_pb2.INVITATION_STATUS_CANCELLED: "cancelled",
                      identity_pb2.INVITATION_STATUS_EXPIRED: "expired"}


class OrganizationServicer(organization_service_pb2_grpc.OrganizationServiceServicer):
    """Implements protomesh.identity.v1.OrganizationService over PostgreSQL."""

    def __init__(self, replica: Replica, deps: IdentityDeps) -> None:
        self._replica = replica
        self._orgs = deps.organizations
        self._users = deps.users
        self._invitation_ttl = deps.settings.invitation_ttl

    async def _org_id(self, organization_id: str) -> uuid.UUID:
        """The id of the caller's organization, as named (400 when malformed, 404 when unknown or another's)."""
        parsed = tenancy.own_organization(organization_id)
        found(await self._orgs.get(parsed), "organization", organization_id)
        return parsed

    async def _touchable(self, org_id: uuid.UUID, user_id: uuid.UUID, member: str) -> None:
        """Refuse changing a member whose current role holds more than the caller (an admin and an owner)."""
        current = await self._orgs.member(org_id, user_id)
        if current is None:
            raise NotFound("member", member)
        tenancy.check_roles_grantable([current.role], field="user_id")

    async def _user(self, user_id: str) -> UserRow:
        return found(await self._users.get(resource_id("user", user_id, field="user_id")), "user", user_id)

    async def _calling_user(self) -> UserRow | None:
        user_id = callers.calling_user_id()
        return await self._users.get(user_id) if user_id else None

    async def ListOrganizations(self, request: pb.ListOrganizationsRequest,
                                context: grpc.aio.ServicerContext) -> pb.ListOrganizationsResponse:
        user_id = resource_id("user", request.user_id, field="user_id") if request.user_id else None
        only = tenancy.organization_filter()
        caller = callers.calling_user_id()
        if only is not None and caller is not None:
            # A user lists the organizations it belongs to (to choose the one to sign in to), nobody else's.
            if user_id is not None and user_id != caller:
                raise NotFound("user", request.user_id)
            user_id, only = caller, None
        page = _ORGANIZATIONS.page(request, {"user_id": request.user_id})
        result = await self._orgs.list_organizations(user_id, page, only=only)
        return pb.ListOrganizationsResponse(organizations=[organization_message(r) for r in result.items],
                                            page_info=result.page_info())

    @idempotent(pb.CreateOrganizationResponse)
    async def CreateOrganization(self, request: pb.CreateOrganizationRequest,
                                 context: grpc.aio.ServicerContext) -> pb.CreateOrganizationResponse:
        org, owner = await self._orgs.create(name=request.name, display_name=request.display_name or request.name,
                                             created_by=callers.actor(), owner=await self._calling_user())
        logger.info("organization created", extra={"organization_id": str(org.id)})
        return pb.CreateOrganizationResponse(organization=organization_message(org),
                                             owner=membership_message(owner) if owner else None)

    async def GetOrganization(self, request: pb.GetOrganizationRequest,
                              context: grpc.aio.ServicerContext) -> pb.GetOrganizationResponse:
        org_id = tenancy.own_organization(request.organization_id)
        org = found(await self._orgs.get(org_id), "organization", request.organization_id)
        return pb.GetOrganizationResponse(organization=organization_message(org))

    async def ListMembers(self, request: pb.ListMembersRequest,
                          context: grpc.aio.ServicerContext) -> pb.ListMembersResponse:
        org_id = await self._org_id(request.organization_id)
        role = role_name(request.role) if request.role else ""
        page = _MEMBERS.page(request, {"organization_id": str(org_id), "role": role})
        result = await self._orgs.members(org_id, role, page)
        return pb.ListMembersResponse(members=[membership_message(r) for r in result.items],
                                      page_info=result.page_info())

    @idempotent(pb.AddMemberResponse)
    async def AddMember(self, request: pb.AddMemberRequest, context: grpc.aio.ServicerContext) -> pb.AddMemberResponse:
        org_id = await self._org_id(request.organization_id)
        tenancy.check_roles_grantable([role_name(request.role)])
        user = await self._user(request.user_id)
        membership = await self._orgs.add_member(org_id, user, role_name(request.role), callers.actor())
        return pb.AddMemberResponse(membership=membership_message(membership))

    async def ChangeMemberRole(self, request: pb.ChangeMemberRoleRequest,
                               context: grpc.aio.ServicerContext) -> pb.ChangeMemberRoleResponse:
        org_id = await self._org_id(request.organization_id)
        user_id = resource_id("user", request.user_id, field="user_id")
        tenancy.check_roles_grantable([role_name(request.role)])
        await self._touchable(org_id, user_id, request.user_id)
        changed = await self._orgs.change_role(org_id, user_id, role_name(request.role), callers.actor())
        if changed is None:
            raise NotFound("member", request.user_id)
        return pb.ChangeMemberRoleResponse(membership=membership_message(changed))

    async def RemoveMember(self, request: pb.RemoveMemberRequest,
                           context: grpc.aio.ServicerContext) -> pb.RemoveMemberResponse:
        org_id = await self._org_id(request.organization_id)
        user_id = resource_id("user", request.user_id, field="user_id")
        await self._touchable(org_id, user_id, request.user_id)
        removed = await self._orgs.remove_member(org_id, user_id, callers.actor())
        if removed is None:
            raise NotFound("member", request.user_id)
        return pb.RemoveMemberResponse(membership=membership_message(removed))

    @idempotent(pb.InviteMemberResponse)
    async def InviteMember(self, request: pb.InviteMemberRequest,
                           context: grpc.aio.ServicerContext) -> pb.InviteMemberResponse:
        org_id = await self._org_id(request.organization_id)
        tenancy.check_roles_grantable([role_name(request.role)])
        ttl = request.ttl.ToTimedelta() if request.HasField("ttl") else self._invitation_ttl
        invitation = await self._orgs.invite(org_id, normalise_email(request.email), role_name(request.role),
                                             ttl, callers.actor())
        return pb.InviteMemberResponse(invitation=invitation_message(invitation))

    async def ListInvitations(self, request: pb.ListInvitationsRequest,
                              context: grpc.aio.ServicerContext) -> pb.ListInvitationsResponse:
        org_id = await self._org_id(request.organization_id)
        status = _INVITATION_STATUS.get(request.status, "")
        page = _INVITATIONS.page(request, {"organization_id": str(org_id), "status": status})
        result = await self._orgs.invitations(org_id, status, page)
        return pb.ListInvitationsResponse(invitations=[invitation_message(r) for r in result.items],
                                          page_info=result.page_info())

    async def AcceptInvitation(self, request: pb.AcceptInvitationRequest,
                               context: grpc.aio.ServicerContext) -> pb.AcceptInvitationResponse:
        org_id = resource_id("organization", request.organization_id, field="organization_id")
        invitation_id = resource_id("invitation", request.invitation_id, field="invitation_id")
        user = await self._calling_user()
        if user is None:
            raise FailedPrecondition("only a signed-in user accepts an invitation (call with the user's token)")
        membership, invitation = await self._orgs.accept(org_id, invitation_id, user)
        return pb.AcceptInvitationResponse(membership=membership_message(membership),
                                           invitation=invitation_message(invitation))

    async def CancelInvitation(self, request: pb.CancelInvitationRequest,
                               context: grpc.aio.ServicerContext) -> pb.CancelInvitationResponse:
        org_id = await self._org_id(request.organization_id)
        invitation_id = resource_id("invitation", request.invitation_id, field="invitation_id")
        invitation = found(await self._orgs.cancel(org_id, invitation_id), "invitation", request.invitation_id)
        return pb.CancelInvitationResponse(invitation=invitation_message(invitation))


