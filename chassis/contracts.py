"""The mesh's contracts as loaded Python modules: every generated protomesh *_pb2 module."""

from __future__ import annotations

import functools
import importlib
import pkgutil

import protomesh


@functools.cache
def mesh_grpc_services() -> tuple[str, ...]:
    """Full names of every gRPC service in the contracts, after importing every generated module.

    Importing them puts every contract into the default descriptor pool, so reflection on any
    replica can describe the whole mesh (grpcurl through the gateway sees every service).
    """
    names: list[str] = []
    for module_info in pkgutil.walk_packages(protomesh.__path__, prefix="protomesh."):
        if module_info.name.endswith("_pb2"):
            module = importlib.import_module(module_info.name)
            names.extend(s.full_name for s in module.DESCRIPTOR.services_by_name.values())
    return tuple(sorted(names))


@functools.cache
def domain_event_types(excluding: str = "") -> tuple[str, ...]:
    """Full names of every domain event: the top-level messages of each `protomesh.*` events.proto, but those of
    the package `excluding` (a consumer of every event skips its own, which could loop)."""
    mesh_grpc_services()  # imports every generated module
    found: list[str] = []
    for info in pkgutil.walk_packages(protomesh.__path__, prefix="protomesh."):
        if info.name.endswith(".events_pb2"):
            file = importlib.import_module(info.name).DESCRIPTOR
            if file.name.endswith("/events.proto") and file.package != excluding:
                found.extend(message.full_name for message in file.message_types_by_name.values())
    return tuple(sorted(found))
