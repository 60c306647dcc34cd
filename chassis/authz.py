"""What a principal may do: roles to permissions (from the contracts), the permission each RPC needs,
and the tenant the stores filter by. See docs/authorization.md.

Everything here is read from the descriptors once (cached) and then looked up per call:

    permissions_of(principal)   # frozenset of permission names, cached per (immutable) principal
    chassis.tenant()            # Tenant(organization, subject, cross_org) for the stores' queries

Roles are `enum Role` in proto/protomesh/options/v1/roles.proto, each value carrying a
`(protomesh.options.v1.role)` definition; the permission of a method is its
`(protomesh.options.v1.access)` option. The call interceptor (chassis.interceptors) asks
`method_rule()` once per method when it wraps the handler and `check()` on every call.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from psycopg import sql

from chassis.errors import FailedPrecondition, FieldViolation, InvalidArgument, PermissionDenied
from chassis.identity import (
    ACCESS_OPTION,
    HOW_TO_AUTHENTICATE,
    Principal,
    Unauthenticated,
    acting_as,
    current_principal,
    require_principal,
)
from protomesh.options.v1 import access_pb2, roles_pb2

if TYPE_CHECKING:
    from google.protobuf.internal.extension_dict import _ExtensionFieldDescriptor

ROLE_OPTION = cast("_ExtensionFieldDescriptor[descriptor_pb2.EnumValueOptions, roles_pb2.RoleDefinition]",
                   roles_pb2.role)
"""`(protomesh.options.v1.role)` on a value of `enum Role`."""

FIELD_BEHAVIOR = field_behavior_pb2.field_behavior
"""`(google.api.field_behavior)` on a field."""

PLATFORM_PERMISSIONS: frozenset[str] = frozenset({"keys.rotate", "users.write"})
"""Permissions no role grants: only a platform admin (`admin: true` claim) holds them."""

MESH_SCOPE = "mesh"
"""The scope API keys and OAuth clients were given before issue 12 ("may call the mesh"). On an API key it
stands for the `member` role's permissions (bounded: only an admin, who holds them, can create a key);
new keys should list permission names instead."""

SERVICE_ROLE = "member"
"""The role a mesh service acting on its own (`service:<name>`) holds in the organization of the work it
handles (chassis.acting_for)."""


@dataclass(frozen=True)
class Tenant:
    """Whose data a call may touch: what the stores put in their WHERE clauses (stores never read claims)."""

    organization: str | None
    """The principal's organization (None when it has none: a platform admin without `org`, or a mesh service
    outside `acting_for`)."""
    subject: str
    """The principal's subject, for owner/share rules (`created_by = %(subject)s`)."""
    cross_org: bool
    """True only for a platform admin: its queries drop the organization filter (and the audit says so)."""


class MissingPermission(PermissionDenied):
    """The principal lacks the permission the method declares (HTTP 403); names the permission.

    ErrorInfo: reason PERMISSION_DENIED, metadata `permission` and `organization`.
    """

    def __init__(self, permission: str, organization: str) -> None:
        self.permission = permission
        where = f"organization {organization!r}" if organization else "no organization"
        how = ("only a platform admin holds it" if permission in PLATFORM_PERMISSIONS
               else "an organization admin grants it through a role")
        super().__init__(
            f"this method needs the permission {permission!r}, which the caller does not hold in {where}; "
            f"{how} (docs/authorization.md)",
            metadata={"permission": permission, "organization": organization},
        )


# --- roles, from the contracts ---------------------------------------------------------------------


@functools.cache
def role_definitions() -> Mapping[str, roles_pb2.RoleDefinition]:
    """Each role's definition by name, in the enum's order (least to most privileged)."""
    found: dict[str, roles_pb2.RoleDefinition] = {}
    for value in roles_pb2.Role.DESCRIPTOR.values:
        options = value.GetOptions()
        if options.HasExtension(ROLE_OPTION):
            definition = options.Extensions[ROLE_OPTION]
            found[definition.name] = definition
    return found


@functools.cache
def role_permissions(role: str) -> frozenset[str]:
    """The permissions `role` holds, those of the roles it includes (transitively) included; empty if unknown."""
    definitions = role_definitions()
    held: set[str] = set()
    pending, seen = [role], set()
    while pending:
        name = pending.pop()
        if name in seen or name not in definitions:
            continue
        seen.add(name)
        held.update(definitions[name].permissions)
        pending.extend(definitions[name].includes)
    return frozenset(held)


@functools.cache
def all_permissions() -> frozenset[str]:
    """Every permission that exists: those the roles grant and the platform-only ones."""
    return frozenset().union(*(role_permissions(r) for r in role_definitions())) | PLATFORM_PERMISSIONS


