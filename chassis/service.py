"""How a service describes itself to the chassis: servicers, settings, a typed lifespan, loops, handlers.

    service = chassis.Service(
        name="agent",
        description="...",
        servicers=[AgentServicer],                  # constructed as AgentServicer(replica, deps)
        settings=AgentSettings,                     # AGENT_* variables, read by chassis.config.load_settings
        lifespan=lifespan,                          # (replica, settings) -> async context yielding AgentDeps
        migrations=Path(__file__).parent / "migrations",
        handlers=handlers,                          # (replica, deps) -> consumers and task workers
        background=[chassis.Loop("cleanup", run_cleanup)],   # started after the lifespan opened
        http=build_http_app,                        # optional: (replica, deps) -> aiohttp.web.Application
    )

A servicer class names its generated base (`agent_service_pb2_grpc.AgentServiceServicer`); the chassis
finds the service descriptor and the `add_..._to_server` function from it, so registering is one line.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import grpc
from google.protobuf import descriptor

if TYPE_CHECKING:
    from aiohttp import web

    from chassis.events import EventHandlers
    from chassis.replica import Replica

SettingsT = TypeVar("SettingsT")
DepsT = TypeVar("DepsT")


@dataclass(frozen=True)
class Loop(Generic[DepsT]):
    """A background loop of every replica: started once the lifespan is open, cancelled before it closes."""

    name: str
    run: Callable[[DepsT], Awaitable[None]]


@dataclass(frozen=True)
class Servicer:
    """A servicer class with what the chassis needs to serve it, found from its generated base class."""

    cls: type
    descriptor: descriptor.ServiceDescriptor
    add_to_server: Callable[[Any, grpc.aio.Server], None]

    @classmethod
    def of(cls, servicer_cls: type) -> Servicer:
        """Resolve a servicer class: its generated `XServicer` base names the module, descriptor and adder."""
        base = generated_base(servicer_cls)
        pb2 = generated_messages(servicer_cls)
        return cls(servicer_cls, pb2.DESCRIPTOR.services_by_name[base.__name__.removesuffix("Servicer")],
                   getattr(sys.modules[base.__module__], f"add_{base.__name__}_to_server"))


@functools.cache
def generated_base(servicer_cls: type) -> type:
    """The generated `…_pb2_grpc.XServicer` class a servicer derives from."""
    for base in servicer_cls.__mro__[1:]:
        if base.__module__.endswith("_pb2_grpc") and base.__name__.endswith("Servicer"):
            return base
    raise TypeError(f"{servicer_cls.__name__} does not derive from a generated *Servicer class (…_pb2_grpc)")


def generated_messages(servicer_cls: type) -> ModuleType:
    """The generated `…_pb2` module holding the servicer's request and response messages."""
    return sys.modules[generated_base(servicer_cls).__module__.removesuffix("_grpc")]


@dataclass(frozen=True)
class Service(Generic[SettingsT, DepsT]):
    """Declarative description of a service; `chassis.run` does the rest."""

    name: str
    description: str
    servicers: Sequence[type]
    """Servicer classes, each constructed as `cls(replica, deps)`."""
    settings: type[SettingsT] | None = None
    """A frozen dataclass of the service's own settings, read from `<NAME>_*` variables at start."""
    lifespan: Callable[[Replica, SettingsT], AbstractAsyncContextManager[DepsT]] | None = None
    """Opens what the servicers need once the database is ready and yields it as one typed object."""
    migrations: Path | None = None
    """Folder of NNN_name.sql files; the service then needs DATABASE_URL and owns schema `name`."""
    handlers: Callable[[Replica, DepsT], EventHandlers] | None = None
    """Event consumers and task workers, built from the lifespan's dependencies; when set (or when the
    service has a database and NATS_URL is set) the replica runs the event bus: outbox relay, consumers,
    workers, and a NATS health probe."""
    background: Sequence[Loop[DepsT]] = ()
    """Loops every replica runs while it serves (cleanup jobs, sweepers)."""
    http: Callable[[Replica, DepsT], web.Application] | None = None
    """An aiohttp application for endpoints that are HTTP by their standard (OAuth, ext_authz), built from
    the lifespan's dependencies and served on HTTP_PORT next to gRPC (chassis.http_listener)."""

    @functools.cached_property
    def resolved_servicers(self) -> list[Servicer]:
        return [Servicer.of(c) for c in self.servicers]

    @functools.cached_property
    def grpc_services(self) -> list[str]:
        """Fully qualified names of the served gRPC services."""
        return [s.descriptor.full_name for s in self.resolved_servicers]
