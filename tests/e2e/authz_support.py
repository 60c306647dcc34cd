"""Principals and expectations of the authorization end-to-end tests (test_authorization_matrix.py,
test_object_level.py), built through the real identity service of a running mesh.

Every principal is made the way an outside user makes it, over the gateway: organizations and users by
the platform admin (OrganizationService, UserService, memberships with a role), user tokens by the device
flow of the CLI client (identity_support.device_login), service accounts by the client_credentials grant
of a client registered with roles, API keys by ApiKeyService with permission names as scopes.

What each principal may do is read from the contracts only: the `(protomesh.options.v1.access)` option
of each RPC and the `(protomesh.options.v1.role)` definitions of roles.proto (docs/authorization.md). The
expectation is computed here from those declarations, independently of chassis.authz, so a bug in the
enforcement is not also in the oracle.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
import requests
from google.protobuf import descriptor_pool

from chassis.contracts import mesh_grpc_services
from chassis.tooling.catalog import MeshMethod, load_catalog
from chassis.tooling.supervisor import Mesh
from protomesh.options.v1 import access_pb2, roles_pb2
from tests.e2e.identity_support import (
    TIMEOUT,
    Answer,
    base_url,
    device_login,
    first,
    identity_call,
    is_http_served,
    rest_call,
)

PLACEHOLDER_ID = "00000000-0000-4000-8000-000000000000"
"""An id-shaped value no object has: an allowed call on it is 404 (or 400), never 401/403."""
PASSWORD = f"Matrix-{uuid.uuid4().hex}"
"""The password every test user is given (set here by the test: the users are created with it)."""
REFUSED = frozenset({401, 403})
"""What authorization answers: no principal (401), or a principal without the permission (403)."""

_OPTIONS: Any = access_pb2
_ROLES: Any = roles_pb2


# ---------------------------------------------------------------------------------------------------------
# What the contracts declare
# ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Declared:
    """An RPC's access declaration."""

    public: bool
    authenticated: bool
    permission: str
    resource: int

    def describe(self) -> str:
        if self.public:
            return "public"
        if self.permission:
            return f"permission {self.permission}"
        return "authenticated"


def declared(rpc: MeshMethod) -> Declared:
    """The access option of an RPC, read from the descriptors."""
    mesh_grpc_services()  # loads every contract (with its options) into the default pool
    options = descriptor_pool.Default().FindMethodByName(f"{rpc.service}.{rpc.name}").GetOptions()
    access = options.Extensions[_OPTIONS.access]
    return Declared(access.public, access.authenticated, access.permission, access.resource)


def role_table() -> dict[str, frozenset[str]]:
    """Each role's permissions, its included roles' included (transitively), from roles.proto."""
    definitions: dict[str, Any] = {}
    for value in _ROLES.Role.DESCRIPTOR.values:
        options = value.GetOptions()
        if options.HasExtension(_ROLES.role):
            definition = options.Extensions[_ROLES.role]
            definitions[definition.name] = definition

    def holds(name: str, seen: frozenset[str] = frozenset()) -> frozenset[str]:
        if name in seen or name not in definitions:
            return frozenset()
        own = frozenset(definitions[name].permissions)
        return own.union(*(holds(i, seen | {name}) for i in definitions[name].includes))

    return {name: holds(name) for name in definitions}


ROLES = role_table()
ROLE_PERMISSIONS = frozenset().union(*ROLES.values())
"""Every permission some role grants: what an organization's owner holds and an API key may carry."""


def gateway_methods() -> list[MeshMethod]:
    """Every RPC the gateway serves (transcoded or native gRPC): all of the catalog but the OAuth endpoints."""
    return [m for m in load_catalog().methods()
            if not is_http_served(m) and not m.client_streaming and not m.server_streaming]


# ---------------------------------------------------------------------------------------------------------
# Principals
# ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Caller:
    """Someone calling through the gateway: the headers that carry its credential and what it holds.

    `permissions` None means every permission (a platform admin); `authenticated` False is anonymous.
    """

    name: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    permissions: frozenset[str] | None = frozenset()
    authenticated: bool = True
    subject: str = ""

    def may(self, access: Declared) -> bool:
        """Whether the declarations let this caller through."""
        if access.public:
            return True
        if not self.authenticated:
            return False
        if not access.permission:
            return True
        return self.permissions is None or access.permission in self.permissions


ANONYMOUS = Caller("anonymous", {}, frozenset(), authenticated=False)


def bearer(name: str, token: str, permissions: frozenset[str] | None) -> Caller:
    """A caller presenting an access token."""
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    return Caller(name, {"authorization": f"Bearer {token}"}, permissions, subject=claims["sub"])


def create_organization(mesh: Mesh, admin_token: str, prefix: str) -> str:
    """A new organization (created by the platform admin, who becomes its owner); its id."""
    answer = identity_call(mesh, "CreateOrganization", {"name": f"{prefix}-{uuid.uuid4().hex[:8]}"},
                           token=admin_token)
    organization_id = first(answer, "organization_id", "organizationId")
    assert organization_id, answer
    return str(organization_id)


