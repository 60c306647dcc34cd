"""A service in the test's own process: its real lifespan and servicers, served on a free port.

    async with chassis.testing.serve_in_process(build(), database_url=pg_url, nats_url=nats_url) as svc:
        agents = svc.stub(AgentServiceStub)
        reply = await agents.RegisterAgent(pb.RegisterAgentRequest(name="a", type="calculator"))
        assert (await svc.deps.store.get(reply.agent.agent_id)) is not None

No Envoy and no subprocess: `chassis.server.serve` runs as a task of the test's event loop, so a test
calls the servicer over a real gRPC channel (interceptors, error details and all) and can reach into
the typed dependencies its lifespan opened.

There is no gateway to verify a token either, so the channel carries what Envoy would forward after
verifying one: the claims header (chassis.identity) of TEST_PRINCIPAL, an admin of a test
organization. `svc.stub(Stub, principal=None)` (or `svc.channel_as(None)`) calls anonymously,
`principal=Principal(...)` as someone else. The PostgreSQL and NATS servers come from the caller (the
test suite starts them once); this module only takes their URLs, and stays in the runtime half of the
chassis, importing nothing from `chassis.tooling`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import grpc
import psycopg
from psycopg import sql

from chassis.client import StubT
from chassis.config import Settings, load_settings
from chassis.identity import CLAIMS_HEADER, Principal
from chassis.replica import Replica
from chassis.server import serve
from chassis.service import Service

DepsT = TypeVar("DepsT")

FAST_SETTINGS: Mapping[str, str] = {
    "GRPC_HOST": "127.0.0.1",
    "GRPC_PORT": "0",
    "METRICS_PORT": "-1",
    "HEALTH_INTERVAL_SECONDS": "0.2",
    "SHUTDOWN_GRACE_SECONDS": "0.5",
    "STARTUP_TIMEOUT_SECONDS": "10",
    "DB_POOL_MIN": "1",
    "DB_POOL_MAX": "5",
    "LOG_LEVEL": "WARNING",
    "MESH_TLS": "off",  # the test's own channel is plaintext; mTLS is tested with certificates of its own
}
"""Runtime settings of an in-process replica: a free port, no /metrics server (its port would outlive
the test, and the registry exposes it), quick probes and a short grace so a test's exit is fast.
Anything here can be overridden by the `env` given to serve_in_process."""


TEST_ORGANIZATION = "org-test"
TEST_PRINCIPAL = Principal(subject="user-test-admin", kind="user", organization=TEST_ORGANIZATION,
                           roles=frozenset({"owner", "admin"}), scopes=frozenset({"openid", "profile", "email"}),
                           client_id="protomesh-test", token_id="test-token")  # noqa: S106 the id of the in-process test principal's token, not a credential
"""Who in-process test calls come from unless a test says otherwise: an owner and admin of a test organization,
holding every permission of that organization (not the platform-only ones: see TEST_PLATFORM_ADMIN)."""

TEST_PLATFORM_ADMIN = dataclasses.replace(TEST_PRINCIPAL, subject="user-test-platform-admin", platform_admin=True)
"""A platform admin (the `admin` claim): every permission, the platform-only ones (keys.rotate, users.write)
included, in every organization."""


def principal_with_role(role: str, *, subject: str = "", organization: str = TEST_ORGANIZATION) -> Principal:
    """A user holding just `role` ("viewer", "member", "admin", "owner") in `organization`, to call as in tests:

        svc.stub(AgentServiceStub, principal=principal_with_role("viewer")).RegisterAgent(...)  # PERMISSION_DENIED
    """
    return Principal(subject=subject or f"user-test-{role}", kind="user", organization=organization,
                     roles=frozenset({role}), scopes=frozenset({"openid"}), client_id="protomesh-test",
                     token_id=f"test-token-{role}")


class _Default:
    """Marks "the harness's default principal" where None already means "anonymous"."""


_DEFAULT = _Default()


class _ClaimsInterceptor(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor,
                         grpc.aio.StreamUnaryClientInterceptor, grpc.aio.StreamStreamClientInterceptor):
    """Adds a principal's claims header to every call, as the gateway does after verifying a token."""

    def __init__(self, principal: Principal) -> None:
        self._header = (CLAIMS_HEADER, principal.header())

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*[(k, v) for k, v in (details.metadata or ()) if k != CLAIMS_HEADER],
                                     self._header)
        return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                          details.wait_for_ready)

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)

    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)

    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any,
                                     request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)

    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any,
                                      request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


