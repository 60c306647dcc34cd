"""Rows as contract messages. No secret or hash is ever copied into a message."""

from __future__ import annotations

from datetime import UTC, datetime

from chassis.protos import timestamp
from protomesh.identity.v1 import identity_pb2
from services.identity.rows import ApiKeyRow, InvitationRow, MembershipRow, OrganizationRow, UserRow

_ROLE = {"owner": identity_pb2.ROLE_OWNER, "admin": identity_pb2.ROLE_ADMIN,
         "member": identity_pb2.ROLE_MEMBER, "viewer": identity_pb2.ROLE_VIEWER}
_ROLE_NAME: dict[int, str] = {number: name for name, number in _ROLE.items()}
_USER_STATUS = {"active": identity_pb2.USER_STATUS_ACTIVE, "disabled": identity_pb2.USER_STATUS_DISABLED}
_INVITATION_STATUS = {"pending": identity_pb2.INVITATION_STATUS_PENDING,
                      "expired": identity_pb2.INVITATION_STATUS_EXPIRED,
                      "accepted": identity_pb2.INVITATION_STATUS_ACCEPTED,
                      "cancelled": identity_pb2.INVITATION_STATUS_CANCELLED}


def role_number(name: str) -> identity_pb2.Role:
    """The contract's Role of a stored role name."""
    return _ROLE.get(name, identity_pb2.ROLE_UNSPECIFIED)


def role_name(number: int) -> str:
    """The stored role name of a contract Role (the rules have refused ROLE_UNSPECIFIED)."""
    return _ROLE_NAME[number]


def user_status_name(number: int) -> str:
    """The stored status of a contract UserStatus; "" for unspecified (any)."""
    names: dict[int, str] = {v: k for k, v in _USER_STATUS.items()}
    return names.get(number, "")


def user_message(row: UserRow) -> identity_pb2.User:
    return identity_pb2.User(
        user_id=str(row.id), email=row.email, display_name=row.display_name, status=_USER_STATUS[row.status],
        platform_admin=row.platform_admin, create_time=timestamp(row.created_at),
        update_time=timestamp(row.updated_at), password_change_time=timestamp(row.password_changed_at),
    )


def organization_message(row: OrganizationRow) -> identity_pb2.Organization:
    return identity_pb2.Organization(organization_id=str(row.id), name=row.name, display_name=row.display_name,
                                     create_time=timestamp(row.created_at), member_count=row.member_count)


def membership_message(row: MembershipRow) -> identity_pb2.Membership:
    return identity_pb2.Membership(
        organization_id=str(row.organization_id), user_id=str(row.user_id), email=row.email,
        display_name=row.display_name, role=role_number(row.role), create_time=timestamp(row.created_at),
        update_time=timestamp(row.updated_at),
    )


def invitation_status(row: InvitationRow) -> identity_pb2.InvitationStatus:
    if row.status == "pending" and row.expired:
        return identity_pb2.INVITATION_STATUS_EXPIRED
    return _INVITATION_STATUS[row.status]


def invitation_message(row: InvitationRow) -> identity_pb2.Invitation:
    return identity_pb2.Invitation(
        invitation_id=str(row.id), organization_id=str(row.organization_id), email=row.email,
        role=role_number(row.role), status=invitation_status(row), invited_by=row.invited_by,
        create_time=timestamp(row.created_at), expire_time=timestamp(row.expires_at),
        close_time=timestamp(row.closed_at),
    )


def api_key_status(row: ApiKeyRow, now: datetime | None = None) -> identity_pb2.ApiKeyStatus:
    now = now or datetime.now(UTC)
    if row.revoked_at is not None:
        return identity_pb2.API_KEY_STATUS_REVOKED
    if row.expires_at is not None and row.expires_at <= now:
        return identity_pb2.API_KEY_STATUS_EXPIRED
    if row.rotated_at is not None:
        return identity_pb2.API_KEY_STATUS_ROTATED
    return identity_pb2.API_KEY_STATUS_ACTIVE


def api_key_message(row: ApiKeyRow) -> identity_pb2.ApiKey:
    return identity_pb2.ApiKey(
        api_key_id=str(row.id), organization_id=str(row.organization_id), name=row.name, prefix=row.prefix,
        scopes=row.scopes, status=api_key_status(row), created_by=row.created_by,
        create_time=timestamp(row.created_at), expire_time=timestamp(row.expires_at),
        last_used_time=timestamp(row.last_used_at), revoke_time=timestamp(row.revoked_at),
        rotated_from=str(row.rotated_from or ""), rate_limit_per_second=row.rate_limit_per_second,
        rate_limit_burst=row.rate_limit_burst,
    )