def create_member(mesh: Mesh, admin_token: str, organization_id: str, role: str) -> tuple[str, str]:
    """A new user (by the platform admin, password PASSWORD) made a member with `role`: (user id, email)."""
    email = f"{role}-{uuid.uuid4().hex[:10]}@matrix.example.com"
    created = identity_call(mesh, "CreateUser", {"email": email, "password": PASSWORD,
                                                 "display_name": f"{role} of the matrix"}, token=admin_token)
    user_id = str(first(created, "user_id", "userId"))
    identity_call(mesh, "AddMember", {"organization_id": organization_id, "user_id": user_id,
                                      "role": f"ROLE_{role.upper()}"}, token=admin_token)
    return user_id, email


def member(mesh: Mesh, admin_token: str, organization_id: str, role: str, name: str = "") -> Caller:
    """A user with `role` in the organization (and no other membership), signed in by the device flow: its
    token's `org` is that organization and its `roles` that role."""
    _, email = create_member(mesh, admin_token, organization_id, role)
    token = device_login(mesh, email=email, password=PASSWORD, scope="openid mesh")["access_token"]
    return bearer(name or role, token, ROLES[role])


def service_account(mesh: Mesh, registrant_token: str, organization_id: str, role: str = "member",
                    name: str = "service account") -> Caller:
    """A client_credentials client of the organization registered with `role`, and its token."""
    registered = identity_call(mesh, "RegisterClient", {
        "name": f"matrix-{uuid.uuid4().hex[:8]}", "organization_id": organization_id,
        "grant_types": ["client_credentials"], "scopes": ["mesh"], "roles": [f"ROLE_{role.upper()}"]},
        token=registrant_token)
    client_id, secret = first(registered, "client_id", "clientId"), registered.get("client_secret") or \
        registered.get("clientSecret")
    assert client_id and secret, registered
    reply = requests.post(base_url(mesh) + "/oauth2/token", data={"grant_type": "client_credentials", "scope": "mesh"},
                          auth=(client_id, secret), timeout=TIMEOUT)
    assert reply.status_code == 200, reply.text
    return bearer(name, reply.json()["access_token"], ROLES[role])


def api_key(mesh: Mesh, creator_token: str, organization_id: str, scopes: list[str], name: str) -> Caller:
    """An API key of the organization with `scopes` (permission names), rate limits far above the tests'."""
    created = identity_call(mesh, "CreateApiKey", {
        "organization_id": organization_id, "name": f"matrix-{uuid.uuid4().hex[:8]}", "scopes": scopes,
        "rate_limit_per_second": 10000, "rate_limit_burst": 100000}, token=creator_token)
    secret = created.get("secret")
    key_id = first(created, "api_key_id", "apiKeyId")
    assert secret and key_id, created
    return Caller(name, {"x-api-key": secret}, frozenset(scopes), subject=f"apikey:{key_id}")


# ---------------------------------------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------------------------------------

def placeholders(rpc: MeshMethod) -> dict[str, Any]:
    """A value for every path variable of the RPC's route: an id-shaped one for ids."""
    if rpc.http is None:
        return {}
    names = [part.split("=")[0].strip("{}") for part in rpc.http.path.split("/") if part.startswith("{")]
    return {name: PLACEHOLDER_ID if name.endswith("id") else "placeholder" for name in names}


_GRPC_TO_HTTP = {grpc.StatusCode.OK: 200, grpc.StatusCode.INVALID_ARGUMENT: 400,
                 grpc.StatusCode.FAILED_PRECONDITION: 400, grpc.StatusCode.OUT_OF_RANGE: 400,
                 grpc.StatusCode.UNAUTHENTICATED: 401,
                 grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.NOT_FOUND: 404,
                 grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.ABORTED: 409,
                 grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.UNAVAILABLE: 503}


def grpc_call(mesh: Mesh, rpc: MeshMethod, caller: Caller) -> Answer:
    """Call over native gRPC through the gateway with an empty request; the status as its HTTP code."""
    with grpc.insecure_channel(mesh.gateway) as channel:
        call: Any = channel.unary_unary(rpc.grpc_path, request_serializer=None, response_deserializer=None)
        try:
            call(b"", metadata=tuple(caller.headers.items()), timeout=TIMEOUT)
        except grpc.RpcError as error:
            return Answer(_GRPC_TO_HTTP.get(error.code(), 500), {"message": error.details() or ""}, {})
    return Answer(200, {}, {})


def call(mesh: Mesh, rpc: MeshMethod, caller: Caller, fields: Mapping[str, Any] | None = None) -> Answer:
    """Call `rpc` as `caller` through the gateway: over REST where it has a route, else native gRPC."""
    if rpc.http is None:
        return grpc_call(mesh, rpc, caller)
    return rest_call(mesh, rpc, {**placeholders(rpc), **(fields or {})}, headers=caller.headers)


def verdict(access: Declared, caller: Caller, answer: Answer) -> str:
    """"" when the answer fits the declaration for this caller, else what is wrong with it."""
    allowed = caller.may(access)
    if allowed and answer.status in REFUSED:
        return f"refused ({answer.status}) though allowed"
    if not allowed:
        if 200 <= answer.status < 300:
            return f"SUCCEEDED ({answer.status}) without being allowed"
        expected = 401 if not caller.authenticated else 403
        if answer.status != expected:
            return f"{answer.status} instead of {expected}"
        if expected == 403 and access.permission not in json.dumps(answer.body):
            return "403 without naming the missing permission"
    return ""