def channel_as(target: str, principal: Principal | None) -> grpc.aio.Channel:
    """An insecure channel to `target` whose calls carry `principal`'s claims (none: anonymous)."""
    interceptors = [_ClaimsInterceptor(principal)] if principal is not None else None
    return grpc.aio.insecure_channel(target, interceptors=interceptors)


@dataclass(frozen=True)
class InProcess(Generic[DepsT]):
    """A service served in this process: its replica, its lifespan's dependencies and a channel to it."""

    replica: Replica
    deps: DepsT
    """What the service's lifespan yielded (None for a service without one), as its servicers see it."""
    channel: grpc.aio.Channel
    """An insecure channel to the replica's port, calling as TEST_PRINCIPAL; closed when the service stops."""
    database_url: str | None
    """The database the service's schema lives in (a scratch one, unless fresh_database=False)."""
    nats_url: str | None
    loop: asyncio.AbstractEventLoop | None = None
    """The event loop serving the replica: channels opened from a synchronous fixture are bound to it."""
    _channels: dict[Principal | None, grpc.aio.Channel] = dataclasses.field(default_factory=dict, repr=False)
    """Channels as other principals, opened on first use and closed with the service."""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.replica.bound_port}"

    def channel_as(self, principal: Principal | None) -> grpc.aio.Channel:
        """A channel calling as `principal` (None: anonymously), closed when the service stops."""
        if principal == TEST_PRINCIPAL:
            return self.channel
        channel = self._channels.get(principal)
        if channel is None:
            channel = self._channels[principal] = self._open(principal)
        return channel

    def _open(self, principal: Principal | None) -> grpc.aio.Channel:
        # grpc.aio binds a channel to the loop current where it is made. A synchronous fixture has none
        # running (and an earlier test may have cleared the thread's default), so make it on the serving loop.
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self.loop is not None:
                asyncio.set_event_loop(self.loop)
        return channel_as(self.address, principal)

    def stub(self, stub_factory: Callable[[grpc.aio.Channel], StubT],
             principal: Principal | _Default | None = _DEFAULT) -> StubT:
        """A generated stub (e.g. AgentServiceStub), calling as TEST_PRINCIPAL unless `principal` is given."""
        if isinstance(principal, _Default):
            return stub_factory(self.channel)
        return stub_factory(self.channel_as(principal))

    async def close_channels(self) -> None:
        """Close the channels channel_as opened (the harness does it at exit)."""
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


@contextlib.asynccontextmanager
async def serve_in_process(
    service: Service[Any, DepsT],
    *,
    database_url: str | None = None,
    nats_url: str | None = None,
    env: Mapping[str, str] | None = None,
    fresh_database: bool = True,
    start_timeout: float = 30.0,
) -> AsyncIterator[InProcess[DepsT]]:
    """Serve `service` until the block exits, then stop it as SIGTERM would (grace, lifespan closed).

    `database_url` names a PostgreSQL the test may create databases on; with `fresh_database` the
    service gets a database of its own there (its schema is its name, so two harnesses of one service,
    or two test runs, would otherwise share tables), dropped at exit. Without `nats_url` there is no
    registry and no event bus. `env` holds runtime variables (over FAST_SETTINGS) and the service's
    own `<NAME>_*` settings; the process environment is not read, so a developer's shell cannot change
    what a test sees.
    """
    variables = {**FAST_SETTINGS, "INSTANCE_ID": f"{service.name}-test-{uuid.uuid4().hex[:6]}", **(env or {})}
    async with contextlib.AsyncExitStack() as stack:
        if database_url and fresh_database:
            database_url = await stack.enter_async_context(scratch_database(database_url, service.name))
        for name, value in (("DATABASE_URL", database_url), ("NATS_URL", nats_url)):
            if value:
                variables[name] = value
        settings = Settings.from_env(service.name, variables)
        captured: list[DepsT] = []
        replicas: list[Replica] = []
        stop = asyncio.Event()
        task = asyncio.create_task(
            serve(_capturing(service, variables, captured), settings, stop=stop, started=replicas.append),
            name=f"in-process-{service.name}",
        )
        stack.push_async_callback(_stop, task, stop, replicas)
        replica = await _wait_started(task, replicas, start_timeout, service.name)
        channel = channel_as(f"127.0.0.1:{replica.bound_port}", TEST_PRINCIPAL)
        # Closed before the server stops (callbacks run last-in first-out), so no call is left hanging.
        stack.push_async_callback(channel.close)
        served = InProcess(replica, captured[0], channel, database_url, nats_url, asyncio.get_running_loop())
        stack.push_async_callback(served.close_channels)
        yield served


