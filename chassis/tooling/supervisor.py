"""The local mesh: PostgreSQL, nats-server, every service's replicas and Envoy, started and stopped in order."""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import importlib.util
import json
import logging
import os
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chassis.interceptors import INSTANCE_HEADER
from chassis.paths import DESCRIPTOR_SET, REPO_ROOT
from chassis.registry import Instance, registry_from_env
from chassis.tls import TlsFiles, channel_options
from chassis.tooling import bootstrap, gateway_faults, identity_session, pki
from chassis.tooling.apidocs.docs_page import write_docs_page
from chassis.tooling.apidocs.migration_notes import migration_notes
from chassis.tooling.apidocs.served import ServedDocument, write_api_documents
from chassis.tooling.catalog import Catalog, MeshMethod, MeshService, load_catalog
from chassis.tooling.credentials import SUPERVISOR_USER, MeshCredentials, private_dir, write_private
from chassis.tooling.eds import RegistryBridge
from chassis.tooling.envoy_config import UpstreamTls, build_envoy_config, write_sds
from chassis.tooling.gateway_auth import http_deployables
from chassis.tooling.infra.envoy import EnvoyProcess
from chassis.tooling.infra.nats import NatsProcess
from chassis.tooling.infra.ports import LOOPBACK, free_port
from chassis.tooling.infra.postgres import PostgresProcess
from chassis.tooling.infra.process import InfraError, ManagedProcess, ensure_port_free
from chassis.tooling.nats_auth import mesh_users
from chassis.tooling.trace_store import TraceCollector

logger = logging.getLogger(__name__)

STATE_FILE = "mesh.json"
INFRA_RESTART_DELAY_SECONDS = 3.0
DESIRED_FILE = "desired.json"
"""`protomesh scale` writes the wanted replica counts here; the supervisor applies them."""
IDENTITY_SERVICE = "identity"
"""The deployable that issues and checks credentials: every mesh that runs a service runs it too, since
the gateway refuses protected calls without it (docs/identity.md)."""
# pragma: allowlist nextline secret - the name of a variable or Secret, not a value
ADMIN_PASSWORD_ENV = "PROTOMESH_ADMIN_PASSWORD"  # noqa: S105 the name of a variable or Secret, not a value
"""The local admin's password on the first start (else generated); only identity replicas get it."""
IDENTITY_READY_TIMEOUT = 60.0


LOCAL_DB_POOL_MIN = "1"
"""PostgreSQL connections each replica of the local mesh keeps open while idle."""


@dataclass(frozen=True)
class Probe:
    """The read-only method the supervisor calls through the gateway to see which replicas answer."""

    method: MeshMethod
    public: bool
    """Callable without a credential (the `access` option): then the probe needs no token."""


def probe_method(service: MeshService) -> Probe | None:
    """A side-effect-free gRPC method of service the gateway routes, a public one if there is one.

    The catalog leaves out `http_served` services (the OAuth endpoints): they are HTTP only.
    """
    candidates = [m for m in service.methods if m.idempotency_level == "NO_SIDE_EFFECTS"]
    public = [m for m in candidates if m.public]
    if public:
        return Probe(public[0], public=True)
    return Probe(candidates[0], public=False) if candidates else None


SUPERVISOR_IDENTITY = "supervisor"
"""The workload name of the supervisor's own certificate (its probes straight to replicas; test helpers)."""


def replica_channel(address: str, files: TlsFiles | None, service: str,
                    options: list[tuple[str, Any]] | None = None) -> grpc.Channel:
    """A blocking channel straight to a replica of `service`: mTLS with `files` (a mesh certificate), or plaintext."""
    if files is None:
        return grpc.insecure_channel(address, options=options)
    credentials = grpc.ssl_channel_credentials(files.ca.read_bytes(), files.key.read_bytes(), files.cert.read_bytes())
    return grpc.secure_channel(address, credentials, options=[*channel_options(service), *(options or [])])


def grpc_serving(address: str, service: str = "", timeout: float = 1.0, *, files: TlsFiles | None = None,
                 mesh_service: str = "") -> bool:
    """Whether the gRPC server at address reports SERVING for service (over mTLS with `files` when given;
    `mesh_service` is the server's service name its certificate must carry)."""
    try:
        with replica_channel(address, files, mesh_service) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
    except grpc.RpcError:
        return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


