"""The service catalog, read from the contracts' descriptor set: services, methods, HTTP rules, idempotency, access."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# Importing annotations_pb2 registers the google.api.http extension, so MethodOptions parsed
# after this import carry it as a known extension rather than as unknown bytes.
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

from chassis.contracts import mesh_grpc_services
from chassis.identity import ACCESS_OPTION, HTTP_SERVED_OPTION, declared_public
from chassis.paths import DESCRIPTOR_SET
from chassis.resilience.policy import MethodPolicy, PolicyBook
from protomesh.options.v1 import access_pb2

_PACKAGE = re.compile(r"^protomesh\.(?P<name>[a-z][a-z0-9_]*)\.v(?P<major>\d+)$")
_VERBS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class HttpRule:
    """One REST binding of a method, from its ``google.api.http`` option."""

    verb: str
    """HTTP method in upper case (GET, POST, ...), or the custom verb's kind."""
    path: str
    """Path template, e.g. ``/v1/agents/{agent_id}``."""
    body: str = ""
    """Request field mapped to the body: "" (none), "*" (whole request) or a field name."""
    response_body: str = ""
    """Response field returned as the body; "" means the whole response."""


@dataclass(frozen=True)
class MeshMethod:
    """One RPC of a gRPC service, with what the gateway needs to know about it."""

    name: str
    """Method name, e.g. ``GetAgent``."""
    service: str
    """Full name of its gRPC service, e.g. ``protomesh.agent.v1.AgentService``."""
    input_type: str
    """Full name of the request message."""
    output_type: str
    """Full name of the response message."""
    idempotency_level: str
    """``IDEMPOTENCY_UNKNOWN``, ``NO_SIDE_EFFECTS`` or ``IDEMPOTENT`` (standard MethodOptions)."""
    http: HttpRule | None = None
    """Primary REST binding, None if the method has no ``google.api.http`` option."""
    additional_http: list[HttpRule] = field(default_factory=list)
    """Further bindings from ``additional_bindings``."""
    client_streaming: bool = False
    """Whether the client sends a stream."""
    server_streaming: bool = False
    """Whether the server answers with a stream."""
    policy: MethodPolicy = field(default_factory=MethodPolicy)
    """Timeout and retries from the contract's protomesh.options.v1 options: the runtime's clients and
    Envoy's routes both use this one value."""
    public: bool = False
    """Whether the contract declares it public (`(protomesh.options.v1.access) = {public: true}`): callable
    without a credential. Every other method needs an authenticated principal."""
    authenticated: bool = False
    """Whether it declares `{authenticated: true}`: any verified principal, no permission."""
    permission: str = ""
    """The permission it declares (`agents.execute`), "" when public or authenticated only."""
    resource: str = "RESOURCE_UNSPECIFIED"
    """Its resource rule's name (`RESOURCE_ORGANIZATION`, `RESOURCE_OWNER`, `RESOURCE_SHARED`)."""
    access_declared: bool = False
    """Whether the method carries an access option at all (the contract test requires one: default deny)."""

    @property
    def grpc_path(self) -> str:
        """HTTP/2 path of the method, e.g. ``/protomesh.agent.v1.AgentService/GetAgent``."""
        return f"/{self.service}/{self.name}"

    @property
    def idempotent(self) -> bool:
        """Whether repeating the call is safe (NO_SIDE_EFFECTS or IDEMPOTENT), so it may be retried."""
        return self.idempotency_level in ("NO_SIDE_EFFECTS", "IDEMPOTENT")

    @property
    def http_rules(self) -> list[HttpRule]:
        """All REST bindings, the primary one first."""
        return ([self.http] if self.http else []) + list(self.additional_http)


@dataclass(frozen=True)
class HttpServedService:
    """A gRPC service of the contracts whose REST paths the replica answers itself over HTTP (not transcoded).

    Declared with `option (protomesh.options.v1.http_served) = {deployable: "..."}`: the gateway routes
    its google.api.http paths to that deployable's HTTP listener (the `<deployable>_http` cluster).
    """

    name: str
    """Full name, e.g. ``protomesh.identity.v1.OidcService``."""
    deployable: str
    """The mesh service whose replicas serve it (their registry entries carry ``http_port``)."""
    methods: list[MeshMethod]
    """Its methods, each with its HTTP rules."""

    @property
    def cluster(self) -> str:
        """Envoy's cluster of the deployable's HTTP listeners."""
        return http_cluster(self.deployable)


def http_cluster(deployable: str) -> str:
    """The Envoy cluster name of a deployable's HTTP listeners, e.g. ``identity_http``."""
    return f"{deployable}_http"


@dataclass(frozen=True)
class MeshService:
    """A deployable mesh service: one proto package ``protomesh.<name>.v<N>`` that declares services."""

    name: str
    """Short name, e.g. ``agent``: cluster, folder, env prefix and registry name."""
    module: str
    """Python package of its implementation, e.g. ``services.agent``."""
    packages: list[str]
    """Proto packages it serves, e.g. ``["protomesh.agent.v1"]``."""
    grpc_services: list[str]
    """Full names of its gRPC services; the first is the one health checks ask about."""
    methods: list[MeshMethod]
    """Every method of every one of its gRPC services."""
    http_served: list[HttpServedService] = field(default_factory=list)
    """Services of its packages served over HTTP by a deployable, not over gRPC (not in grpc_services)."""

    def method(self, name: str) -> MeshMethod:
        """The method called `name` (short name, or full ``Service/Method`` / gRPC path)."""
        for method in self.methods:
            if name in (method.name, f"{method.service}/{method.name}", method.grpc_path):
                return method
        raise KeyError(f"service {self.name!r} has no method {name!r}; it has {[m.name for m in self.methods]}")


