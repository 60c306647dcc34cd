"""Who is calling: the principal the gateway verified, as a typed object for servicers.

Envoy verifies a bearer token (jwt_authn) or an API key (ext_authz to the identity service) and
forwards the verified claims to the replica in one header, `x-protomesh-claims`: the JWT payload,
base64url (Envoy's `forward_payload_header` encoding, no padding). Envoy removes any copy a client
sent. Replicas accept only mTLS connections from certificates of the mesh's trust domain (chassis.tls:
the gateway's or another replica's), and the interceptor ignores the header on any other connection, so
only the gateway and other replicas can set it. The call interceptor (chassis.interceptors) parses it
once per call into a `Principal` and keeps it in a context variable for the call:

    principal = chassis.require_principal()
    tenant = chassis.tenant()          # what the stores filter by (chassis.authz)

What a principal may do is declared per RPC in the contracts and enforced by the interceptor before
the servicer runs (chassis.authz, docs/authorization.md); servicers do not check roles themselves.

Service to service, the header travels on outbound chassis client calls (it is one of
chassis.callcontext.PROPAGATED_HEADERS): the callee acts on behalf of the same principal. Work that
starts without a caller (event consumers, task workers, background loops) runs as the service's own
principal, `service_principal(name)`, which chassis.server sets before any of it starts.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import grpc
from google.protobuf import descriptor_pb2

from chassis.callcontext import CallContext, current_call
from chassis.errors import ServiceError
from protomesh.options.v1 import access_pb2

if TYPE_CHECKING:
    from google.protobuf.internal.extension_dict import _ExtensionFieldDescriptor

CLAIMS_HEADER = "x-protomesh-claims"
"""The header (gRPC metadata key) carrying the verified claims; set by Envoy, forwarded by the chassis."""

Kind = Literal["user", "service", "api_key"]
_KINDS: frozenset[str] = frozenset({"user", "service", "api_key"})

HOW_TO_AUTHENTICATE = (
    "this method needs an authenticated caller: send 'Authorization: Bearer <access token>' "
    "(e.g. from `protomesh token`, or an OAuth client credentials grant at /oauth2/token) "
    "or an API key as 'Authorization: ApiKey <key>' / 'x-api-key: <key>' through the gateway"
)


# The generated stubs type extensions as plain FieldDescriptors; Extensions[...] needs the extendee and value type.
ACCESS_OPTION = cast("_ExtensionFieldDescriptor[descriptor_pb2.MethodOptions, access_pb2.Access]", access_pb2.access)
"""`(protomesh.options.v1.access)` on a method."""
HTTP_SERVED_OPTION = cast("_ExtensionFieldDescriptor[descriptor_pb2.ServiceOptions, access_pb2.HttpServed]",
                          access_pb2.http_served)
"""`(protomesh.options.v1.http_served)` on a service."""


def declared_public(options: descriptor_pb2.MethodOptions) -> bool:
    """Whether a method's options declare it public (the one reading the gateway and the chassis share)."""
    return options.HasExtension(ACCESS_OPTION) and options.Extensions[ACCESS_OPTION].public


class InvalidClaims(ValueError):
    """The claims header is not base64url JSON of an object with a subject."""


class Unauthenticated(ServiceError):
    """No verified principal where the contract needs one (HTTP 401)."""

    code = grpc.StatusCode.UNAUTHENTICATED


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a user, a service (account or mesh service) or an API key."""

    subject: str
    """`sub`: `<user id>`, `client:<client id>`, `service:<name>` or `apikey:<key id>`."""
    kind: Kind = "user"
    """What the subject is."""
    organization: str = ""
    """`org`: the organization the token was issued for ("" when none)."""
    roles: frozenset[str] = field(default_factory=frozenset)
    """`roles`: the subject's role names in that organization."""
    scopes: frozenset[str] = field(default_factory=frozenset)
    """`scope`: what the token (or key) was granted."""
    client_id: str = ""
    """`client_id`: the OAuth client the token was issued to."""
    token_id: str = ""
    """`jti`: the token's id ("" for an API key or a service's own principal)."""
    api_key_id: str = ""
    """`key_id`: the API key's id, for kind `api_key`."""
    platform_admin: bool = False
    """`admin`: a platform administrator (every organization)."""

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        """The principal a verified JWT payload (or the API-key claims ext_authz sets) names."""
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidClaims("the claims carry no subject ('sub')")
        kind = claims.get("kind", "user")
        if kind not in _KINDS:
            raise InvalidClaims(f"unknown principal kind {kind!r}; expected one of {sorted(_KINDS)}")
        scope = claims.get("scope", "")
        roles = claims.get("roles", ())
        return cls(
            subject=subject,
            kind=kind,
            organization=_text(claims.get("org")),
            roles=frozenset(str(r) for r in roles) if isinstance(roles, list | tuple) else frozenset(),
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            client_id=_text(claims.get("client_id")),
            token_id=_text(claims.get("jti")),
            api_key_id=_text(claims.get("key_id")),
            platform_admin=claims.get("admin") is True,
        )

    def claims(self) -> dict[str, Any]:
        """The claim names the mesh uses for this principal (the inverse of from_claims)."""
        claims: dict[str, Any] = {"sub": self.subject, "kind": self.kind}
        for name, value in (("org", self.organization), ("client_id", self.client_id), ("jti", self.token_id),
                            ("key_id", self.api_key_id)):
            if value:
                claims[name] = value
        if self.roles:
            claims["roles"] = sorted(self.roles)
        if self.scopes:
            claims["scope"] = " ".join(sorted(self.scopes))
        if self.platform_admin:
            claims["admin"] = True
        return claims

    def header(self) -> str:
        """The `x-protomesh-claims` value naming this principal (base64url JSON, no padding)."""
        return _header(self)

    def has_scope(self, scope: str) -> bool:
        """Whether the principal was granted `scope`."""
        return scope in self.scopes


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@functools.lru_cache(maxsize=1024)
def _header(principal: Principal) -> str:
    # A service's own principal is encoded on every event and task it handles: once is enough.
    return encode_claims(principal.claims())


