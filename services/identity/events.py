"""The identity service's domain events, built from the rows they describe (published through the outbox).

None carries a secret: no password, hash, API key or key hash.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from google.protobuf.message import Message

from chassis.protos import timestamp
from protomesh.identity.v1 import events_pb2, identity_pb2
from services.identity.messages import role_number
from services.identity.rows import ApiKeyRow, OrganizationRow, UserRow

SOURCE = "identity"


def user_subject(user_id: uuid.UUID) -> str:
    return f"users/{user_id}"


def organization_subject(organization_id: uuid.UUID) -> str:
    return f"organizations/{organization_id}"


def api_key_subject(api_key_id: uuid.UUID) -> str:
    return f"apikeys/{api_key_id}"


def user_created(row: UserRow) -> Message:
    return events_pb2.UserCreated(user_id=str(row.id), email=row.email, display_name=row.display_name,
                                  platform_admin=row.platform_admin, created_by=row.created_by,
                                  create_time=timestamp(row.created_at))


def user_disabled(row: UserRow, by: str) -> Message:
    return events_pb2.UserDisabled(user_id=str(row.id), email=row.email, disabled_by=by,
                                   disable_time=timestamp(row.updated_at))


def user_enabled(row: UserRow, by: str) -> Message:
    return events_pb2.UserEnabled(user_id=str(row.id), email=row.email, enabled_by=by,
                                  enable_time=timestamp(row.updated_at))


def password_changed(row: UserRow, by: str) -> Message:
    return events_pb2.PasswordChanged(user_id=str(row.id), email=row.email, changed_by=by,
                                      change_time=timestamp(row.password_changed_at))


def organization_created(row: OrganizationRow) -> Message:
    return events_pb2.OrganizationCreated(organization_id=str(row.id), name=row.name,
                                          display_name=row.display_name, created_by=row.created_by,
                                          create_time=timestamp(row.created_at))


def membership_changed(*, organization_id: uuid.UUID, user_id: uuid.UUID | None, email: str,
                       change: events_pb2.MembershipChange, role: str, previous_role: str, by: str,
                       at: datetime) -> Message:
    return events_pb2.MembershipChanged(
        organization_id=str(organization_id), user_id=str(user_id or ""), email=email, change=change,
        role=role_number(role) if role else identity_pb2.ROLE_UNSPECIFIED,
        previous_role=role_number(previous_role) if previous_role else identity_pb2.ROLE_UNSPECIFIED,
        changed_by=by, change_time=timestamp(at),
    )


def api_key_created(row: ApiKeyRow) -> Message:
    return events_pb2.ApiKeyCreated(
        api_key_id=str(row.id), organization_id=str(row.organization_id), name=row.name, prefix=row.prefix,
        scopes=row.scopes, rotated_from=str(row.rotated_from or ""), created_by=row.created_by,
        create_time=timestamp(row.created_at), expire_time=timestamp(row.expires_at),
    )


def api_key_revoked(row: ApiKeyRow, by: str) -> Message:
    return events_pb2.ApiKeyRevoked(api_key_id=str(row.id), organization_id=str(row.organization_id), name=row.name,
                                    prefix=row.prefix, revoked_by=by, revoke_time=timestamp(row.revoked_at))
