"""mTLS inside the mesh (docs/authorization.md): real replicas, a real Envoy, certificates from the mesh's CA.

A replica reached directly refuses a plaintext connection, a TLS connection without a client
certificate and a certificate of another CA (even one naming the same SPIFFE id); with a certificate
of the trust domain it answers. The gateway reaches replicas (gRPC and the identity HTTP listener)
over mTLS. Certificates rotate before they expire without a failed call.

Claims trust: a replica calling another forwards the caller's claims legitimately, so the claims
header counts on any connection from a certificate of the trust domain (the gateway's or a
replica's); a plaintext or foreign connection never reaches the point of sending one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chassis import tls
from chassis.client import ServiceClient
from chassis.config import Settings
from chassis.registry import Instance
from chassis.server import serve
from chassis.service import Service
from chassis.testing import FAST_SETTINGS
from chassis.tls import MeshTls, TlsFiles, peer_spiffe_id, server_name
from chassis.tooling.eds import eds_path
from chassis.tooling.mesh_testing import (
    RestClient,
    eventually,
    mesh_channel,
    mesh_client_tls,
    running_mesh,
)
from chassis.tooling.pki import LocalCA
from chassis.tooling.supervisor import Mesh, ReplicaProcess, replica_channel
from protomesh.agent.v1 import agent_service_pb2 as agent_pb
from protomesh.agent.v1.agent_service_pb2_grpc import (
    AgentServiceServicer,
    AgentServiceStub,
    add_AgentServiceServicer_to_server,
)
from protomesh.identity.v1 import api_key_service_pb2 as pb
from protomesh.identity.v1.api_key_service_pb2_grpc import ApiKeyServiceStub

SERVICE = "identity"
"""The service these tests reach: every mesh runs it (and its HTTP listener), so the mesh is one service."""


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    with running_mesh(only=[SERVICE], replicas=1) as mesh:
        yield mesh


def _health(channel: grpc.Channel) -> grpc.StatusCode | int:
    """SERVING's number, or the error code of the call."""
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        return error.code()
    return int(reply.status)


def _replica(mesh: Mesh) -> ReplicaProcess:
    return mesh.replicas[SERVICE][0]


def _foreign(tmp: Path) -> TlsFiles:
    """A certificate of a second CA (another trust domain) that names the same SPIFFE id as a replica."""
    issued = LocalCA(tmp / "foreign-ca").issue(f"{SERVICE}-9", SERVICE, 3600)
    return TlsFiles(issued.cert, issued.key, issued.ca)


def test_a_replica_refuses_plaintext_no_certificate_and_a_foreign_ca(mesh: Mesh, tmp_path: Path) -> None:
    target = _replica(mesh).address
    with grpc.insecure_channel(target) as plaintext:
        assert _health(plaintext) == grpc.StatusCode.UNAVAILABLE
    ours = mesh_client_tls(mesh)
    # TLS that trusts the mesh's CA but presents no client certificate: the replica requires one.
    anonymous = grpc.ssl_channel_credentials(ours.ca.read_bytes())
    with grpc.secure_channel(target, anonymous, options=[("grpc.ssl_target_name_override",
                                                          server_name(SERVICE))]) as channel:
        assert _health(channel) == grpc.StatusCode.UNAVAILABLE
    foreign = _foreign(tmp_path)
    # The foreign client trusts our CA (so only the replica's check of the client can refuse it).
    foreign_client = TlsFiles(foreign.cert, foreign.key, ours.ca)
    with replica_channel(target, foreign_client, SERVICE) as channel:
        assert _health(channel) == grpc.StatusCode.UNAVAILABLE
    with replica_channel(target, ours, SERVICE) as channel:
        assert _health(channel) == health_pb2.HealthCheckResponse.SERVING


def test_a_replica_with_a_mesh_certificate_answers_a_protected_call_with_forwarded_claims(mesh: Mesh) -> None:
    with mesh_channel(mesh, target=_replica(mesh).address) as channel:
        reply = ApiKeyServiceStub(channel).ListApiKeys(pb.ListApiKeysRequest(), timeout=10)
    assert reply is not None
    # Without claims the same mTLS connection is anonymous: the replica, not the handshake, says 401.
    with mesh_channel(mesh, target=_replica(mesh).address, authenticated=False) as channel, \
            pytest.raises(grpc.RpcError) as refused:
        ApiKeyServiceStub(channel).ListApiKeys(pb.ListApiKeysRequest(), timeout=10)
    assert isinstance(refused.value, grpc.Call) and refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_the_client_checks_the_server_names_the_service_it_meant(mesh: Mesh) -> None:
    # The replica's certificate names identity: a client that meant to reach agent refuses it.
    with replica_channel(_replica(mesh).address, mesh_client_tls(mesh), "agent") as channel:
        assert _health(channel) == grpc.StatusCode.UNAVAILABLE


