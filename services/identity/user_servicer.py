"""UserService: users (create, read, list, rename, disable, enable, change password) and replica info.

Tenancy (services.identity.tenancy): reading and listing users shows the members of the caller's
organization only (a platform admin: everyone); renaming and changing a password touch the caller's own
account only (a platform admin: anyone's). Any other user is NOT_FOUND. Creating, disabling and enabling
accounts is the platform's (`users.write`, held only by platform admins).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

import grpc

from chassis import Replica
from chassis.errors import NotFound, PermissionDenied
from chassis.resources import Key, Keyset, UpdateMask, found, resource_id
from chassis.standard_rpcs import HealthRpcs
from protomesh.identity.v1 import identity_pb2, user_service_pb2, user_service_pb2_grpc
from services.identity import callers, tenancy
from services.identity.deps import IdentityDeps
from services.identity.messages import user_message, user_status_name
from services.identity.passwords import hash_password, verify_password
from services.identity.rows import UserRow
from services.identity.store.users import UserFilter

logger = logging.getLogger(__name__)

_MASK = UpdateMask.of(user_service_pb2.UpdateUserRequest, resource=identity_pb2.User)
_USERS = Keyset("users", (Key("created_at", datetime), Key("id", uuid.UUID)))
"""Users are listed oldest first (the order they joined)."""


def normalise_email(email: str) -> str:
    """Emails are compared and stored stripped and lower-cased."""
    return email.strip().lower()


class UserServicer(HealthRpcs, user_service_pb2_grpc.UserServiceServicer):
    """Implements protomesh.identity.v1.UserService over PostgreSQL; GetHealth and co. come from the chassis."""

    def __init__(self, replica: Replica, deps: IdentityDeps) -> None:
        self._replica = replica
        self._users = deps.users

    async def _visible(self, user_id: str) -> UserRow:
        """A user the caller may read: a member of its organization (users.read, RESOURCE_ORGANIZATION)."""
        parsed = resource_id("user", user_id, field="user_id")
        return found(await self._users.get_visible(parsed, tenancy.organization_filter()), "user", user_id)

    async def _own(self, user_id: str) -> UserRow:
        """The caller's own account (RESOURCE_OWNER), any for a platform admin; another user is NOT_FOUND."""
        parsed = resource_id("user", user_id, field="user_id")
        if not tenancy.is_self_or_platform_admin(parsed):
            raise NotFound("user", user_id)
        return found(await self._users.get(parsed), "user", user_id)

    async def ListUsers(self, request: user_service_pb2.ListUsersRequest,
                        context: grpc.aio.ServicerContext) -> user_service_pb2.ListUsersResponse:
        organization = tenancy.organization_filter()
        if request.organization_id:  # a filter within what the caller sees: another organization is unknown
            named = resource_id("organization", request.organization_id, field="organization_id")
            if organization is not None and named != organization:
                raise NotFound("organization", request.organization_id)
            organization = named
        flt = UserFilter(status=user_status_name(request.status), email_contains=request.email_contains,
                         organization_id=organization)
        result = await self._users.list_users(flt, _USERS.page(request, flt))
        return user_service_pb2.ListUsersResponse(users=[user_message(r) for r in result.items],
                                                  page_info=result.page_info())

    async def CreateUser(self, request: user_service_pb2.CreateUserRequest,
                         context: grpc.aio.ServicerContext) -> user_service_pb2.CreateUserResponse:
        # Who may create users at all is issue 12's; making someone a platform admin is refused here
        # already, because any caller could otherwise grant themselves every organization.
        if request.platform_admin and not callers.is_platform_admin():
            raise PermissionDenied("only a platform admin may create a platform admin",
                                   metadata={"field": "platform_admin"})
        row = await self._users.create(
            email=normalise_email(request.email), display_name=request.display_name,
            password_hash=await hash_password(request.password), platform_admin=request.platform_admin,
            created_by=callers.actor(),
        )
        logger.info("user created", extra={"user_id": str(row.id)})
        return user_service_pb2.CreateUserResponse(user=user_message(row))

    async def GetUser(self, request: user_service_pb2.GetUserRequest,
                      context: grpc.aio.ServicerContext) -> user_service_pb2.GetUserResponse:
        return user_service_pb2.GetUserResponse(user=user_message(await self._visible(request.user_id)))

    async def UpdateUser(self, request: user_service_pb2.UpdateUserRequest,
                         context: grpc.aio.ServicerContext) -> user_service_pb2.UpdateUserResponse:
        current = await self._own(request.user_id)
        paths = _MASK.paths(request)
        if "display_name" not in paths:
            return user_service_pb2.UpdateUserResponse(user=user_message(current))
        row = found(await self._users.rename(current.id, request.display_name), "user", request.user_id)
        return user_service_pb2.UpdateUserResponse(user=user_message(row))

    async def DisableUser(self, request: user_service_pb2.DisableUserRequest,
                          context: grpc.aio.ServicerContext) -> user_service_pb2.DisableUserResponse:
        user_id = resource_id("user", request.user_id, field="user_id")
        row = found(await self._users.set_status(user_id, "disabled", callers.actor()), "user", request.user_id)
        logger.info("user disabled", extra={"user_id": str(row.id)})
        return user_service_pb2.DisableUserResponse(user=user_message(row))

    async def EnableUser(self, request: user_service_pb2.EnableUserRequest,
                         context: grpc.aio.ServicerContext) -> user_service_pb2.EnableUserResponse:
        user_id = resource_id("user", request.user_id, field="user_id")
        row = found(await self._users.set_status(user_id, "active", callers.actor()), "user", request.user_id)
        return user_service_pb2.EnableUserResponse(user=user_message(row))

    async def ChangePassword(self, request: user_service_pb2.ChangePasswordRequest,
                             context: grpc.aio.ServicerContext) -> user_service_pb2.ChangePasswordResponse:
        current = await self._own(request.user_id)
        # The old password proves it is the user (or someone holding their password); only a platform
        # admin may set a password without it. A wrong one gets no hint beyond "wrong".
        needs_old = bool(request.old_password) or not callers.is_platform_admin()
        if needs_old and not await verify_password(current.password_hash, request.old_password):
            raise PermissionDenied("the old password is wrong", metadata={"field": "old_password"})
        row = found(await self._users.set_password(current.id, await hash_password(request.new_password),
                                                   callers.actor()), "user", request.user_id)
        logger.info("password changed", extra={"user_id": str(row.id)})
        return user_service_pb2.ChangePasswordResponse(user=user_message(row))

    async def GetInfo(self, request: user_service_pb2.GetInfoRequest,
                      context: grpc.aio.ServicerContext) -> user_service_pb2.GetInfoResponse:
        return user_service_pb2.GetInfoResponse(info=self._replica.service_info())
