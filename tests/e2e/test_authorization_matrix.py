"""The authorization matrix of issue 12, generated from the contracts.

Every RPC the gateway serves (chassis.tooling.catalog: a new RPC is covered without editing this file) is
called through the gateway — over REST where it has a route, else native gRPC — as each of:

    anonymous · a viewer · a member · an admin · an owner (each a real user of organization A, signed in by
    the device flow) · an admin of organization B · a service account of A (client_credentials, role
    member) · an API key of A with the RPC's permission as its scope · an API key of A with another
    permission only · a platform admin (the bootstrap admin)

Viewer/member/admin/owner together are "a member without the permission" and "a member with it" for every
permission the roles grant. What each may do is computed from the contracts alone (the access option of
the RPC, the role definitions of roles.proto: authz_support), not from chassis.authz.

Each cell: a caller the declaration does not allow must be refused — 401 anonymous, 403 otherwise, naming
the permission — and never answered 2xx; a caller it allows must not be refused by authorization (401/403):
it may fail validation (400) or find no object (404), since the requests carry placeholder ids and empty
bodies. A failure lists every wrong cell as `<rpc> as <caller> (<declaration>): <what went wrong>`.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from chassis.tooling.catalog import MeshMethod
from chassis.tooling.supervisor import Mesh
from tests.e2e.authz_support import (
    ANONYMOUS,
    ROLE_PERMISSIONS,
    ROLES,
    Caller,
    Declared,
    api_key,
    bearer,
    call,
    create_organization,
    declared,
    gateway_methods,
    member,
    service_account,
    verdict,
)
from tests.e2e.identity_support import admin_token, identity_mesh

METHODS = gateway_methods()
ACCESS = {m.grpc_path: declared(m) for m in METHODS}
WORKERS = 6
"""Calls in flight at once: enough to keep the sweep short, few enough for a two-core machine."""


@dataclass(frozen=True)
class World:
    """The principals of the matrix, built through the real identity service."""

    mesh: Mesh
    callers: dict[str, Caller]
    keys: dict[str, Caller]
    """An API key of organization A per permission a role grants (scope = that permission)."""


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    # A long publish lead: RotateSigningKey, swept as the platform admin, must be refused (400), not rotate
    # the key the gateway verifies with in the middle of the sweep.
    with identity_mesh("agent", "context", "integration", "notification", "workflow", "field",
                       env={"IDENTITY_KEY_PUBLISH_LEAD": "60s"}) as mesh:
        platform = admin_token(mesh)
        org_a = create_organization(mesh, platform, "matrix-a")
        org_b = create_organization(mesh, platform, "matrix-b")
        callers = {"anonymous": ANONYMOUS}
        for role in ("viewer", "member", "admin", "owner"):
            callers[role] = member(mesh, platform, org_a, role)
        owner_token = callers["owner"].headers["authorization"].removeprefix("Bearer ")
        callers["admin of B"] = member(mesh, platform, org_b, "admin", name="admin of B")
        callers["service account"] = service_account(mesh, owner_token, org_a, "member")
        callers["platform admin"] = bearer("platform admin", platform, None)
        keys = {p: api_key(mesh, owner_token, org_a, [p], f"key with {p}") for p in sorted(ROLE_PERMISSIONS)}
        yield World(mesh, callers, keys)


def key_with(world: World, access: Declared) -> Caller | None:
    """The API key holding exactly the RPC's permission (None: no key may hold it, a platform-only one)."""
    if not access.permission:
        return world.keys["agents.read"]
    return world.keys.get(access.permission)


def key_without(world: World, access: Declared) -> Caller:
    """An API key holding another permission only, of the same area when there is one (agents.read for
    agents.write): the closest miss."""
    area = access.permission.split(".")[0]
    others = [p for p in sorted(world.keys) if p != access.permission]
    same_area = [p for p in others if p.split(".")[0] == area]
    return world.keys[(same_area or others)[0]]


CALLERS = ["anonymous", "viewer", "member", "admin", "owner", "admin of B", "service account",
           "API key with the scope", "API key without the scope", "platform admin"]


def cells(world: World, name: str) -> list[tuple[MeshMethod, Caller]]:
    """The (RPC, caller) pairs of one column of the matrix."""
    found: list[tuple[MeshMethod, Caller]] = []
    for rpc in METHODS:
        access = ACCESS[rpc.grpc_path]
        if name == "API key with the scope":
            caller = key_with(world, access)
            if caller is None:
                continue
        elif name == "API key without the scope":
            if not access.permission:
                continue  # any key may call an authenticated or public RPC: the "with" column covers it
            caller = key_without(world, access)
        else:
            caller = world.callers[name]
        found.append((rpc, caller))
    return found


def test_the_matrix_covers_every_service_and_every_kind_of_declaration() -> None:
    assert {m.service.split(".")[1] for m in METHODS} >= {"agent", "context", "integration", "notification",
                                                          "identity"}
    kinds = {a.describe().split()[0] for a in ACCESS.values()}
    assert kinds == {"public", "authenticated", "permission"}, kinds
    undeclared = [p for p, a in ACCESS.items() if not (a.public or a.authenticated or a.permission)]
    assert not undeclared, f"RPCs that declare no access (default deny is the contract test's): {undeclared}"
    # Every permission an RPC needs is one a role grants, or a platform-only one; and each role adds some.
    needed = {a.permission for a in ACCESS.values() if a.permission}
    print(f"{len(METHODS)} RPCs; permissions needed: {len(needed)}; platform-only: "
          f"{sorted(needed - ROLE_PERMISSIONS)}")
    assert ROLES["viewer"] < ROLES["member"] < ROLES["admin"] < ROLES["owner"]


@pytest.mark.parametrize("name", CALLERS)
def test_authorization_matrix(world: World, name: str) -> None:
    pairs = cells(world, name)
    with ThreadPoolExecutor(WORKERS) as pool:
        answers = list(pool.map(lambda pair: call(world.mesh, pair[0], pair[1]), pairs))
    wrong: list[str] = []
    allowed = refused = 0
    for (rpc, caller), answer in zip(pairs, answers, strict=True):
        access = ACCESS[rpc.grpc_path]
        if caller.may(access):
            allowed += 1
        else:
            refused += 1
        problem = verdict(access, caller, answer)
        if problem:
            wrong.append(f"{rpc.grpc_path} as {caller.name} ({access.describe()}): {problem}"
                         f" — {str(answer.body)[:160]}")
    print(f"{name}: {len(pairs)} calls, {allowed} allowed, {refused} to refuse, {len(wrong)} wrong")
    assert not wrong, f"{len(wrong)} wrong cells for {name}:\n" + "\n".join(sorted(wrong))
