"""The organization filter every agent query carries (docs/authorization.md, Tenancy and Enforcement).

The store asks chassis.tenant() for the current call's (or the task's, under chassis.acting_for)
organization and puts it in the SQL itself, so another organization's agent or execution is never
loaded: it is NOT_FOUND by id and absent from every list, exactly like an id that does not exist.
"""

from __future__ import annotations

from typing import Any

from chassis.authz import tenant


def scope(column: str) -> tuple[str, list[Any]]:
    """A WHERE condition restricting `column` to the caller's organization, and its parameters.

    A platform admin (`cross_org`) sees every organization; a principal without an organization (a mesh
    service outside chassis.acting_for) sees none.
    """
    current = tenant()
    if current.cross_org:
        return "TRUE", []
    if not current.organization:
        return "FALSE", []
    return f"{column} = %s", [current.organization]