# --- principals ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def permissions_of(principal: Principal) -> frozenset[str]:
    """The permissions `principal` holds in its organization (docs/authorization.md, Principals).

    - platform admin: every permission;
    - user, service account (client credentials), mesh service: its roles' permissions;
    - API key: its scopes that name permissions (`mesh` standing for the member role), never more than
      the key's organization's roles could grant.
    Cached: principals are immutable and a client repeats its token on every call.
    """
    if principal.platform_admin:
        return all_permissions()
    if principal.kind == "api_key":
        granted = principal.scopes & all_permissions() - PLATFORM_PERMISSIONS
        if MESH_SCOPE in principal.scopes:
            granted |= role_permissions(SERVICE_ROLE)
        return frozenset(granted)
    return frozenset().union(*(role_permissions(r) for r in principal.roles))


def tenant() -> Tenant:
    """The tenant of the current call (or of the work `acting_for` runs); UNAUTHENTICATED without a principal."""
    principal = require_principal()
    return _tenant(principal)


@functools.lru_cache(maxsize=4096)
def _tenant(principal: Principal) -> Tenant:
    return Tenant(organization=principal.organization or None, subject=principal.subject,
                  cross_org=principal.platform_admin)


@contextlib.contextmanager
def acting_for(organization: str) -> Iterator[Principal]:
    """Run the block as this mesh service acting in `organization` (an event's or task's), as a `member`.

    For consumers and task workers, whose own principal (`service:<name>`) has no organization: inside
    the block chassis.tenant() is that organization and outbound calls carry it.
    """
    current = current_principal()
    if current is None or current.kind != "service" or not current.subject.startswith("service:"):
        raise RuntimeError("acting_for is for a mesh service's own work (its consumers, tasks and loops)")
    with acting_as(_service_in(current.subject, organization)) as principal:
        yield principal


@functools.lru_cache(maxsize=1024)
def _service_in(subject: str, organization: str) -> Principal:
    return Principal(subject=subject, kind="service", organization=organization,
                     roles=frozenset({SERVICE_ROLE}), scopes=frozenset({MESH_SCOPE}))


# --- methods ---------------------------------------------------------------------------------------


OUTPUT_ONLY_FIELDS: frozenset[str] = frozenset({"organization", "organization_id", "owner", "created_by"})
"""Fields the service sets from the principal, never from a request (property-level authorization, OWASP
API3): a create or update request that sets one inside the object it writes is INVALID_ARGUMENT."""


@dataclass(frozen=True)
class MethodRule:
    """What a method needs, read once from its descriptor when the interceptor wraps its handler."""

    public: bool = False
    """No principal needed."""
    permission: str = ""
    """The permission needed ("" for public or any authenticated principal)."""
    resource: int = access_pb2.RESOURCE_UNSPECIFIED
    """The object rule the service's store applies (informational here: the chassis loads no object)."""
    output_only: tuple[tuple[str, ...], ...] = ()
    """Paths of request fields named in OUTPUT_ONLY_FIELDS that a caller must not set (writes only)."""


AUTHENTICATED = MethodRule()
PUBLIC = MethodRule(public=True)

# Standard RPCs every replica serves that the contracts do not declare: health checks (Envoy's and the
# supervisor's probes) and reflection (grpcurl) need no credential.
_STANDARD_PUBLIC = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def access_of(method: MethodDescriptor) -> access_pb2.Access | None:
    """The method's declared access, or None when it declares none."""
    options = method.GetOptions()
    return options.Extensions[ACCESS_OPTION] if options.HasExtension(ACCESS_OPTION) else None


def method_rule(method: str) -> MethodRule:
    """The rule for a gRPC path (/pkg.Service/Method), from the default descriptor pool.

    A method the pool does not know, or that declares nothing, needs an authenticated principal (the
    contract test makes every contract method declare its access).
    """
    if method.startswith(_STANDARD_PUBLIC):
        return PUBLIC
    service, _, name = method.strip("/").partition("/")
    try:
        descriptor = descriptor_pool.Default().FindMethodByName(f"{service}.{name}")
    except KeyError:
        return AUTHENTICATED
    access = access_of(descriptor)
    if access is not None and access.public:
        return PUBLIC
    return MethodRule(permission=access.permission if access else "",
                      resource=access.resource if access else access_pb2.RESOURCE_UNSPECIFIED,
                      output_only=output_only_paths(descriptor))


