"""The organization filter every notification query a call makes carries (docs/authorization.md, Tenancy).

A subscription belongs to the organization of the principal that created it, a notification to its
subscription's (which is its event's). The servicer's queries ask chassis.tenant() for the current call's
organization and put it in the SQL itself, so another organization's subscription or notification is
never loaded: NOT_FOUND by id (reads, updates, deletes, resends alike) and absent from every list and
count, exactly like an id that does not exist.

The event consumer does not use this: it matches subscriptions of the event's own organization, given
explicitly (services.notification.delivery). The delivery worker and the sweeper act on rows by id, as
the service's own housekeeping, each delivery within its row's organization.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from chassis.authz import tenant
from chassis.errors import FailedPrecondition


def scope(column: str = "organization_id") -> tuple[sql.Composable, list[Any]]:
    """A WHERE condition restricting `column` to the caller's organization, and its parameters.

    A platform admin (`cross_org`) sees every organization; a principal without an organization (a mesh
    service outside chassis.acting_for) sees none. Composed SQL, so it only goes into queries composed too.
    """
    current = tenant()
    if current.cross_org:
        return sql.SQL("TRUE"), []
    if not current.organization:
        return sql.SQL("FALSE"), []
    return sql.SQL("{} = %s").format(sql.Identifier(column)), [current.organization]


def creating_organization() -> str:
    """The organization a new integration belongs to: the caller's, never anything the request says."""
    organization = tenant().organization
    if not organization:
        raise FailedPrecondition("the caller belongs to no organization, so it cannot own a subscription; "
                                 "use a token issued for an organization (its `org` claim)")
    return organization
