"""Test helpers shared by every service's tests: a real local mesh and a small JSON-over-HTTP client.

Authentication is on in every mesh (docs/identity.md): a client built from a mesh (`RestClient.for_mesh`,
`mesh_channel`) sends the local admin's bearer token, refreshed through the CLI session of the mesh's
state folder as it expires; `rest.anonymous()` / `mesh_channel(mesh, authenticated=False)` call
without one.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import grpc

from chassis.identity import CLAIMS_HEADER
from chassis.tls import TlsFiles
from chassis.tooling.identity_session import take_admin_password
from chassis.tooling.infra.ports import free_port
from chassis.tooling.pki import DEFAULT_LIFETIME_SECONDS
from chassis.tooling.supervisor import IDENTITY_SERVICE, SUPERVISOR_IDENTITY, Mesh, MeshOptions, replica_channel

# Fast health flips and short grace periods keep tests quick; nothing here changes behaviour.
TEST_SERVICE_ENV = {"HEALTH_INTERVAL_SECONDS": "0.3", "SHUTDOWN_GRACE_SECONDS": "5", "LOG_LEVEL": "INFO",
                    "DB_POOL_MIN": "1", "DB_POOL_MAX": "5", "DB_ACQUIRE_TIMEOUT_SECONDS": "2"}


@contextlib.contextmanager
def running_mesh(state_dir: Path | None = None, *, replicas: int = 2, database_url: str | None = None,
                 extra_env: dict[str, str] | None = None, only: list[str] | None = None,
                 identity_replicas: int | None = None, cert_lifetime_seconds: float | None = None) -> Iterator[Mesh]:
    """A whole mesh on free ports (PostgreSQL without fsync), stopped by PID afterwards.

    `only` limits which services run (tests of one service need not boot the others); the identity
    service always runs too (the supervisor adds it: no protected call passes the gateway without
    it), with one replica unless `only` names it or `identity_replicas` says otherwise (two cores).
    Without `state_dir` the mesh lives in a fresh folder under /tmp that is removed afterwards: not
    under pytest's tmp_path, whose root every new pytest session resets to 0700, which would lock
    out PostgreSQL's unprivileged system user in the middle of a run.
    """
    own_dir = state_dir is None
    if state_dir is None:
        state_dir = Path(tempfile.mkdtemp(prefix="protomesh-test-"))
    if identity_replicas is None:
        identity_replicas = replicas if only is not None and IDENTITY_SERVICE in only else 1
    options = MeshOptions(state_dir=state_dir, gateway_port=free_port(), default_replicas=replicas,
                          replicas={IDENTITY_SERVICE: identity_replicas},
                          database_url=database_url, durable=False, only=only,
                          service_env={**TEST_SERVICE_ENV, **(extra_env or {})},
                          cert_lifetime_seconds=cert_lifetime_seconds or DEFAULT_LIFETIME_SECONDS)
    mesh = Mesh(options)
    try:
        mesh.start()
        take_admin_password(state_dir)  # a generated one is shown to no one in tests: not left in the file
        yield mesh
    finally:
        mesh.stop()
        if own_dir:
            shutil.rmtree(state_dir, ignore_errors=True)


@dataclass(frozen=True)
class Reply:
    """An HTTP reply with its JSON body decoded (or the raw text when it is not JSON)."""

    status: int
    body: Any
    headers: dict[str, str]

    def field_violations(self) -> dict[str, str]:
        """field -> description from a google.rpc.BadRequest detail in an error body."""
        found: dict[str, str] = {}
        for detail in (self.body or {}).get("details", []) if isinstance(self.body, dict) else []:
            if detail.get("@type", "").endswith("google.rpc.BadRequest"):
                for violation in detail.get("field_violations", detail.get("fieldViolations", [])):
                    found[violation["field"]] = violation["description"]
        return found


TokenSource = Callable[[], "str | None"]
"""Gives the bearer token to send now (None: none); called per request, so a long test outlives a token."""


class RestClient:
    """JSON over HTTP/1.1 with the standard library, for calls through the gateway.

    `headers` go with every request; `token` (when given) is asked per request and sent as
    `Authorization: Bearer`, unless the request sets its own `authorization` header.
    """

    def __init__(self, base_url: str, timeout: float = 10.0, *, headers: dict[str, str] | None = None,
                 token: TokenSource | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.token = token

    @classmethod
    def for_mesh(cls, mesh: Mesh, timeout: float = 10.0, *, authenticated: bool = True) -> RestClient:
        """A client of the mesh's gateway, calling as the local admin unless `authenticated` is False."""
        return cls(f"http://{mesh.gateway}", timeout, token=mesh.token if authenticated else None)

    def anonymous(self) -> RestClient:
        """The same client without the token (to see what a caller without credentials gets)."""
        return type(self)(self.base_url, self.timeout, headers=self.headers)

    def with_headers(self, headers: dict[str, str]) -> RestClient:
        """The same client (token included) with more default headers, e.g. an API key."""
        return type(self)(self.base_url, self.timeout, headers={**self.headers, **headers}, token=self.token)

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header this client sends now (empty when anonymous)."""
        token = self.token() if self.token else None
        return {"authorization": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> Reply:
        """Send one request; HTTP errors are returned, not raised."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        sent = {"content-type": "application/json", **self.headers, **(headers or {})}
        if not any(key.lower() == "authorization" for key in sent):
            sent.update(self.auth_headers())
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=sent)  # noqa: S310 the test mesh's gateway URL (http://127.0.0.1)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (same reason)
                status, payload, head = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            status, payload, head = error.code, error.read(), dict(error.headers)
        try:
            decoded = json.loads(payload) if payload else None
        except ValueError:
            decoded = payload.decode(errors="replace")
        return Reply(status, decoded, head)

    def get(self, path: str) -> Reply:
        """GET path."""
        return self.call("GET", path)

    def post(self, path: str, body: Any = None) -> Reply:
        """POST a JSON body."""
        return self.call("POST", path, body if body is not None else {})

    def put(self, path: str, body: Any) -> Reply:
        """PUT a JSON body."""
        return self.call("PUT", path, body)

    def delete(self, path: str) -> Reply:
        """DELETE path."""
        return self.call("DELETE", path)


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class _CallDetailsWithMetadata(_CallDetails, grpc.ClientCallDetails):
    """grpc.ClientCallDetails as the interceptor API wants it (a named tuple that is also the interface)."""


class BearerInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                        grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call that does not carry its own authorization.

    With `header` set to another name (the claims header), it adds `header: <value>` instead, the value
    from `token` as it is: what a call straight to a replica carries in place of the gateway's work.
    """

    def __init__(self, token: TokenSource, header: str = "authorization") -> None:
        self._token = token
        self._header = header

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = list(details.metadata or ())
        value = None if any(key == self._header for key, _ in metadata) else self._token()
        if value:
            metadata.append((self._header, f"Bearer {value}" if self._header == "authorization" else value))
        return _CallDetailsWithMetadata(details.method, details.timeout, metadata, details.credentials,
                                        getattr(details, "wait_for_ready", None),
                                        getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        """Unary call with the token."""
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        """Server-streaming call with the token."""
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        """Client-streaming call with the token."""
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        """Bidirectional call with the token."""
        return continuation(self._details(client_call_details), request_iterator)


@contextlib.contextmanager
def mesh_channel(mesh: Mesh, *, authenticated: bool = True, target: str | None = None,
                 options: Sequence[tuple[str, Any]] = ()) -> Iterator[grpc.Channel]:
    """A gRPC channel to the mesh's gateway whose calls carry the local admin's token.

    With `target` (a replica's address: no gateway in between) the channel is mTLS with a certificate
    of the mesh's trust domain (the supervisor's: what another replica would present), and the calls
    carry what the gateway would forward for that token instead, its verified claims as
    `x-protomesh-claims`. Stubs built on it need no metadata argument; a call that passes its own
    `authorization` (or claims) keeps it.
    """
    opened = (grpc.insecure_channel(mesh.gateway, options=list(options)) if target is None
              else replica_channel(target, mesh_client_tls(mesh), replica_service(mesh, target), list(options)))
    with opened as channel:
        if not authenticated:
            yield channel
        elif target is None:
            yield grpc.intercept_channel(channel, BearerInterceptor(mesh.token))
        else:
            yield grpc.intercept_channel(channel, BearerInterceptor(lambda: forwarded_claims(mesh), CLAIMS_HEADER))


def mesh_client_tls(mesh: Mesh) -> TlsFiles:
    """A client certificate of the mesh's trust domain (the supervisor's), like a replica presents."""
    return mesh.tls_files(SUPERVISOR_IDENTITY)


def replica_service(mesh: Mesh, target: str) -> str:
    """The service of the replica at `target` (host:port): what its certificate names."""
    for name, replicas in mesh.replicas.items():
        if any(replica.address == target for replica in replicas):
            return name
    raise ValueError(f"no replica of this mesh listens on {target}")


def forwarded_claims(mesh: Mesh) -> str | None:
    """What Envoy forwards to a replica for the admin's token: its verified payload, base64url (the JWT's
    payload segment, as `forward_payload_header` sends it)."""
    token = mesh.token()
    return token.split(".")[1] if token else None


def eventually(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1, what: str = "") -> Any:
    """Poll check() until it returns a truthy value; fail with `what` after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}; last value: {last!r}")