def _capturing(service: Service[Any, DepsT], env: Mapping[str, str], captured: list[DepsT]) -> Service[Any, DepsT]:
    """A copy of the service whose lifespan hands its deps to the harness and reads settings from `env`.

    serve() reads the service's own settings from os.environ; clearing `settings` on the copy and
    loading them here keeps each harness's variables its own (two harnesses may start concurrently).
    """
    lifespan, own_settings = service.lifespan, service.settings

    @contextlib.asynccontextmanager
    async def lifespan_capturing(replica: Replica, _: Any) -> AsyncIterator[DepsT]:
        settings = load_settings(own_settings, service.name, env) if own_settings else None
        # A service without a lifespan has no deps: the harness then exposes None, as its servicers see.
        opened = lifespan(replica, settings) if lifespan else contextlib.nullcontext(cast(DepsT, None))
        async with opened as deps:
            captured.append(deps)
            yield deps

    return dataclasses.replace(service, settings=None, lifespan=lifespan_capturing)


async def _wait_started(task: asyncio.Task[None], replicas: list[Replica], timeout: float, name: str) -> Replica:
    """The replica once it listens; a start-up failure is raised here, not left in a lost task."""
    deadline = asyncio.get_running_loop().time() + timeout
    # Polled rather than awaited on an event: the started callback is synchronous, and a short poll
    # costs nothing next to start-up (migrations, pool, first probes).
    while not replicas:
        if task.done():
            task.result()  # raises the start-up error
            raise RuntimeError(f"{name} stopped before it started serving")
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{name} did not start serving within {timeout:g}s")
        await asyncio.sleep(0.005)
    return replicas[0]


SHUTDOWN_TIMEOUT = 20.0
"""How long a replica in a test may take to stop before it is cancelled (with its pending stacks printed)."""


async def _stop(task: asyncio.Task[None], stop: asyncio.Event, replicas: list[Replica]) -> None:
    """Stop as SIGTERM would; a replica that never started (its error already raised) is cancelled instead."""
    if not replicas:
        # serve() looks at `stop` only once it listens; one stuck in start-up would hold the test.
        task.cancel()
        await asyncio.wait({task})
        return
    stop.set()
    done, _ = await asyncio.wait({task}, timeout=SHUTDOWN_TIMEOUT)
    if not done:
        # As the supervisor kills a replica that ignores SIGTERM for too long: the test goes on, and the
        # stacks of what was still pending are printed so the stuck step can be found.
        _print_pending(f"{replicas[0].service.name} did not stop within {SHUTDOWN_TIMEOUT:.0f}s; cancelling it")
        task.cancel()
        await asyncio.wait({task}, timeout=5)
        return
    task.result()  # a failure while serving or shutting down fails the test here


def _print_pending(headline: str) -> None:
    print(f"chassis.testing: {headline}; pending tasks:", file=sys.stderr)
    for pending in asyncio.all_tasks():
        pending.print_stack(limit=8, file=sys.stderr)


@contextlib.asynccontextmanager
async def scratch_database(server_url: str, label: str = "test") -> AsyncIterator[str]:
    """A new, uniquely named database on the server `server_url` points at; dropped (connections and all) at exit."""
    name = f"{label}_{uuid.uuid4().hex[:10]}".lower()
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urllib.parse.urlsplit(server_url)._replace(path=f"/{name}").geturl()
    finally:
        async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as conn:
            await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