@dataclass(frozen=True)
class Catalog:
    """Every mesh service the contracts declare, in a stable (sorted) order."""

    services: list[MeshService]
    """The services, sorted by name."""
    descriptor_set: Path
    """The descriptor set file the catalog was read from (Envoy's transcoder loads the same file)."""

    def service(self, name: str) -> MeshService:
        """The service called `name`, e.g. ``agent``."""
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(f"no mesh service {name!r} in {self.descriptor_set}; known: {self.names}")

    @property
    def names(self) -> list[str]:
        """Short names of all services."""
        return [s.name for s in self.services]

    @property
    def grpc_services(self) -> list[str]:
        """Full names of all gRPC services of all mesh services."""
        return [g for s in self.services for g in s.grpc_services]

    def methods(self) -> Iterator[MeshMethod]:
        """Every method of every service."""
        for service in self.services:
            yield from service.methods

    def public_methods(self) -> list[MeshMethod]:
        """Methods served over gRPC (and transcoded REST) that the contracts declare public."""
        return [method for method in self.methods() if method.public]

    @property
    def http_served(self) -> list[HttpServedService]:
        """Every service answered over HTTP by a deployable's own listener."""
        return [served for service in self.services for served in service.http_served]

    def __iter__(self) -> Iterator[MeshService]:
        return iter(self.services)

    def __len__(self) -> int:
        return len(self.services)


def load_catalog(descriptor_set: Path = DESCRIPTOR_SET) -> Catalog:
    """Read the catalog from a FileDescriptorSet (``gen/protomesh.binpb`` by default)."""
    try:
        data = Path(descriptor_set).read_bytes()
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"descriptor set {descriptor_set} is missing; regenerate it with scripts/gen_protos"
        ) from exc
    files = descriptor_pb2.FileDescriptorSet.FromString(data).file
    mesh_grpc_services()  # loads every contract into the default pool, where PolicyBook reads options
    policies = PolicyBook()
    by_name: dict[str, tuple[list[str], list[str], list[MeshMethod], list[HttpServedService]]] = {}
    for file in files:
        match = _PACKAGE.match(file.package)
        if match is None or not file.service:
            continue
        packages, grpc_services, methods, http_served = by_name.setdefault(match["name"], ([], [], [], []))
        if file.package not in packages:
            packages.append(file.package)
        for service in file.service:
            full_name = f"{file.package}.{service.name}"
            served = [_method(full_name, m, policies) for m in service.method]
            if service.options.HasExtension(HTTP_SERVED_OPTION):
                deployable = service.options.Extensions[HTTP_SERVED_OPTION].deployable or match["name"]
                http_served.append(HttpServedService(full_name, deployable, served))
                continue
            grpc_services.append(full_name)
            methods.extend(served)
    services = [
        MeshService(
            name=name,
            module=f"services.{name}",
            packages=packages,
            grpc_services=grpc_services,
            methods=methods,
            http_served=http_served,
        )
        for name, (packages, grpc_services, methods, http_served) in sorted(by_name.items())
    ]
    return Catalog(services=services, descriptor_set=Path(descriptor_set))


def _method(service: str, proto: descriptor_pb2.MethodDescriptorProto, policies: PolicyBook) -> MeshMethod:
    options = proto.options
    access = options.Extensions[ACCESS_OPTION]
    rules: list[HttpRule] = []
    if options.HasExtension(annotations_pb2.http):
        rule = options.Extensions[annotations_pb2.http]
        rules = [_http_rule(rule), *(_http_rule(extra) for extra in rule.additional_bindings)]
    level = descriptor_pb2.MethodOptions.IdempotencyLevel.Name(options.idempotency_level)
    return MeshMethod(
        name=proto.name,
        service=service,
        input_type=proto.input_type.lstrip("."),
        output_type=proto.output_type.lstrip("."),
        idempotency_level=level,
        http=rules[0] if rules else None,
        additional_http=rules[1:],
        client_streaming=proto.client_streaming,
        server_streaming=proto.server_streaming,
        policy=policies.method(service, proto.name),
        public=declared_public(options),
        authenticated=access.authenticated,
        permission=access.permission,
        resource=access_pb2.Resource.Name(access.resource),
        access_declared=options.HasExtension(ACCESS_OPTION),
    )


def _http_rule(rule: http_pb2.HttpRule) -> HttpRule:
    kind = rule.WhichOneof("pattern")
    if kind == "custom":
        verb, path = rule.custom.kind.upper(), rule.custom.path
    elif kind in _VERBS:
        verb, path = kind.upper(), getattr(rule, kind)
    else:
        raise ValueError(f"google.api.http rule without a pattern: {rule}")
    return HttpRule(verb=verb, path=path, body=rule.body, response_body=rule.response_body)