def encode_claims(claims: Mapping[str, Any]) -> str:
    """Claims as the header carries them: compact JSON, base64url without padding."""
    raw = json.dumps(dict(claims), separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@functools.lru_cache(maxsize=4096)
def parse_claims_header(value: str) -> Principal:
    """The principal in an `x-protomesh-claims` value (padded or not); InvalidClaims if it is not one.

    Cached: a client repeats its token on every call, and the principal is immutable.
    """
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        claims = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidClaims(f"the claims header is not base64url JSON: {exc}") from None
    if not isinstance(claims, dict):
        raise InvalidClaims("the claims header is not a JSON object")
    return Principal.from_claims(claims)


_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)


def current_principal() -> Principal | None:
    """The principal of the call being served (or the service's own, in its consumers and loops); None if anonymous."""
    return _principal.get()


def require_principal() -> Principal:
    """The current principal; UNAUTHENTICATED when there is none (a public method called without credentials)."""
    principal = _principal.get()
    if principal is None:
        raise Unauthenticated(HOW_TO_AUTHENTICATE)
    return principal


def set_principal(principal: Principal | None) -> contextvars.Token[Principal | None]:
    """Make `principal` current in this context (the interceptor does it per call); returns the reset token."""
    return _principal.set(principal)


def reset_principal(token: contextvars.Token[Principal | None]) -> None:
    """Undo a set_principal (tests, and code that sets a principal for a block)."""
    _principal.reset(token)


def service_principal(name: str) -> Principal:
    """A mesh service's own principal, for work no caller started (events, tasks, sweepers)."""
    return _service_principal(name)


@functools.cache
def _service_principal(name: str) -> Principal:
    # The `member` role (docs/authorization.md): what a mesh service does on its own is a member's work,
    # in the organization of the event or task it handles (chassis.acting_for sets it). Without one, its
    # tenant has no organization and the stores' queries match nothing (chassis.authz.Tenant).
    return Principal(subject=f"service:{name}", kind="service", roles=frozenset({"member"}),
                     scopes=frozenset({"mesh"}))


def claims_metadata() -> tuple[tuple[str, str], ...]:
    """The claims header of the current principal, for call contexts that start here (consumers, tasks)."""
    principal = _principal.get()
    return ((CLAIMS_HEADER, principal.header()),) if principal is not None else ()


@contextlib.contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    """Run the block as `principal`: current_principal() and outbound calls' claims header name it."""
    token = _principal.set(principal)
    call = current_call.get()
    headers = tuple((k, v) for k, v in (call.headers if call else ()) if k != CLAIMS_HEADER)
    call_token = current_call.set(CallContext(call.deadline if call else None,
                                              (*headers, (CLAIMS_HEADER, principal.header()))))
    try:
        yield principal
    finally:
        current_call.reset(call_token)
        _principal.reset(token)


def act_as_service(name: str) -> None:
    """Make the service's own principal current for the rest of this task (chassis.server, per replica).

    Everything the replica starts from here inherits it: its lifespan, event consumers, task workers
    and background loops, and their outbound calls carry its claims. Served calls replace it with
    their caller's (or none) in the call interceptor.
    """
    principal = service_principal(name)
    _principal.set(principal)
    call = current_call.get()
    headers = tuple((k, v) for k, v in (call.headers if call else ()) if k != CLAIMS_HEADER)
    current_call.set(CallContext(call.deadline if call else None, (*headers, (CLAIMS_HEADER, principal.header()))))
