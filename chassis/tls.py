"""mTLS inside the mesh, at run time: a replica's server and client credentials, reloaded as they rotate.

The supervisor (chassis.tooling.supervisor; an init step in compose/Kubernetes) gives each replica
three files through the environment: MESH_TLS_CERT, MESH_TLS_KEY and MESH_TLS_CA (see
chassis.tooling.pki: a certificate naming `spiffe://protomesh.local/<service>`, signed by the mesh's
CA). With them the replica

- serves gRPC (and its HTTP listener) over TLS only, and requires a client certificate signed by the
  same CA: a plaintext connection, or a certificate of another CA, fails the handshake;
- calls other replicas (chassis.client) with its own certificate as the client certificate, and checks
  the callee's certificate names the service it meant to call (DNS SAN `<service>.protomesh.local`);
- trusts `x-protomesh-claims` only from a peer whose certificate carries a SPIFFE id of the trust
  domain (`trusted_peer`): the gateway's or another replica's, which forward claims legitimately.

Rotation: the files are replaced in place before they expire. The server looks at them (a stat, at
most once a second) whenever a connection's handshake starts, so new connections get the new
certificate while established ones go on; clients compare `generation` and open new channels.

Plaintext is used only when configured so: `MESH_TLS=off` (chassis.config refuses to start a replica
that has neither the three files nor that), or a Settings built in code without `tls` (in-process tests).
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from chassis.cert_validity import not_after

logger = logging.getLogger(__name__)

TRUST_DOMAIN = "protomesh.local"
SPIFFE_PREFIX = f"spiffe://{TRUST_DOMAIN}/"
RELOAD_CHECK_SECONDS = 1.0
"""How often (at most) the files are looked at for a renewal."""


@dataclass(frozen=True)
class TlsFiles:
    """Where a replica's credentials are (MESH_TLS_CERT / MESH_TLS_KEY / MESH_TLS_CA)."""

    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True)
class _Material:
    cert: bytes
    key: bytes
    ca: bytes
    expires: float


def server_name(service: str) -> str:
    """The DNS name a workload certificate of `service` carries; clients check the server against it."""
    return f"{service}.{TRUST_DOMAIN}"