class ReplicaProcess(ManagedProcess):
    """One replica of a service: `python -m services.<name>` on its own port; ready when SERVING."""

    start_timeout = 90.0

    def __init__(self, service: MeshService, index: int, port: int, env: dict[str, str], log_dir: Path,
                 *, probe_tls: TlsFiles | None = None) -> None:
        self.service = service
        self.index = index
        self.port = port
        self.probe_tls = probe_tls
        """The certificate readiness probes present (the supervisor's); None for a plaintext replica."""
        self.instance_id = f"{service.name}-{index}"
        self.name = f"{service.name} replica {index}"
        inherited = {k: v for k, v in os.environ.items() if k != ADMIN_PASSWORD_ENV}
        child_env = {
            **inherited,  # the admin password reaches only the replicas `env` gives it to (identity's)
            **env,
            "GRPC_HOST": LOOPBACK,
            "GRPC_PORT": str(port),
            "INSTANCE_ID": self.instance_id,
            "OTEL_SERVICE_NAME": service.name,
            "PYTHONUNBUFFERED": "1",
        }
        super().__init__(
            [sys.executable, "-m", service.module],
            log_path=log_dir / f"{self.instance_id}.log",
            env=child_env,
            cwd=REPO_ROOT,
        )

    @property
    def address(self) -> str:
        """host:port of the replica's gRPC server."""
        return f"{LOOPBACK}:{self.port}"

    def before_start(self) -> None:
        """The replica's port must be free."""
        self.check_port(self.name, LOOPBACK, self.port)

    def serving(self, grpc_service: str = "", timeout: float = 1.0) -> bool:
        """Whether this replica reports SERVING for grpc_service, asked straight over mTLS."""
        return grpc_serving(self.address, grpc_service, timeout, files=self.probe_tls, mesh_service=self.service.name)

    def wait_ready(self, timeout: float) -> None:
        """Ready when the gRPC health service says SERVING."""
        self.poll_until(self.serving, timeout, "gRPC health SERVING", interval=0.2)


@dataclass
class MeshOptions:
    """What `protomesh up` starts."""

    state_dir: Path
    gateway_port: int = 8080
    replicas: dict[str, int] = field(default_factory=dict)
    default_replicas: int = 2
    database_url: str | None = None
    nats_url: str | None = None
    consul_http_addr: str | None = None
    """When set, replicas register in Consul and Envoy follows Consul instead of NATS KV."""
    durable: bool = True
    """False only in tests: PostgreSQL without fsync."""
    service_env: dict[str, str] = field(default_factory=dict)
    """Extra environment for every replica (e.g. LOG_LEVEL)."""
    only: list[str] | None = None
    """Run only these services (the gateway still knows every contract); None runs all. The identity
    service is always added: without it no protected call passes the gateway."""
    cert_lifetime_seconds: float = pki.DEFAULT_LIFETIME_SECONDS
    """Lifetime of the replicas' and the gateway's certificates (renewed at 2/3 of it); tests shorten it."""


