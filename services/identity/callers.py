"""Who is calling, as the identity servicers need it (chassis.current_principal, from the gateway's claims).

Authorization (who may do what) is issue 12; until then any authenticated principal may call these
RPCs, and the principal is read to record who did what (created_by, events) and to default the
organization of organization-scoped calls.
"""

from __future__ import annotations

import uuid

from chassis import current_principal
from chassis.errors import FieldViolation, InvalidArgument
from chassis.resources import resource_id


def actor() -> str:
    """The calling principal's subject (`<user id>`, `client:<id>`, `apikey:<id>`, `service:<name>`), or ""."""
    principal = current_principal()
    return principal.subject if principal else ""


def is_platform_admin() -> bool:
    """Whether the caller is a platform administrator (the `admin` claim)."""
    principal = current_principal()
    return bool(principal and principal.platform_admin)


def calling_user_id() -> uuid.UUID | None:
    """The caller's user id when the caller is a user, else None."""
    principal = current_principal()
    if principal is None or principal.kind != "user":
        return None
    try:
        return uuid.UUID(principal.subject)
    except ValueError:
        return None


def organization_or_callers(given: str, field: str = "organization_id") -> uuid.UUID:
    """The organization a request names, or the caller's (the token's `org`); INVALID_ARGUMENT naming the
    field when neither is there."""
    if given:
        return resource_id("organization", given, field=field)
    principal = current_principal()
    if principal and principal.organization:
        try:
            return uuid.UUID(principal.organization)
        except ValueError:
            pass
    raise InvalidArgument([FieldViolation(field, "required: the caller's token names no organization, so give one")])
