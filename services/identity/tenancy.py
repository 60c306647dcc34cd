"""Tenancy of the identity service: which organization's users, members, keys and clients a call may touch.

The chassis has already checked the permission the contract declares (docs/authorization.md); what is
left is the object rule, applied in the stores' SQL: every read, list, update and delete of an
organization-scoped object filters by `organization_filter()`, so another organization's object is
NOT_FOUND (404, never 403) and never in a list. A platform admin (`Tenant.cross_org`) has no filter.

And the grant rule: a role (membership, OAuth client) or an API-key scope given by a caller never carries
a permission the caller does not hold itself, so no one can mint a principal stronger than they are.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from chassis import require_principal
from chassis.authz import (
    MESH_SCOPE,
    PLATFORM_PERMISSIONS,
    SERVICE_ROLE,
    Tenant,
    all_permissions,
    permissions_of,
    role_definitions,
    role_permissions,
    tenant,
)
from chassis.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied
from chassis.resources import resource_id

NO_ORGANIZATION = uuid.UUID(int=0)
"""What a caller outside every organization filters by: no row has it, so it sees nothing."""


def organization_of(current: Tenant) -> uuid.UUID | None:
    """The organization filter of `current`: None for a platform admin (every organization), else the
    principal's organization, or NO_ORGANIZATION when it has none (or one that is not an identity id)."""
    if current.cross_org:
        return None
    try:
        return uuid.UUID(current.organization) if current.organization else NO_ORGANIZATION
    except ValueError:
        return NO_ORGANIZATION


def organization_filter() -> uuid.UUID | None:
    """The organization filter of the current call (see organization_of)."""
    return organization_of(tenant())


def own_organization(given: str, field: str = "organization_id") -> uuid.UUID:
    """The organization a request names (its own when it names none), which must be the caller's.

    Another organization is NOT_FOUND, as if it did not exist; a platform admin may name any. A caller in no
    organization naming none is INVALID_ARGUMENT naming `field`.
    """
    current = tenant()
    mine = organization_of(current)
    if given:
        named = resource_id("organization", given, field=field)
        if mine is not None and named != mine:
            raise NotFound("organization", given)
        return named
    if mine is None and current.organization:  # a platform admin acting in its token's organization
        try:
            return uuid.UUID(current.organization)
        except ValueError:
            pass
    if mine is None or mine == NO_ORGANIZATION:
        raise InvalidArgument([FieldViolation(field, "required: the caller's token names no organization, "
                                                     "so give one")])
    return mine


def is_self_or_platform_admin(user_id: uuid.UUID) -> bool:
    """Whether the caller is that user, or a platform admin (RESOURCE_OWNER on a user: the user themself)."""
    principal = require_principal()
    return principal.platform_admin or (principal.kind == "user" and principal.subject == str(user_id))


# --- grants: never more than the caller holds --------------------------------------------------------------


def check_roles_grantable(roles: Iterable[str], field: str = "role") -> None:
    """Refuse a role that does not exist (roles.proto) or that holds a permission the caller does not."""
    held = permissions_of(require_principal())
    known = role_definitions()
    for role in roles:
        if role not in known:
            raise InvalidArgument([FieldViolation(field, f"unknown role {role!r}; one of {sorted(known)}")])
        beyond = sorted(role_permissions(role) - held)
        if beyond:
            raise PermissionDenied(
                f"the role {role!r} holds permissions the caller does not ({', '.join(beyond)}): "
                "a caller grants at most its own permissions", metadata={"field": field, "role": role})


def scope_permissions(scope: str) -> frozenset[str]:
    """The permissions one API-key scope stands for: a permission name, or `mesh` (the member role's)."""
    if scope == MESH_SCOPE:
        return role_permissions(SERVICE_ROLE)
    return frozenset({scope})


def check_scopes_grantable(scopes: Iterable[str], field: str = "scopes", *, strict: bool = True) -> None:
    """API-key scopes are permission names (docs/authorization.md) the caller holds; platform-only
    permissions are never a key's (an API key acts within one organization). `strict=False` (rotating a key
    made before issue 12) passes over scopes that grant nothing instead of refusing them."""
    held = permissions_of(require_principal())
    grantable = all_permissions() - PLATFORM_PERMISSIONS
    for index, scope in enumerate(scopes):
        where = f"{field}[{index}]"
        if scope != MESH_SCOPE and scope not in grantable:
            if not strict:
                continue
            raise InvalidArgument([FieldViolation(
                where, f"{scope!r} is not a permission an API key may carry; use permission names such as "
                       "'agents.read' (docs/authorization.md)")])
        beyond = sorted(scope_permissions(scope) - held)
        if beyond:
            raise PermissionDenied(
                f"the scope {scope!r} needs permissions the caller does not hold ({', '.join(beyond)}): a key "
                "carries at most its creator's permissions", metadata={"field": where})
