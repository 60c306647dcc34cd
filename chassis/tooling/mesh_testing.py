"""Test helpers shared by every service's tests: a real local mesh and a small JSON-over-HTTP client."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chassis.tooling.infra.ports import free_port
from chassis.tooling.supervisor import Mesh, MeshOptions

# Fast health flips and short grace periods keep tests quick; nothing here changes behaviour.
TEST_SERVICE_ENV = {"HEALTH_INTERVAL_SECONDS": "0.3", "SHUTDOWN_GRACE_SECONDS": "5", "LOG_LEVEL": "INFO",
                    "DB_POOL_MIN": "1", "DB_POOL_MAX": "5", "DB_ACQUIRE_TIMEOUT_SECONDS": "2"}


@contextlib.contextmanager
def running_mesh(state_dir: Path | None = None, *, replicas: int = 2, database_url: str | None = None,
                 extra_env: dict[str, str] | None = None, only: list[str] | None = None) -> Iterator[Mesh]:
    """A whole mesh on free ports (PostgreSQL without fsync), stopped by PID afterwards.

    `only` limits which services run (tests of one service need not boot the others). Without
    `state_dir` the mesh lives in a fresh folder under /tmp that is removed afterwards: not under
    pytest's tmp_path, whose root every new pytest session resets to 0700, which would lock out
    PostgreSQL's unprivileged system user in the middle of a run.
    """
    own_dir = state_dir is None
    if state_dir is None:
        state_dir = Path(tempfile.mkdtemp(prefix="protomesh-test-"))
    options = MeshOptions(state_dir=state_dir, gateway_port=free_port(), default_replicas=replicas,
                          database_url=database_url, durable=False, only=only,
                          service_env={**TEST_SERVICE_ENV, **(extra_env or {})})
    mesh = Mesh(options)
    try:
        mesh.start()
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


class RestClient:
    """JSON over HTTP/1.1 with the standard library, for calls through the gateway."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> Reply:
        """Send one request; HTTP errors are returned, not raised."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={"content-type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
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
