"""Envoy follows the registry: endpoint files (file-based EDS) rewritten whenever the registry changes.

Why files and not an xDS gRPC server: Envoy watches the folder with inotify and applies a new
file within milliseconds, the files can be read by a person debugging the mesh, and there is no
extra server whose own failure would freeze the gateway's view. The bridge that writes them runs
inside the `protomesh up` supervisor, next to the Envoy it feeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chassis.http_listener import HTTP_PORT_META
from chassis.registry import Instance, Registry
from chassis.tooling.catalog import http_cluster

logger = logging.getLogger(__name__)

CLA_TYPE = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"

Weigher = Callable[[Sequence[tuple[str, int]]], list[dict[str, Any]]]
"""Turns a service's endpoints into Envoy `lb_endpoints` with weights and metadata (a release weighs
green against blue: chassis.tooling.release); without one every endpoint weighs the same."""


def eds_path(eds_dir: Path, service: str) -> Path:
    """The endpoint file of one service's cluster."""
    return eds_dir / f"{service}.json"


def lb_endpoint(host: str, port: int) -> dict[str, Any]:
    """One endpoint of a ClusterLoadAssignment, without weight or metadata."""
    return {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}


def load_assignment(service: str, endpoints: Sequence[tuple[str, int]],
                    weigher: Weigher | None = None) -> dict[str, Any]:
    """A ClusterLoadAssignment for Envoy (endpoints shaped by `weigher` when given)."""
    lb_endpoints = weigher(endpoints) if weigher else [lb_endpoint(host, port) for host, port in endpoints]
    return {"@type": CLA_TYPE, "cluster_name": service, "endpoints": [{"lb_endpoints": lb_endpoints}]}


def http_endpoints(instances: Sequence[Instance]) -> list[tuple[str, int]]:
    """The HTTP listeners of the instances that registered one (`http_port` in their metadata)."""
    endpoints = []
    for instance in instances:
        port = instance.meta.get(HTTP_PORT_META, "")
        if port.isdigit() and int(port) > 0:
            endpoints.append((instance.address, int(port)))
    return endpoints


def write_endpoints(eds_dir: Path, service: str, endpoints: Sequence[tuple[str, int]], version: int,
                    weigher: Weigher | None = None) -> None:
    """Replace a service's endpoint file atomically (Envoy must never read half a file)."""
    eds_dir.mkdir(parents=True, exist_ok=True)
    target = eds_path(eds_dir, service)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps({"version_info": str(version),
                               "resources": [load_assignment(service, endpoints, weigher)]}))
    os.replace(tmp, target)


class RegistryBridge:
    """Watches every service in the registry and keeps Envoy's endpoint files in step, in its own thread."""

    def __init__(self, registry_factory: Callable[[], Any], services: Sequence[str], eds_dir: Path,
                 on_change: Callable[[str, list[Instance]], None] | None = None,
                 http_services: Sequence[str] = ()) -> None:
        """`http_services`: services whose replicas' HTTP listeners Envoy reaches too (the `<name>_http`
        cluster: HTTP-served routes, the JWKS, API-key checks); they must be among `services`."""
        self._registry_factory = registry_factory
        self._services = list(services)
        self._http_services = set(http_services)
        self.eds_dir = eds_dir
        self._on_change = on_change or (lambda service, instances: None)
        self._views: dict[str, list[Instance]] = {s: [] for s in self._services}
        self._weighers: dict[str, Weigher] = {}
        self._version = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def start(self) -> None:
        """Write empty endpoint files (Envoy needs them at start) and start following the registry."""
        for service in self._services:
            write_endpoints(self.eds_dir, service, [], 0)
        for service in self._http_services:
            write_endpoints(self.eds_dir, http_cluster(service), [], 0)
        self._thread = threading.Thread(target=self._run, name="registry-bridge", daemon=True)
        self._thread.start()

    def view(self, service: str) -> list[Instance]:
        """The instances the bridge last wrote for a service."""
        with self._lock:
            return list(self._views.get(service, []))

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        registry: Registry = await self._registry_factory()
        tasks = [asyncio.create_task(self._follow(registry, s)) for s in self._services]
        try:
            await asyncio.to_thread(self._stopped.wait)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await registry.close()

    def weigh(self, service: str, weigher: Weigher | None) -> None:
        """Shape `service`'s endpoints with `weigher` from now on (None: equal again); rewrites its file at once.

        Envoy applies new weights from the file without a restart (a release shifts traffic this way).
        """
        with self._lock:
            if weigher is None:
                self._weighers.pop(service, None)
            else:
                self._weighers[service] = weigher
            self._write(service)

    def _write(self, service: str) -> None:
        """Write a service's endpoint file from its last view (the caller holds the lock)."""
        self._version += 1
        instances = self._views.get(service, [])
        write_endpoints(self.eds_dir, service, [(i.address, i.port) for i in instances], self._version,
                        self._weighers.get(service))

    async def _follow(self, registry: Registry, service: str) -> None:
        while True:
            try:
                async for instances in registry.watch(service, healthy_only=False):
                    with self._lock:
                        self._views[service] = instances
                        self._write(service)
                        if service in self._http_services:
                            write_endpoints(self.eds_dir, http_cluster(service), http_endpoints(instances),
                                            self._version)
                    self._on_change(service, instances)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS restarting: keep the last endpoints, watch again
                logger.warning("registry watch failed; retrying", extra={"service": service, "error": str(exc)})
                await asyncio.sleep(1.0)

    def stop(self) -> None:
        """Stop following the registry (the endpoint files stay as they are)."""
        self._stopped.set()
        if self._thread:
            self._thread.join(timeout=10)
