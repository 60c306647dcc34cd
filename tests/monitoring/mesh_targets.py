"""Prometheus' scrape targets for a local mesh: one per replica the supervisor runs, in a file_sd file.

A replica serves /metrics on a port it picks when it starts and announces it in its registration
(`metrics_port`, chassis/server.py). Compose finds replicas by DNS on a fixed port instead; here the
registry is the only place that knows the port, so a thread follows it and writes Prometheus' file.

The target set is the supervisor's list of replicas, not the registry's: a SIGKILLed replica's registration
expires within its TTL, and a scraper that dropped it then would never see it down. So a replica keeps its
last announced address while it is dead (its scrapes fail: `up` is 0), and the address changes when it
comes back on a new port (the old target goes, the new one is scraped).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from chassis.tooling.supervisor import Mesh

REFRESH_SECONDS = 0.5


def replica_targets(mesh: Mesh, known: dict[str, str]) -> list[dict[str, Any]]:
    """file_sd groups (one per replica) from the registry's view, remembering each replica's last address in
    `known` (instance id -> host:port) for when its registration is gone."""
    groups: list[dict[str, Any]] = []
    if mesh.bridge is None:
        return groups
    for service, replicas in sorted(mesh.replicas.items()):
        registered = {instance.instance_id: instance for instance in mesh.bridge.view(service)}
        for replica in replicas:
            instance = registered.get(replica.instance_id)
            port = instance.meta.get("metrics_port", "") if instance is not None else ""
            if instance is not None and port.isdigit():
                known[replica.instance_id] = f"{instance.address}:{port}"
            if replica.instance_id in known:
                groups.append({"targets": [known[replica.instance_id]],
                               "labels": {"service": service, "instance_id": replica.instance_id}})
    return groups


class TargetsFile:
    """Keeps `path` (Prometheus' file_sd file) equal to the mesh's replica targets, in a thread of its own."""

    def __init__(self, mesh: Mesh, path: Path) -> None:
        self.mesh = mesh
        self.path = path
        self._known: dict[str, str] = {}
        self._written = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prometheus-targets", daemon=True)

    def refresh(self) -> list[dict[str, Any]]:
        """Write the file now if the targets changed (atomically: Prometheus may read it at any moment)."""
        groups = replica_targets(self.mesh, self._known)
        text = json.dumps(groups, indent=1, sort_keys=True)
        if text != self._written:
            partial = self.path.with_suffix(".tmp")
            partial.write_text(text)
            os.replace(partial, self.path)
            self._written = text
        return groups

    def start(self) -> None:
        """Write the file once, then follow the mesh."""
        self.refresh()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(REFRESH_SECONDS):
            self.refresh()

    def stop(self) -> None:
        """Stop following (the file stays)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