def test_the_gateway_reaches_replicas_over_mtls(mesh: Mesh) -> None:
    rest = RestClient.for_mesh(mesh)
    assert rest.get("/v1/apikeys").status == 200
    with mesh_channel(mesh) as channel:
        ApiKeyServiceStub(channel).ListApiKeys(pb.ListApiKeysRequest(), timeout=10)
    # A token was verified (JWKS over identity_http) and the call routed: Envoy's TLS counters say how.
    stats = _envoy_stats(mesh)
    for cluster in (SERVICE, "identity_http"):
        assert stats.get(f"cluster.{cluster}.ssl.handshake", 0) > 0, cluster
        assert stats.get(f"cluster.{cluster}.ssl.connection_error", 0) == 0, cluster


def test_the_identity_http_listener_requires_a_mesh_certificate(mesh: Mesh, tmp_path: Path) -> None:
    endpoints = json.loads(eds_path(mesh.state_dir / "eds", "identity_http").read_text())
    address = endpoints["resources"][0]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    host, port = address["address"], address["port_value"]
    with pytest.raises(OSError):  # plaintext HTTP to a TLS listener: no HTTP answer
        urllib.request.urlopen(f"http://{host}:{port}/oauth2/jwks", timeout=5)
    ours = mesh_client_tls(mesh)
    for client in (None, _foreign(tmp_path)):
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            _https_get(host, port, "/oauth2/jwks", ours.ca, client)
    status, body = _https_get(host, port, "/oauth2/jwks", ours.ca, ours)
    assert status == 200 and json.loads(body)["keys"]


def test_certificates_rotate_before_they_expire_without_a_failed_call() -> None:
    lifetime = 20.0
    with running_mesh(only=[SERVICE], replicas=1, cert_lifetime_seconds=lifetime) as mesh:
        replica = _replica(mesh)
        first = _served_certificate(replica.address, mesh)
        rest = RestClient.for_mesh(mesh)
        failures: list[str] = []
        calls = 0
        stop = threading.Event()

        def stream() -> None:
            nonlocal calls
            deadline = time.monotonic() + 90
            while not stop.is_set() and time.monotonic() < deadline:  # bounded in time and count
                reply = rest.get("/v1/apikeys")
                calls += 1
                if reply.status != 200:
                    failures.append(f"{reply.status} {reply.body}")
                time.sleep(0.05)

        caller = threading.Thread(target=stream)
        caller.start()
        try:
            # Past the first certificate's expiry: the replica and Envoy must have moved to new ones.
            eventually(lambda: time.time() > first.not_valid_after_utc.timestamp() + 2,
                       timeout=lifetime + 10, interval=0.5, what="the first certificate's expiry")
            renewed = _served_certificate(replica.address, mesh)
            assert renewed.serial_number != first.serial_number
            assert renewed.not_valid_after_utc > first.not_valid_after_utc
            # A new replica now needs Envoy's renewed client certificate (the first one has expired).
            mesh._scale_to(SERVICE, 2)
        finally:
            stop.set()
            caller.join(timeout=30)
        assert calls > 50 and failures == [], failures[:5]
        stats = _envoy_stats(mesh)
        assert stats.get(f"cluster.{SERVICE}.ssl.connection_error", 0) == 0