class Mesh:
    """Starts, watches and stops the whole local mesh; writes its state to <state_dir>/mesh.json."""

    def __init__(self, options: MeshOptions, catalog: Catalog | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.catalog = catalog or load_catalog(DESCRIPTOR_SET)
        self.progress = progress or (lambda message: logger.info(message))
        self.state_dir = options.state_dir.resolve()
        self.log_dir = self.state_dir / "logs"
        self.postgres: PostgresProcess | None = None
        self.nats: NatsProcess | None = None
        self.replicas: dict[str, list[ReplicaProcess]] = {}
        self.envoy: EnvoyProcess | None = None
        self.bridge: RegistryBridge | None = None
        self.collector: TraceCollector | None = None
        self.otlp_endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        self.admin_port = 0
        self._api_documents: list[ServedDocument] | None = None
        self._next_index: dict[str, int] = {}
        self._started = False
        """True once everything is up: only then does mesh.json exist (`up --detach` waits for it)."""
        self._down_since: dict[str, float] = {}
        """When each dead process was first seen dead (infrastructure restarts after a pause, so outages show)."""
        self.database_url = options.database_url or ""
        self.nats_url = options.nats_url or ""
        """The supervisor's own URLs (the operator's: superuser, NATS user with every permission)."""
        self.credentials = MeshCredentials(self.state_dir)
        self.service_database_urls: dict[str, str] = {}
        self.service_nats_urls: dict[str, str] = {}
        """Each service's own role and NATS user (embedded servers only; given URLs are passed as they are)."""
        self.pki_dir = self.state_dir / "pki"
        self.ca: pki.LocalCA | None = None
        self._issued: dict[str, tuple[str, pki.Issued]] = {}
        """workload name -> (service, credentials): what the renewal thread keeps fresh."""
        self._issued_lock = threading.Lock()
        self._renewing = threading.Event()
        self._renewal_thread: threading.Thread | None = None

    @property
    def gateway(self) -> str:
        """host:port of Envoy's one listener (REST and gRPC)."""
        return f"{LOOPBACK}:{self.options.gateway_port}"

    @property
    def issuer(self) -> str:
        """The identity provider's public URL: the gateway's (tokens' `iss`; the OAuth endpoints are under it)."""
        return f"http://{self.gateway}"

    @property
    def runs_identity(self) -> bool:
        """Whether the contracts declare the identity service and it is implemented (then the mesh runs it)."""
        if IDENTITY_SERVICE not in self.catalog.names:
            return False
        # While the service is being built its contract exists before its package can start.
        module = self.catalog.service(IDENTITY_SERVICE).module
        return all(importlib.util.find_spec(f"{module}.{part}") is not None for part in ("__main__", "app"))

    def token(self) -> str | None:
        """An access token of the CLI session (the local admin's unless `protomesh login` replaced it).

        None when the mesh has no identity service or no usable session: probes then call anonymously.
        """
        if not self.runs_identity:
            return None
        try:
            return identity_session.access_token(self.state_dir)
        except identity_session.SessionError as exc:
            # A database that was reset gives a new first start, whose bootstrap may land after the
            # replica reported SERVING: adopt it and try once more.
            if identity_session.adopt_bootstrap(self.state_dir, self.issuer) is None:
                logger.debug("no access token for the supervisor's probes: %s", exc)
                return None
        try:
            return identity_session.access_token(self.state_dir)
        except identity_session.SessionError:
            return None

    def auth_headers(self) -> dict[str, str]:
        """HTTP headers carrying the session's bearer token (empty without one)."""
        token = self.token()
        return {"authorization": f"Bearer {token}"} if token else {}

    def auth_metadata(self) -> tuple[tuple[str, str], ...]:
        """gRPC metadata carrying the session's bearer token (empty without one)."""
        token = self.token()
        return (("authorization", f"Bearer {token}"),) if token else ()

    def replica_count(self, service: str) -> int:
        """How many replicas the options ask for."""
        return self.options.replicas.get(service, self.options.default_replicas)

    def _step(self, what: str, action: Callable[[], Any]) -> None:
        started = time.monotonic()
        self.progress(f"==> {what} ...")
        action()
        self.progress(f"    {what}: ok ({time.monotonic() - started:.1f}s)")

    def start(self) -> None:
        """Start everything in dependency order and wait until all of it is healthy."""
        unknown = (set(self.options.replicas) | set(self.options.only or ())) - set(self.catalog.names)
        if unknown:
            raise InfraError(f"unknown service(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(s.name for s in self.catalog.services)}")
        ensure_port_free("gateway (Envoy)", LOOPBACK, self.options.gateway_port,
                         "stop whatever uses it, or pass --port to use another port")
        self._private_state()
        try:
            self._start_pki()
            if not self.database_url:
                self.postgres = PostgresProcess(self.state_dir / "pgdata", durable=self.options.durable,
                                                log_path=self.log_dir / "postgres.log",
                                                password_file=self.credentials.postgres_superuser())
                self._step("PostgreSQL 16 (embedded)", self.postgres.start)
                self.database_url = self.postgres.url
                self._step("a role and schema per service", self._provision_roles)
            if not self.nats_url:
                self.nats = NatsProcess(self.state_dir / "nats", durable=self.options.durable,
                                        log_path=self.log_dir / "nats.log",
                                        users=mesh_users(self.catalog, self.credentials))
                self._step("nats-server with JetStream (a user per service)", self.nats.start)
                self.nats_url = self.nats.url_for(SUPERVISOR_USER)
                self.service_nats_urls = {name: self.nats.url_for(name) for name in self.catalog.names}
            if not self.otlp_endpoint:
                # No trace backend given: keep traces on disk for `protomesh traces`.
                self.collector = TraceCollector(self.state_dir / "traces")
                self.collector.start()
                self.otlp_endpoint = self.collector.endpoint
            self.bridge = RegistryBridge(
                lambda: registry_from_env(self.options.consul_http_addr, self.nats_url),
                self.catalog.names, self.state_dir / "eds", on_change=self._registry_changed,
                http_services=http_deployables(self.catalog))
            self.bridge.start()
            self.admin_port = free_port()
            self.envoy = self.new_envoy()
            self._step(f"Envoy gateway on {self.gateway}", self.envoy.start)
            self.fault_sync = gateway_faults.follow_from(self.nats_url, self.admin_address, self.catalog)
            # Every replica of every service boots at once; then each service is waited for, identity
            # first: the others' readiness probes go through the gateway with the admin's token.
            names = self._services_to_run()
            for name in names:
                self.replicas[name] = []
                self._scale_to(name, self.replica_count(name), wait=False, ready=False)
            for name in names:
                what = f"{name} service x{self.replica_count(name)}"
                if name == IDENTITY_SERVICE:
                    what += " (and the gateway's token checks)"
                self._step(what, functools.partial(self._ready, name))
            self._started = True
            self.write_state()
        except BaseException:
            self.stop()
            raise

    def _services_to_run(self) -> list[str]:
        """The services this start runs, identity first (see MeshOptions.only)."""
        wanted = set(self.catalog.names if self.options.only is None else self.options.only)
        if self.runs_identity:
            wanted.add(IDENTITY_SERVICE)
        else:
            wanted.discard(IDENTITY_SERVICE)  # declared, not implemented yet: nothing to start
        return sorted(wanted, key=lambda name: (name != IDENTITY_SERVICE, name))

    def _identity_ready(self) -> None:
        """After the identity replicas serve: the CLI session exists and the gateway verifies tokens.

        The replica's first start leaves the admin's refresh token in bootstrap.json; it moves into
        the CLI session (the admin password, if one was generated, stays for `protomesh up` to show
        once: see take_admin_password). Then the gateway must serve the JWKS, and a token minted
        through it must be accepted on a protected route (identity's own probe, in wait_routed),
        before the mesh reports ready: the first authenticated call a user makes then works.
        """
        deadline = time.monotonic() + IDENTITY_READY_TIMEOUT
        while True:
            identity_session.adopt_bootstrap(self.state_dir, self.issuer)
            if identity_session.read_session(self.state_dir) is not None or time.monotonic() > deadline - 30:
                break
            time.sleep(0.2)  # a first start writes bootstrap.json while it comes up
        identity_session.follow_issuer(self.state_dir, self.issuer)
        if identity_session.read_session(self.state_dir) is None:
            self.progress(f"!!  no CLI session in {identity_session.session_path(self.state_dir)} (this is not the "
                          "mesh's first start and the session is gone): run `protomesh login`")
        jwks = f"{self.issuer}/oauth2/jwks"
        while not _jwks_served(jwks):
            if time.monotonic() > deadline:
                raise InfraError(f"the gateway does not serve the identity service's JWKS at {jwks} after "
                                 f"{IDENTITY_READY_TIMEOUT:.0f}s; see {self.log_dir}")
            time.sleep(0.2)

    # --- mTLS: the local CA, every workload's certificate, renewal (docs/authorization.md) -------------------

    def _start_pki(self) -> None:
        """The CA in <state>/pki (kept across starts), the gateway's and the supervisor's certificates,
        and the thread renewing every certificate at 2/3 of its life."""
        self.ca = pki.LocalCA(self.pki_dir)
        self.issue(pki.GATEWAY, pki.GATEWAY)
        self.issue(SUPERVISOR_IDENTITY, SUPERVISOR_IDENTITY)
        self._renewing.clear()
        self._renewal_thread = threading.Thread(target=self._renew_loop, name="pki-renewal", daemon=True)
        self._renewal_thread.start()

    def issue(self, name: str, service: str) -> TlsFiles:
        """Issue workload `name`'s certificate for `service` (renewed from now on); its files."""
        if self.ca is None:
            raise InfraError("the mesh's CA is not open yet (Mesh.start opens it)")
        issued = self.ca.issue(name, service, self.options.cert_lifetime_seconds)
        with self._issued_lock:
            self._issued[name] = (service, issued)
        return TlsFiles(issued.cert, issued.key, issued.ca)

    @staticmethod
    def probe_files(state_dir: Path) -> TlsFiles | None:
        """The supervisor's certificate in a mesh's state folder, for probes from another process
        (`protomesh status`); None before the mesh issued one."""
        issued = state_dir / "pki" / SUPERVISOR_IDENTITY
        files = TlsFiles(issued / "cert.pem", issued / "key.pem", issued / "ca.pem")
        return files if files.cert.exists() else None

    def tls_files(self, name: str) -> TlsFiles:
        """The files of an issued workload certificate (e.g. SUPERVISOR_IDENTITY's, to dial a replica)."""
        _, issued = self._issued[name]
        return TlsFiles(issued.cert, issued.key, issued.ca)

    def _renew_loop(self) -> None:
        # Looks often enough for the shortest lifetime (tests use seconds), renews what is due.
        interval = max(0.2, min(5.0, self.options.cert_lifetime_seconds / 40))
        while not self._renewing.wait(interval):
            with self._issued_lock:
                due = [(name, service) for name, (service, issued) in self._issued.items()
                       if time.time() >= issued.renew_after]
            for name, service in due:
                try:
                    self.issue(name, service)
                    logger.info("certificate renewed", extra={"workload": name})
                except OSError as exc:  # a full disk: try again on the next round, the old one is still valid
                    logger.warning("certificate renewal failed", extra={"workload": name, "error": str(exc)})

    def _private_state(self) -> None:
        """The state folder and what is in it are the owner's alone: 0700 folders, 0600 files.

        Files an earlier version left readable are tightened too. PostgreSQL, when we run as root,
        then lets its own system user's group through the state folder (see infra.postgres).
        """
        private_dir(self.state_dir)
        for folder in (self.log_dir, self.state_dir / "traces"):
            private_dir(folder)
            for path in folder.iterdir():
                if path.is_file():
                    path.chmod(0o600)
        for name in (STATE_FILE, DESIRED_FILE, "up.log"):
            with contextlib.suppress(FileNotFoundError):
                (self.state_dir / name).chmod(0o600)
        for folder in (self.state_dir / "nats", self.state_dir / "envoy", self.state_dir / "eds"):
            if folder.is_dir():
                folder.chmod(0o700)

    def _provision_roles(self) -> None:
        """One login role per service owning only its schema; replicas connect as their service's role."""
        assert self.postgres is not None  # noqa: S101 narrows a type for mypy, not a check of input: under -O only the error raised would differ
        passwords = {name: self.credentials.postgres_role(name) for name in self.catalog.names}
        self.service_database_urls = bootstrap.provision(self.database_url, passwords)

    def _replica_env(self, service: str) -> dict[str, str]:
        # PROTOMESH_STATE_DIR: where a replica may keep files of this mesh (the integration key file).
        # DB_POOL_MIN 1 (the chassis' default is 2): an idle local mesh keeps one PostgreSQL backend less
        # per replica (~13 MB RSS each, ~180 MB over the default mesh); the pool grows under load as before.
        env = {"DATABASE_URL": self.service_database_urls.get(service, self.database_url),
               "NATS_URL": self.service_nats_urls.get(service, self.nats_url),
               "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_endpoint,
               "DB_POOL_MIN": os.environ.get("DB_POOL_MIN", LOCAL_DB_POOL_MIN),
               "PROTOMESH_STATE_DIR": str(self.state_dir), **self.options.service_env}
        if self.options.consul_http_addr:
            env["CONSUL_HTTP_ADDR"] = self.options.consul_http_addr
        if service == IDENTITY_SERVICE:
            # The issuer is the gateway's URL (every OAuth endpoint is reached through it); the first
            # start writes the admin's session there (0600 in a 0700 folder) for _identity_ready.
            private_dir(identity_session.identity_dir(self.state_dir))
            env["IDENTITY_ISSUER"] = self.issuer
            env["IDENTITY_BOOTSTRAP_FILE"] = str(identity_session.bootstrap_path(self.state_dir))
            password = self.options.service_env.get(ADMIN_PASSWORD_ENV) or os.environ.get(ADMIN_PASSWORD_ENV)
            if password:
                env[ADMIN_PASSWORD_ENV] = password
        else:
            env.pop(ADMIN_PASSWORD_ENV, None)
        return env

    def _ready(self, service: str) -> None:
        for replica in self.replicas[service]:
            replica.ready()
        if service == IDENTITY_SERVICE:
            self._identity_ready()
        self.wait_routed(service, timeout=30)
        if service == IDENTITY_SERVICE:
            self._wait_token_accepted(timeout=30)

    def _scale_to(self, service: str, count: int, *, wait: bool = True, ready: bool = True) -> None:
        """Start or stop replicas until `count` run; wait until they serve (`ready`) and until the gateway
        routes to all of them (`wait`)."""
        replicas = self.replicas.setdefault(service, [])
        added = []
        while len(replicas) < count:
            replica = self.new_replica(service)
            replica.launch()
            replicas.append(replica)
            added.append(replica)
        if ready:  # launched together above, so they boot in parallel
            for replica in added:
                replica.ready()
        while len(replicas) > count:
            replica = replicas.pop()
            self.progress(f"    stopping {replica.instance_id}")
            replica.stop(timeout=15)
            with self._issued_lock:
                self._issued.pop(replica.instance_id, None)  # no longer renewed
        if wait:
            self.wait_routed(service, timeout=30)
        if self._started:
            self.write_state()

    def new_replica(self, service: str, extra_env: dict[str, str] | None = None) -> ReplicaProcess:
        """A replica of `service` with the next instance number, its certificate and environment, not started yet.

        `extra_env` goes on top of the mesh's (a release's green replicas: chassis.tooling.release).
        """
        index = self._next_index.get(service, 0) + 1
        self._next_index[service] = index
        # Each replica its own certificate naming its service (MESH_TLS_*: chassis.tls reloads it on renewal).
        files = self.issue(f"{service}-{index}", service)
        env = {**self._replica_env(service), "MESH_TLS_CERT": str(files.cert), "MESH_TLS_KEY": str(files.key),
               "MESH_TLS_CA": str(files.ca), **(extra_env or {})}
        return ReplicaProcess(self.catalog.service(service), index, free_port(), env, self.log_dir,
                              probe_tls=self.tls_files(SUPERVISOR_IDENTITY))

    def wait_routed(self, service: str, timeout: float) -> None:
        """Wait until calls through the gateway reach exactly this service's running replicas."""
        wanted = {r.instance_id for r in self.replicas.get(service, []) if r.is_running()}
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        while time.monotonic() < deadline:
            seen = self.answering_instances(service, calls=4 * max(len(wanted), 1))
            if seen == wanted:
                return
            time.sleep(0.1)
        probe = probe_method(self.catalog.service(service))
        unauthenticated = ""
        if probe is not None and not probe.public and self.runs_identity and self.token() is None:
            # Without a token every probe is refused at the gateway: say so, not just "no route".
            unauthenticated = (f"; the probes had no access token (the CLI session in "
                               f"{identity_session.session_path(self.state_dir)} was refused or is missing: "
                               "`protomesh login`)")
        raise InfraError(f"the gateway does not route to the {service} replicas {sorted(wanted)} after "
                         f"{timeout:.0f}s (it reached {sorted(seen)}){unauthenticated}; see {self.log_dir}")

    def _wait_token_accepted(self, timeout: float) -> None:
        """Wait until the gateway lets the session's token through to a protected identity method.

        Readiness probes may use public methods (health), so this is what shows Envoy has fetched the
        JWKS and verifies tokens: the first authenticated call after `up` then works.
        """
        protected = [m for m in self.catalog.service(IDENTITY_SERVICE).methods
                     if m.idempotency_level == "NO_SIDE_EFFECTS" and not m.public]
        if not protected or identity_session.read_session(self.state_dir) is None:
            return  # nothing to check with (the missing session was reported)
        probe = Probe(protected[0], public=False)
        deadline = time.monotonic() + timeout
        while not self.answering_instances(IDENTITY_SERVICE, calls=1, probe=probe):
            if time.monotonic() > deadline:
                raise InfraError(f"the gateway refuses the CLI session's token after {timeout:.0f}s (its JWKS "
                                 f"fetch, or the session in {identity_session.session_path(self.state_dir)}); "
                                 f"see {self.log_dir}")
            time.sleep(0.2)

    def answering_instances(self, service: str, calls: int, probe: Probe | None = None) -> set[str]:
        """Replicas that answer a read-only call sent through the gateway, by their instance header.

        The probe carries the CLI session's token unless the method is public: an answer (even an error)
        with an instance header then also shows the gateway verified the token.
        """
        probe = probe or probe_method(self.catalog.service(service))
        if probe is None:
            return set()
        metadata_out = () if probe.public else self.auth_metadata()
        seen: set[str] = set()
        with grpc.insecure_channel(self.gateway) as channel:
            call_probe: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(probe.method.grpc_path)
            for _ in range(calls):
                try:
                    _, call = call_probe.with_call(b"", timeout=2, metadata=metadata_out)
                    metadata = call.trailing_metadata()
                except grpc.RpcError as error:
                    # The error of a blocking call is also its grpc.Call (the stubs type RpcError's metadata apart).
                    metadata = error.trailing_metadata() if isinstance(error, grpc.Call) else ()
                seen |= {value for key, value in metadata or () if key == INSTANCE_HEADER and isinstance(value, str)}
        return seen

    def _registry_changed(self, service: str, instances: list[Instance]) -> None:
        logger.info("registry changed", extra={"service": service, "targets": [i.target for i in instances]})

    def apply_desired(self) -> None:
        """Apply replica counts written by `protomesh scale`, if any changed."""
        path = self.state_dir / DESIRED_FILE
        try:
            desired = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        for service, count in desired.items():
            if service in self.replicas and len(self.replicas[service]) != count:
                self.progress(f"==> scaling {service} from {len(self.replicas[service])} to {count}")
                try:
                    self._scale_to(service, int(count))
                    self.progress(f"    {service}: {count} replica(s), all routed")
                except InfraError as exc:
                    self.progress(f"!!  scaling {service} failed: {exc}")

    def _envoy_config(self) -> dict[str, Any]:
        otlp = urllib.parse.urlsplit(self.otlp_endpoint) if self.otlp_endpoint else None
        if self._api_documents is None:
            # Written once per mesh from the contracts it runs; Envoy serves them at /openapi.json etc.
            self._api_documents = [*write_api_documents(self.catalog, self.state_dir / "apidocs"),
                                   *write_docs_page(self.catalog, self.state_dir / "apidocs"),
                                   *migration_notes(self.catalog, self.state_dir / "apidocs")]  # docs/versions.md
        # The issuer the gateway's jwt_authn expects in `iss`: the same URL the identity replicas sign with.
        auth: dict[str, Any] = {"issuer": self.issuer} if self.runs_identity else {}
        # Envoy reaches every replica over mTLS with the gateway's certificate, reloaded through SDS files.
        upstream_tls = UpstreamTls(cert_dir=self.tls_files(pki.GATEWAY).cert.parent,
                                   sds_dir=self.state_dir / "envoy" / "sds")
        write_sds(upstream_tls)
        return build_envoy_config(self.catalog, {}, listen_port=self.options.gateway_port, upstream_tls=upstream_tls,
                                  admin_port=self.admin_port, descriptor_set=DESCRIPTOR_SET,
                                  eds_dir=self.state_dir / "eds", api_documents=self._api_documents,
                                  otlp=(otlp.hostname or LOOPBACK, otlp.port or 4317) if otlp else None, **auth)

    @property
    def admin_address(self) -> str:
        """host:port of Envoy's admin interface."""
        return f"{LOOPBACK}:{self.admin_port}"

    def new_envoy(self) -> EnvoyProcess:
        """The gateway's process, not started yet (chassis.tooling.hosts runs it on one of its hosts)."""
        return EnvoyProcess(self._envoy_config(), self.state_dir / "envoy")

    def all_processes(self) -> list[ManagedProcess]:
        """Every process the mesh started, in start order."""
        processes: list[ManagedProcess] = [p for p in (self.postgres, self.nats) if p is not None]
        for replicas in self.replicas.values():
            processes.extend(replicas)
        if self.envoy is not None:
            processes.append(self.envoy)
        return processes

    def restart_dead(self) -> list[str]:
        """Start again whatever exited on its own, on the same port and data.

        Replicas come back at once (Envoy's endpoints stay valid); PostgreSQL, NATS and Envoy after
        INFRA_RESTART_DELAY_SECONDS, so a person who stopped one on purpose sees the mesh report it
        (replicas NOT_SERVING, `protomesh status` DOWN) before it returns.
        """
        now = time.monotonic()
        restarted = []
        infrastructure_down = any(p.pid is not None and not p.is_running() for p in (self.postgres, self.nats) if p)
        for process in self.all_processes():
            if process.pid is None or process.is_running():
                self._down_since.pop(process.name, None)
                continue
            replica = isinstance(process, ReplicaProcess)
            delay = 0.0 if replica else INFRA_RESTART_DELAY_SECONDS
            if process.name not in self._down_since:
                self._down_since[process.name] = now
                self.progress(f"!!  {process.name} exited (code {process.returncode}); restarting it"
                              + (f" in {delay:.0f}s" if delay else ""))
            if now - self._down_since[process.name] < delay or (replica and infrastructure_down):
                continue  # replicas wait for PostgreSQL and NATS, which they need to start
            try:
                process.start()
            except InfraError as exc:
                self.progress(f"!!  {process.name} failed to restart (will try again): {exc}")
                self._down_since[process.name] = now
                continue
            self._down_since.pop(process.name, None)
            restarted.append(process.name)
            self.progress(f"    {process.name} is back (pid {process.pid})")
        if restarted:
            self.write_state()
        return restarted

    def stop(self) -> None:
        """Stop everything we started, in reverse order: gateway, services, NATS, PostgreSQL."""
        gateway_faults.stop(getattr(self, "fault_sync", None))  # before Envoy goes: it drives Envoy's runtime
        # The gateway first (no new calls), then replicas (they drain and deregister), then the rest.
        if self.envoy is not None and self.envoy.is_running():
            self.envoy.stop(timeout=15)
        running = [replica for replicas in self.replicas.values() for replica in replicas if replica.is_running()]
        if running:
            # All at once: each drains on its own (up to its grace), so one by one only added up their exits.
            with concurrent.futures.ThreadPoolExecutor(len(running), thread_name_prefix="stop") as pool:
                list(pool.map(lambda replica: replica.stop(timeout=15), running))
        if self.bridge is not None:
            self.bridge.stop()
        self._renewing.set()
        if self._renewal_thread is not None:
            self._renewal_thread.join(timeout=5)
        if self.collector is not None:
            self.collector.stop()
        for process in reversed(self.all_processes()):
            if process.is_running():
                process.stop(timeout=15)
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)
        (self.state_dir / DESIRED_FILE).unlink(missing_ok=True)

    def state(self) -> dict[str, Any]:
        """What `status` and `down` need to know about this mesh."""
        return {
            "supervisor_pid": os.getpid(),
            "gateway": self.gateway,
            "issuer": self.issuer if self.runs_identity else "",
            "admin": self.admin_address,
            "database_url": self.database_url,
            "nats_url": self.nats_url,
            "otlp_endpoint": self.otlp_endpoint,
            "traces_dir": str(self.state_dir / "traces"),
            "log_dir": str(self.log_dir),
            "started_at": time.time(),
            "replicas": {name: len(replicas) for name, replicas in self.replicas.items()},
            "processes": [
                {"name": p.name, "pid": p.pid, **({"address": p.address, "service": p.service.name,
                                                  "grpc_service": p.service.grpc_services[0]}
                                                 if isinstance(p, ReplicaProcess) else {})}
                for p in self.all_processes()
            ],
        }

    def write_state(self) -> None:
        """Write mesh.json atomically, readable by the owner only (it holds the operator's URLs)."""
        write_private(self.state_dir / STATE_FILE, json.dumps(self.state(), indent=2))


def _jwks_served(url: str) -> bool:
    """Whether url answers a JWKS with at least one key."""
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 an http:// URL the mesh builds from its own addresses, never a caller's
            return reply.status == 200 and bool(json.loads(reply.read()).get("keys"))
    except (OSError, ValueError, AttributeError):
        return False


def read_state(state_dir: Path) -> dict[str, Any] | None:
    """The state of a running mesh, or None when none is recorded or its supervisor is gone."""
    path = state_dir / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if pid_alive(state.get("supervisor_pid", 0)) else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (and is not a zombie)."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False
