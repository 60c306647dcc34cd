"""Every RPC declares who may call it (default deny), and every permission it names exists.

Read from the committed descriptor set with plain protobuf (the expectation), then compared with what
the chassis enforces (chassis.authz reads the same options from the generated modules' pool): access is
written once, in the contracts, and the two readings must agree.
"""

from __future__ import annotations

import importlib
import itertools
import re
from collections.abc import Iterator

import pytest
from google.protobuf import descriptor_pb2

from chassis import authz
from chassis.identity import ACCESS_OPTION
from chassis.paths import DESCRIPTOR_SET
from protomesh.options.v1 import access_pb2, roles_pb2

_PERMISSION = re.compile(r"^[a-z]+\.[a-z]+$")
"""`<area>.<verb>`, e.g. agents.execute."""


def _files() -> list[descriptor_pb2.FileDescriptorProto]:
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    return [f for f in files if f.package.startswith("protomesh.")]


def _methods() -> Iterator[tuple[str, descriptor_pb2.FileDescriptorProto, descriptor_pb2.MethodDescriptorProto]]:
    for file in _files():
        for service in file.service:
            for method in service.method:
                yield f"/{file.package}.{service.name}/{method.name}", file, method


def _access(method: descriptor_pb2.MethodDescriptorProto) -> access_pb2.Access | None:
    options = method.options
    return options.Extensions[ACCESS_OPTION] if options.HasExtension(ACCESS_OPTION) else None


def _roles() -> dict[str, roles_pb2.RoleDefinition]:
    """The roles as the descriptor set holds them (roles.proto's enum values and their option)."""
    (file,) = [f for f in _files() if f.name == "protomesh/options/v1/roles.proto"]
    (enum,) = [e for e in file.enum_type if e.name == "Role"]
    return {v.options.Extensions[authz.ROLE_OPTION].name: v.options.Extensions[authz.ROLE_OPTION]
            for v in enum.value if v.options.HasExtension(authz.ROLE_OPTION)}


def test_there_are_methods_to_check() -> None:
    paths = [path for path, _, _ in _methods()]
    assert len(paths) > 80 and "/protomesh.agent.v1.AgentService/ExecuteAgent" in paths


def test_every_rpc_declares_its_access_exactly_once() -> None:
    undeclared = [path for path, _, method in _methods() if _access(method) is None]
    assert not undeclared, f"these RPCs declare no (protomesh.options.v1.access) (default deny): {undeclared}"
    ambiguous = []
    for path, _, method in _methods():
        access = _access(method)
        assert access is not None
        kinds = [access.public, access.authenticated, bool(access.permission)]
        if sum(kinds) != 1:
            ambiguous.append(path)
        if access.public and access.resource != access_pb2.RESOURCE_UNSPECIFIED:
            ambiguous.append(f"{path} (a public method has no resource rule)")
    assert not ambiguous, f"declare exactly one of public, authenticated, permission: {ambiguous}"


def test_every_named_permission_exists_in_a_role_or_is_platform_only() -> None:
    roles = _roles()
    granted = {p for role in roles.values() for p in role.permissions}
    assert not granted & authz.PLATFORM_PERMISSIONS, "a platform-only permission must not be in a role"
    unknown = {}
    for path, _, method in _methods():
        access = _access(method)
        if access is not None and access.permission and access.permission not in granted | authz.PLATFORM_PERMISSIONS:
            unknown[path] = access.permission
    assert not unknown, f"permissions no role grants (add them to roles.proto or PLATFORM_PERMISSIONS): {unknown}"
    malformed = sorted(p for p in granted | authz.PLATFORM_PERMISSIONS if not _PERMISSION.match(p))
    assert not malformed, f"permissions are '<area>.<verb>': {malformed}"


def test_roles_are_a_chain_from_viewer_to_owner() -> None:
    roles = _roles()
    assert list(roles) == ["viewer", "member", "admin", "owner"]
    for name, role in roles.items():
        assert set(role.includes) <= set(roles), f"{name} includes an unknown role: {list(role.includes)}"
    # Each role holds everything the roles before it hold (what docs/authorization.md's table says).
    names = list(roles)
    for lower, higher in itertools.pairwise(names):
        assert authz.role_permissions(lower) < authz.role_permissions(higher), (lower, higher)
    assert authz.role_permissions("viewer") == {"agents.read", "contexts.read", "integrations.read",
                                                "notifications.read", "members.read", "workflows.read", "fields.read"}


def test_a_method_with_side_effects_never_needs_only_a_read_permission() -> None:
    wrong = [path for path, _, method in _methods()
             if method.options.idempotency_level != descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
             and (access := _access(method)) is not None and access.permission.endswith(".read")]
    assert not wrong, f"a write declared with a .read permission: {wrong}"


def _load_generated(file: descriptor_pb2.FileDescriptorProto) -> None:
    importlib.import_module(file.name.removesuffix(".proto").replace("/", ".") + "_pb2")


@pytest.mark.parametrize("path", [p for p, _, _ in _methods()])
def test_the_chassis_enforces_what_the_contract_declares(path: str) -> None:
    (file, method) = next((f, m) for p, f, m in _methods() if p == path)
    _load_generated(file)  # the chassis reads the default pool, which the generated module fills
    access = _access(method)
    assert access is not None
    rule = authz.method_rule(path)
    assert rule.public == access.public
    assert rule.permission == access.permission
    assert rule.resource == access.resource


def test_an_unknown_method_needs_a_principal() -> None:
    assert authz.method_rule("/protomesh.agent.v1.AgentService/NoSuchMethod") == authz.AUTHENTICATED
    assert authz.method_rule("/no.such.Service/Call") == authz.AUTHENTICATED
    assert authz.method_rule("/grpc.health.v1.Health/Check").public