def _served_certificate(address: str, mesh: Mesh) -> x509.Certificate:
    """The certificate a replica presents on a new connection (made with a current mesh certificate)."""
    host, _, port = address.rpartition(":")
    client = mesh_client_tls(mesh)
    context = _client_context(client.ca, client)
    context.check_hostname = False
    with socket.create_connection((host, int(port)), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=server_name(SERVICE)) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _client_context(ca: Path, client: TlsFiles | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2", "http/1.1"])
    if client is not None:
        context.load_cert_chain(client.cert, client.key)
    return context


def _https_get(host: str, port: int, path: str, ca: Path, client: TlsFiles | None) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False  # the listener's certificate names identity.protomesh.local, not 127.0.0.1
    if client is not None:
        context.load_cert_chain(client.cert, client.key)
    with socket.create_connection((host, port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=server_name("identity")) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: identity\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head:
        raise ConnectionError("no HTTP answer")
    return int(head.split()[1]), body


def _envoy_stats(mesh: Mesh) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{mesh.admin_port}/stats?format=json", timeout=5) as reply:
        stats = json.loads(reply.read())["stats"]
    return {s["name"]: int(s["value"]) for s in stats if "value" in s and isinstance(s["value"], int | float)}


class _Agent(AgentServiceServicer):
    """Answers GetInfo and remembers the serial of every client certificate it was called with."""

    def __init__(self) -> None:
        self.client_serials: set[int] = set()

    async def GetInfo(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        (pem,) = (context.auth_context() or {})["x509_pem_cert"]
        self.client_serials.add(x509.load_pem_x509_certificate(pem).serial_number)
        assert peer_spiffe_id(context) == "spiffe://protomesh.local/caller"
        return agent_pb.GetInfoResponse()


class _OneInstance:
    """A registry that knows one instance (the client under test needs nothing more)."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance

    async def watch(self, service: str, *, healthy_only: bool = True) -> AsyncIterator[list[Instance]]:
        yield [self.instance]
        await asyncio.Event().wait()

    async def instances(self, service: str, *, healthy_only: bool = True) -> list[Instance]:
        return [self.instance]

    async def register(self, instance: Instance) -> None:
        return None

    heartbeat = deregister = register

    async def close(self) -> None:
        return None


async def test_a_replica_calling_a_replica_presents_its_renewed_certificate(tmp_path: Path) -> None:
    """chassis.client opens new channels with the renewed certificate; no call fails across renewals."""
    ca = LocalCA(tmp_path / "ca")
    lifetime = 4.5
    caller, callee = ca.issue("caller-1", "caller", lifetime), ca.issue("agent-1", "agent", lifetime)
    servicer = _Agent()
    server = grpc.aio.server()
    add_AgentServiceServicer_to_server(servicer, server)
    port = server.add_secure_port("127.0.0.1:0", MeshTls(TlsFiles(callee.cert, callee.key, callee.ca))
                                  .server_credentials())
    await server.start()
    tls.configure(TlsFiles(caller.cert, caller.key, caller.ca))
    client = ServiceClient(_OneInstance(Instance(service="agent", instance_id="agent-1", address="127.0.0.1",
                                                 port=port)), "agent", AgentServiceStub,
                           grpc_service="protomesh.agent.v1.AgentService")
    try:
        await client.start(wait=5)
        deadline = time.monotonic() + 2.5 * lifetime
        renew_at = time.monotonic() + lifetime * 2 / 3
        calls = 0
        while time.monotonic() < deadline:  # bounded: about 15 s of calls, 20 a second
            if time.monotonic() >= renew_at:  # what the supervisor's renewal does, for both replicas
                caller, callee = ca.issue("caller-1", "caller", lifetime), ca.issue("agent-1", "agent", lifetime)
                renew_at = time.monotonic() + lifetime * 2 / 3
            await client.stub.GetInfo(agent_pb.GetInfoRequest(), timeout=5)
            calls += 1
            await asyncio.sleep(0.05)
        assert calls > 100
        assert len(servicer.client_serials) >= 3, "the client kept presenting its first certificate"
    finally:
        await client.close()
        tls.configure(None)
        await server.stop(0)


async def test_a_replica_has_its_mesh_credentials_before_its_lifespan_opens_clients(tmp_path: Path) -> None:
    """Discovery and the lifespan's clients make channels as soon as the registry lists a replica: the
    credentials must be in place before either starts, or those channels are plaintext for good and every
    call on them fails its handshake (CI saw the agent's calls to context fail that way)."""
    issued = LocalCA(tmp_path / "ca").issue("caller-1", "caller", 3600)
    seen: list[MeshTls | None] = []

    @contextlib.asynccontextmanager
    async def lifespan(replica: Any, settings: Any) -> AsyncIterator[None]:
        seen.append(tls.current())
        yield None

    class Caller(AgentServiceServicer):
        def __init__(self, replica: Any, deps: Any) -> None:
            pass

    service = Service(name="caller", description="records the credentials its lifespan sees",
                      servicers=[Caller], lifespan=lifespan)
    settings = Settings.from_env("caller", {**FAST_SETTINGS, "MESH_TLS": "on", "MESH_TLS_CERT": str(issued.cert),
                                            "MESH_TLS_KEY": str(issued.key), "MESH_TLS_CA": str(issued.ca)})
    stop = asyncio.Event()
    started: list[Any] = []
    task = asyncio.create_task(serve(service, settings, stop=stop, started=started.append))
    try:
        for _ in range(400):  # bounded: 20 s
            if started or task.done():
                break
            await asyncio.sleep(0.05)
        assert started and not task.done(), task.exception() if task.done() else "did not start within 20 s"
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        tls.configure(None)
    assert len(seen) == 1 and seen[0] is not None and seen[0].files.cert == issued.cert
