"""A real Prometheus (Debian's binary) running the project's alert rules against a running local mesh.

The scrape configuration is deploy/observability/prometheus.yml's, with each job's discovery replaced by what
finds the same things on one machine: the `services` job reads a file_sd file that follows the supervisor's
replicas (tests/monitoring/mesh_targets.py), the `envoy` job scrapes the gateway's admin port. Job names
stay the production ones, since the rules select on them (`up{job="services"}`). The rules are a copy of
deploy/observability/alerts.yml with every duration divided by TIME_FACTOR (tests/monitoring/rule_timing.py),
evaluated every second.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chassis.paths import REPO_ROOT
from chassis.tooling.infra.ports import LOOPBACK, free_port
from chassis.tooling.infra.process import ManagedProcess
from chassis.tooling.supervisor import Mesh
from tests.monitoring.mesh_targets import TargetsFile
from tests.monitoring.rule_timing import write_compressed_rules

OBSERVABILITY = REPO_ROOT / "deploy" / "observability"
ALERT_RULES = OBSERVABILITY / "alerts.yml"
PRODUCTION_CONFIG = OBSERVABILITY / "prometheus.yml"
TIME_FACTOR = 30.0
"""Production durations / test durations: `for: 1m` becomes 2 s, `for: 5m` 10 s, `[15m:1m]` `[30s:2s]`."""
SCRAPE_SECONDS = 1.0


def prometheus_binary() -> str | None:
    """Debian's prometheus (scripts/install_monitoring_tools), if installed."""
    return shutil.which("prometheus")


def local_scrape_configs(production: dict[str, Any], targets_file: Path, envoy_admin: str) -> list[dict[str, Any]]:
    """The production scrape jobs, discovering the local mesh instead of compose's DNS names."""
    jobs = []
    for job in production["scrape_configs"]:
        name = job["job_name"]
        local: dict[str, Any] = {"job_name": name, "metrics_path": job.get("metrics_path", "/metrics")}
        if name == "services":
            # The file gives each target its `service` label, which production relabels from the DNS name.
            local["file_sd_configs"] = [{"files": [str(targets_file)], "refresh_interval": "1s"}]
        elif name == "envoy":
            local["static_configs"] = [{"targets": [envoy_admin]}]
        else:
            raise ValueError(f"prometheus.yml has a job {name!r} this harness cannot point at a local mesh")
        jobs.append(local)
    return jobs


def write_local_config(folder: Path, envoy_admin: str) -> Path:
    """prometheus.yml, a time-compressed alerts.yml and an empty targets file in folder; the config's path."""
    rules = folder / "alerts.yml"
    write_compressed_rules(ALERT_RULES, rules, TIME_FACTOR)
    targets = folder / "targets.json"
    targets.write_text("[]")
    production = yaml.safe_load(PRODUCTION_CONFIG.read_text())
    config = {
        "global": {"scrape_interval": f"{SCRAPE_SECONDS:g}s", "scrape_timeout": f"{round(SCRAPE_SECONDS * 800)}ms",
                   "evaluation_interval": f"{SCRAPE_SECONDS:g}s"},
        "rule_files": [str(rules)],
        "scrape_configs": local_scrape_configs(production, targets, envoy_admin),
    }
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class PrometheusProcess(ManagedProcess):
    """Prometheus on 127.0.0.1:port with its data in a folder of its own; ready when /-/ready answers 200."""

    name = "prometheus"

    def __init__(self, binary: str, config: Path, data_dir: Path, port: int, log_path: Path) -> None:
        self.port = port
        super().__init__([binary, f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
                          f"--web.listen-address={LOOPBACK}:{port}", "--storage.tsdb.retention.time=1h"],
                         log_path=log_path)

    @property
    def url(self) -> str:
        """Its HTTP API's base URL."""
        return f"http://{LOOPBACK}:{self.port}"

    def before_start(self) -> None:
        """Its port must be free."""
        self.check_port(self.name, LOOPBACK, self.port)

    def wait_ready(self, timeout: float) -> None:
        """Ready when /-/ready says so (rules loaded, storage open)."""
        self.poll_until(lambda: _status(f"{self.url}/-/ready") == 200, timeout, "/-/ready", interval=0.2)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


