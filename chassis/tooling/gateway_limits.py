"""The gateway's limits, declared once; chassis.tooling.envoy_config turns them into Envoy config.

Every number a client can run into at the gateway (body size, timeouts, connections, buffers)
lives here, so the generated Envoy config, the tests and the docs read one value.
"""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class BodyClass:
    """Methods whose requests may carry more than the default body limit."""

    name: str
    max_request_bytes: int
    methods: tuple[str, ...]
    """gRPC paths, e.g. ``/protomesh.context.v1.ContextService/AddLayer``; the generator rejects unknown ones."""


# Chosen from the contracts' HTTP rules: these are the only body-carrying routes whose payload is
# user data of open size (a layer's JSON, an integration call's parameters, which may hold a stored
# object as base64). Their services cap them below this (CONTEXT_MAX_LAYER_BYTES up to 4 MiB,
# INTEGRATION_MAX_PARAMETERS_BYTES, a 5 MiB storage object as base64), and a replica accepts
# gRPC messages up to 8 MiB (chassis.server), so a larger body could never succeed anyway.
PAYLOAD = BodyClass(
    name="payload",
    max_request_bytes=8 * MIB,
    methods=(
        "/protomesh.context.v1.ContextService/AddLayer",
        "/protomesh.context.v1.ContextService/UpdateLayer",
        "/protomesh.integration.v1.IntegrationService/InvokeIntegration",
        # Boundaries: a 50,000-position GeoJSON polygon (FIELD_MAX_BOUNDARY_POSITIONS) is about 2 MB, and
        # an import of 1,000 surveyed fields several.
        "/protomesh.field.v1.FieldService/CreateField",
        "/protomesh.field.v1.FieldService/ChangeBoundary",
        "/protomesh.field.v1.FieldService/SplitField",
        "/protomesh.field.v1.FieldService/ImportFields",
    ),
)


@dataclass(frozen=True)
class GatewayLimits:
    """What Envoy allows a client (seconds and bytes)."""

    max_request_bytes: int = 1 * MIB
    """Default request body limit (REST JSON or a gRPC message stream); beyond it 413 before forwarding."""
    body_classes: tuple[BodyClass, ...] = (PAYLOAD,)
    max_response_bytes: int = 32 * MIB
    """Largest response the transcoder turns into JSON; replicas are trusted, this only bounds Envoy's memory."""
    request_headers_timeout: float = 10.0
    """A client must finish sending its headers within this (slowloris)."""
    request_timeout: float = 60.0
    """A client must finish sending its whole request (headers and body) within this (a slow body)."""
    stream_idle_timeout: float = 300.0
    """A request with no bytes moving either way for this long is reset; longer than every route timeout."""
    idle_timeout: float = 60.0
    """A connection without requests is closed after this."""
    max_connection_duration: float = 600.0
    """Every connection is drained after this, so clients re-balance and none lives forever."""
    drain_timeout: float = 5.0
    """Grace between telling a client a connection will close (idle, too old) and closing it."""
    max_connections: int = 10_000
    """Downstream connections Envoy holds at once; beyond this it closes new ones at accept."""
    connection_buffer_bytes: int = 32 * KIB
    """Read/write buffer per downstream connection: a fast or huge client is slowed by flow control instead."""
    upstream_buffer_bytes: int = 1 * MIB
    """The same per connection to a replica."""
    max_request_headers_kb: int = 60
    """Total size of a request's headers (Envoy's default, stated here so it is one of our numbers)."""
    accept_http_10: bool = True
    """HTTP/1.0 is served (curl --http1.0, old load balancers' probes) rather than answered 426."""
    @property
    def largest_request_bytes(self) -> int:
        """The biggest body any route accepts."""
        return max([self.max_request_bytes, *(c.max_request_bytes for c in self.body_classes)])

    def body_limit(self, grpc_path: str) -> int:
        """The request body limit of one method."""
        for body_class in self.body_classes:
            if grpc_path in body_class.methods:
                return body_class.max_request_bytes
        return self.max_request_bytes

    def describe_body_limits(self) -> str:
        """One sentence a 413 carries, so a client learns the limit it hit."""
        parts = [f"at most {self.max_request_bytes} bytes"]
        for body_class in self.body_classes:
            names = ", ".join(path.rsplit("/", 1)[-1] for path in body_class.methods)
            parts.append(f"{body_class.max_request_bytes} for {names}")
        return "; ".join(parts)


GATEWAY_LIMITS = GatewayLimits()
"""The limits every generated gateway uses unless a test passes its own."""