def output_only_paths(method: MethodDescriptor) -> tuple[tuple[str, ...], ...]:
    """Request fields a write must not set: top-level fields the contract marks `(google.api.field_behavior)
    = OUTPUT_ONLY` (a request field declared only to be refused by name), a top-level `owner`,
    `created_by` or `organization`, and OUTPUT_ONLY_FIELDS inside the object a request embeds (e.g.
    `subscription.organization_id`).

    An unmarked top-level `organization_id` is not one of them: on the identity RPCs it selects the
    organization the call acts in (`/v1/organizations/{organization_id}/members`), which the servicer
    checks against chassis.tenant(). Reads (NO_SIDE_EFFECTS) may filter by any of these fields.
    """
    if method.GetOptions().idempotency_level == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS:
        return ()
    found: list[tuple[str, ...]] = []
    for field in method.input_type.fields:
        if _output_only(field) or field.name in OUTPUT_ONLY_FIELDS - {"organization_id"}:
            found.append((field.name,))
        elif (written := _written_message(field)) is not None:
            # Only the ownership properties: other output-only fields of an embedded object (a webhook's
            # has_secret) are ignored as before, so a client may send back an object it read.
            found += [(field.name, nested.name) for nested in written.fields if nested.name in OUTPUT_ONLY_FIELDS]
    return tuple(found)


def _output_only(field: FieldDescriptor) -> bool:
    # A repeated extension: absent reads as empty (HasExtension is for singular ones).
    return field_behavior_pb2.OUTPUT_ONLY in field.GetOptions().Extensions[FIELD_BEHAVIOR]


def _written_message(field: FieldDescriptor) -> Descriptor | None:
    """The message type of a singular message field that is one of ours (not a well-known type)."""
    message = field.message_type
    if message is None or field.is_repeated or message.full_name.startswith("google.protobuf."):
        return None
    return message


def set_output_only(rule: MethodRule, request: Message) -> list[str]:
    """The output-only fields `request` sets (dotted paths); empty for most methods at no cost."""
    found = []
    for path in rule.output_only:
        message: Message = request
        for name in path[:-1]:
            if not message.HasField(name):
                break
            message = getattr(message, name)
        else:
            value = getattr(message, path[-1])
            if value if not isinstance(value, Message) else message.HasField(path[-1]):
                found.append(".".join((*path[:-1], _sent_name(message, path[-1]))))
    return found


def _sent_name(message: Message, name: str) -> str:
    """The name the client used: a field's explicit json_name (CreateContextRequest's `owner_given` is
    `owner` in JSON, the proto name being reserved), else its proto name. Only on the refusal path."""
    json_name = message.DESCRIPTOR.fields_by_name[name].json_name
    default = name.split("_")[0] + "".join(part.title() for part in name.split("_")[1:])
    return json_name if json_name and json_name != default else name


def check(rule: MethodRule, principal: Principal | None) -> None:
    """Refuse the call unless `principal` satisfies `rule`: UNAUTHENTICATED without one, PERMISSION_DENIED
    naming the permission when it lacks it. The interceptor calls this after identity, before validation."""
    if rule.public:
        return
    if principal is None:
        raise Unauthenticated(HOW_TO_AUTHENTICATE)
    if rule.permission and rule.permission not in permissions_of(principal):
        raise MissingPermission(rule.permission, principal.organization)


def check_request(rule: MethodRule, request: Message) -> None:
    """Refuse a write that sets an output-only field (organization, owner, created_by): INVALID_ARGUMENT
    naming each field (property-level authorization). Called after check(), before field validation."""
    if rule.output_only:
        fields = set_output_only(rule, request)
        if fields:
            raise InvalidArgument([FieldViolation(f, "is output only: the service sets it from the caller's "
                                                     "identity; leave it out") for f in fields])


def organization_scope(column: str = "organization_id") -> tuple[sql.Composable, list[Any]]:
    """A WHERE condition (composed SQL) restricting `column` to the caller's organization, and its parameters.

    A platform admin (`cross_org`) sees every organization; a principal without an organization (a mesh
    service outside acting_for) sees none. The stores put it in their own SQL, so another organization's
    row is never loaded: NOT_FOUND by id and absent from lists, like an id that does not exist.
    """
    current = tenant()
    if current.cross_org:
        return sql.SQL("TRUE"), []
    if not current.organization:
        return sql.SQL("FALSE"), []
    return sql.SQL("{} = %s").format(sql.Identifier(column)), [current.organization]


def creating_organization(noun: str) -> str:
    """The organization a new object (`noun`, e.g. "an agent") belongs to: the caller's, never the request's."""
    organization = tenant().organization
    if not organization:
        raise FailedPrecondition(f"the caller belongs to no organization, so it cannot own {noun}; "
                                 "use a token issued for an organization (its `org` claim)")
    return organization