@dataclass(frozen=True)
class Alert:
    """One active alert as /api/v1/alerts shows it."""

    name: str
    state: str
    """`pending` (condition true, `for:` not over yet) or `firing`."""
    labels: dict[str, str]

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        """Whether it is alert `name` with (at least) these labels."""
        return self.name == name and all(self.labels.get(key) == value for key, value in labels.items())


class PrometheusApi:
    """The few HTTP API calls the tests need."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as reply:
            body = json.loads(reply.read())
        if body.get("status") != "success":
            raise AssertionError(f"Prometheus answered {body} to {path}")
        return body["data"]

    def alerts(self) -> list[Alert]:
        """Every active (pending or firing) alert; resolved ones are not listed."""
        return [Alert(a["labels"]["alertname"], a["state"], a["labels"]) for a in self._get("/api/v1/alerts")["alerts"]]

    def query(self, expression: str) -> list[dict[str, Any]]:
        """An instant query's vector: [{"metric": {...}, "value": [time, "value"]}, ...]."""
        return list(self._get("/api/v1/query", query=expression)["result"])

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets with their health."""
        return list(self._get("/api/v1/targets", state="active")["activeTargets"])

    def rule_errors(self) -> list[str]:
        """Rules whose last evaluation failed, with the error."""
        return [f"{rule['name']}: {rule['lastError']}" for group in self._get("/api/v1/rules")["groups"]
                for rule in group["rules"] if rule.get("lastError")]

    def firing(self, name: str, labels: Mapping[str, str]) -> list[Alert]:
        """The firing alerts `name` with these labels."""
        return [a for a in self.alerts() if a.state == "firing" and a.matches(name, labels)]

    def active(self, name: str, labels: Mapping[str, str]) -> list[Alert]:
        """The pending or firing alerts `name` with these labels."""
        return [a for a in self.alerts() if a.matches(name, labels)]


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> float:
    """Poll check() until truthy; return the seconds it took; fail naming `what` after timeout."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - started


@dataclass
class MonitoredMesh:
    """A running Prometheus watching a running mesh."""

    mesh: Mesh
    process: PrometheusProcess
    api: PrometheusApi
    folder: Path
    rules: dict[str, Any]
    """The compressed rule file Prometheus evaluates."""

    def rule(self, name: str) -> dict[str, Any]:
        """The (compressed) rule of alert `name`."""
        return next(r for g in self.rules["groups"] for r in g["rules"] if r.get("alert") == name)

    def wait_firing(self, name: str, labels: Mapping[str, str], timeout: float) -> float:
        """Wait until alert `name` with these labels fires; the seconds it took."""
        return wait_for(lambda: self.api.firing(name, labels), timeout, f"{name} {dict(labels)} firing")

    def wait_resolved(self, name: str, labels: Mapping[str, str], timeout: float) -> float:
        """Wait until alert `name` with these labels is neither pending nor firing; the seconds it took."""
        return wait_for(lambda: not self.api.active(name, labels), timeout, f"{name} {dict(labels)} resolved")


def envoy_admin(mesh: Mesh) -> str:
    """host:port of the mesh's Envoy admin interface: loopback for the local mesh, the gateway host's address for
    a mesh over network-namespace hosts (chassis.tooling.hosts.HostedMesh.admin_address)."""
    address = getattr(mesh, "admin_address", None)
    return str(address) if address else f"{LOOPBACK}:{mesh.admin_port}"


@contextlib.contextmanager
def monitoring(mesh: Mesh, start_timeout: float = 60.0) -> Iterator[MonitoredMesh]:
    """Prometheus (and the targets file it reads) for `mesh`, in a temporary folder removed afterwards."""
    binary = prometheus_binary()
    if binary is None:
        raise RuntimeError("prometheus is not installed (scripts/install_monitoring_tools)")
    folder = Path(tempfile.mkdtemp(prefix="protomesh-prometheus-"))
    targets = TargetsFile(mesh, folder / "targets.json")
    process: PrometheusProcess | None = None
    try:
        config = write_local_config(folder, envoy_admin(mesh))
        rules = yaml.safe_load((folder / "alerts.yml").read_text())
        targets.start()
        process = PrometheusProcess(binary, config, folder / "data", free_port(), folder / "prometheus.log")
        process.start(timeout=start_timeout)
        yield MonitoredMesh(mesh, process, PrometheusApi(process.url), folder, rules)
    finally:
        if process is not None:
            process.stop(timeout=10)
        targets.stop()
        shutil.rmtree(folder, ignore_errors=True)