class MeshTls:
    """One replica's credentials, reloaded from their files when they change."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self.generation = 0
        """Bumped on every reload: a client holding credentials of an older generation makes new channels."""
        self._lock = threading.Lock()
        self._signature = self._stat()
        self._material = self._load()
        self._checked = time.monotonic()
        self._channel_credentials: tuple[int, grpc.ChannelCredentials] | None = None

    def _stat(self) -> tuple[tuple[int, int], ...]:
        return tuple((s.st_mtime_ns, s.st_size) for s in (os.stat(p) for p in (self.files.cert, self.files.key,
                                                                                 self.files.ca)))

    def _load(self) -> _Material:
        cert, key, ca = (p.read_bytes() for p in (self.files.cert, self.files.key, self.files.ca))
        material = _Material(cert, key, ca, not_after(cert))
        # A renewal writes the key, then the certificate: in between they do not match, and the
        # previous pair is kept until they do. OpenSSL checks the pair as it loads it (the standard
        # library's ssl, not `cryptography`, which would cost every replica ~8 MB RSS).
        try:
            _server_context(material)
        except ssl.SSLError as exc:
            raise ValueError(f"{self.files.key} does not belong to {self.files.cert}: {exc}") from exc
        return material

    def refresh(self) -> bool:
        """Reload the files if they changed (looked at most once per RELOAD_CHECK_SECONDS); True if reloaded."""
        now = time.monotonic()
        with self._lock:
            if now - self._checked < RELOAD_CHECK_SECONDS:
                return False
            self._checked = now
            try:
                signature = self._stat()
                if signature == self._signature:
                    return False
                material = self._load()
            except (OSError, ValueError) as exc:
                # Mid-renewal (or gone): keep serving with what we have; the next look tries again.
                logger.debug("mesh certificate not reloaded yet: %s", exc)
                return False
            self._signature, self._material = signature, material
            self.generation += 1
        logger.info("mesh certificate reloaded", extra={"generation": self.generation,
                                                        "expires_in_seconds": round(material.expires - time.time())})
        return True

    @property
    def material(self) -> _Material:
        return self._material

    # --- gRPC ----------------------------------------------------------------------------------------------

    def server_credentials(self) -> grpc.ServerCredentials:
        """Server credentials requiring a client certificate of the mesh's CA; rotated per new connection."""
        served = self.generation

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            # Called by gRPC before each handshake: None keeps the current certificate.
            nonlocal served
            self.refresh()
            if self.generation == served:
                return None
            served = self.generation
            return self._server_configuration()

        # The stubs say the fetcher returns a configuration; gRPC documents None as "keep the current one".
        return grpc.dynamic_ssl_server_credentials(self._server_configuration(), fetch,  # type: ignore[arg-type]
                                                   require_client_authentication=True)

    def _server_configuration(self) -> grpc.ServerCertificateConfiguration:
        material = self._material
        return grpc.ssl_server_certificate_configuration([(material.key, material.cert)], material.ca)

    def channel_credentials(self) -> tuple[int, grpc.ChannelCredentials]:
        """(generation, credentials) presenting this replica's certificate and trusting the mesh's CA."""
        self.refresh()
        cached = self._channel_credentials
        if cached is None or cached[0] != self.generation:
            material = self._material
            cached = (self.generation, grpc.ssl_channel_credentials(material.ca, material.key, material.cert))
            self._channel_credentials = cached
        return cached

    def secure_channel(self, target: str, service: str, *, options: Sequence[tuple[str, Any]] = (),
                       interceptors: Sequence[Any] | None = None) -> grpc.aio.Channel:
        """An asyncio channel to a replica of `service`, whose certificate must name that service."""
        _, credentials = self.channel_credentials()
        return grpc.aio.secure_channel(target, credentials, options=[*channel_options(service), *options],
                                       interceptors=interceptors)

    # --- HTTP (aiohttp listener) ---------------------------------------------------------------------------

    def server_ssl_context(self) -> ssl.SSLContext:
        """An ssl context for an HTTP listener: this certificate, client certificates of the mesh's CA required.

        Each handshake looks for a renewal first (the SNI callback swaps in a context with the new
        files), like the gRPC server does.
        """
        contexts: dict[int, ssl.SSLContext] = {}

        def latest() -> ssl.SSLContext:
            context = contexts.get(self.generation)
            if context is None:
                context = _server_context(self._material)
                context.sni_callback = on_hello
                contexts.clear()
                contexts[self.generation] = context
            return context

        def on_hello(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, current: ssl.SSLContext) -> None:
            self.refresh()
            newest = latest()
            if newest is not current:
                sock.context = newest

        return latest()


def _server_context(material: _Material) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=material.ca.decode())
    # The ssl module loads a key pair from files only: a private temporary folder, removed at once.
    with tempfile.TemporaryDirectory(prefix="protomesh-tls-") as folder:
        cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(material.key)
        cert.write_bytes(material.cert)
        context.load_cert_chain(cert, key)
    return context


def channel_options(service: str) -> list[tuple[str, Any]]:
    """Channel options making the client check the server's certificate names `service`."""
    return [("grpc.ssl_target_name_override", server_name(service))]


def peer_spiffe_id(context: grpc.aio.ServicerContext | grpc.ServicerContext) -> str | None:
    """The SPIFFE id of the peer's client certificate (None on a plaintext connection)."""
    values = (context.auth_context() or {}).get("peer_spiffe_id") or ()
    for value in values:
        return value.decode() if isinstance(value, bytes) else str(value)
    return None


def trusted_peer(context: grpc.aio.ServicerContext | grpc.ServicerContext) -> bool:
    """Whether the connection may carry `x-protomesh-claims`: the gateway or a replica of the trust domain.

    With mTLS on, the handshake already refused every certificate the mesh's CA did not sign, and the
    CA signs only workloads of the trust domain: this is the check that says so on the call itself.
    Without mTLS (configured plaintext: in-process tests) every peer is trusted as before.
    """
    if _current is None:
        return True
    peer = peer_spiffe_id(context)
    return peer is not None and peer.startswith(SPIFFE_PREFIX)


_current: MeshTls | None = None


def configure(files: TlsFiles | None) -> MeshTls | None:
    """Make `files` the credentials of this process (chassis.server, once per replica); None: plaintext."""
    global _current
    _current = MeshTls(files) if files is not None else None
    return _current


def current() -> MeshTls | None:
    """This process's mesh credentials, or None when it runs plaintext."""
    return _current
