"""The organization filter every integration query carries (docs/authorization.md, Tenancy and Enforcement).

An integration and its sealed credentials belong to the organization of the principal that registered it.
The store asks chassis.tenant() for the current call's organization and puts it in the SQL itself, so
another organization's integration is never loaded: NOT_FOUND by id (for reads, updates, deletes, probes
and invocations alike) and absent from every list and count, exactly like an id that does not exist.
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
        raise FailedPrecondition("the caller belongs to no organization, so it cannot own an integration; "
                                 "use a token issued for an organization (its `org` claim)")
    return organization
