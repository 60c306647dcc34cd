"""A release request (what `protomesh release` asks the supervisor for), its checks, the blue/green
traffic split written into Envoy's endpoint files, and the migration rule both colours depend on.

Pure functions and plain files only: the CLI checks a request with them before handing it over, the
supervisor checks it again before acting, and the unit tests need no mesh.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chassis.tooling.eds import Weigher, lb_endpoint
from chassis.tooling.release_slo import Thresholds

RELEASE_DIR = "release"
REQUEST_FILE = "request.json"
STATUS_FILE = "status.json"
ABORT_FILE = "abort"
DEFAULT_STEPS = (5.0, 25.0, 50.0, 100.0)
WEIGHT_SCALE = 10_000
"""Envoy weights are integers of at least 1: shares are expressed per ten thousand of the traffic."""
MAX_BAKE_FACTOR = 4
"""A step short of `min_requests` green calls waits up to this many bake times, then rolls back."""
FINAL_STATES = ("promoted", "rolled_back", "aborted", "failed", "refused")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ENV_KEY = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_RESERVED_ENV = frozenset({"GRPC_HOST", "GRPC_PORT", "INSTANCE_ID", "DATABASE_URL", "NATS_URL", "MESH_TLS_CERT",
                           "MESH_TLS_KEY", "MESH_TLS_CA", "PROTOMESH_STATE_DIR"})
"""What the supervisor sets for every replica: a release may not point green at another database or identity."""


class PlanError(ValueError):
    """A release request that cannot run, naming the option at fault."""


@dataclass(frozen=True)
class ReleaseRequest:
    """One release, as the CLI hands it to the supervisor (<state>/release/request.json)."""

    service: str
    steps: tuple[float, ...] = DEFAULT_STEPS
    """Percent of the gateway's traffic on green at each step, increasing, ending at 100."""
    bake_seconds: float = 30.0
    max_bake_seconds: float = 0.0
    """How long a step may wait for `min_requests` green calls before it rolls back; 0: MAX_BAKE_FACTOR bakes."""
    thresholds: Thresholds = field(default_factory=Thresholds)
    module: str = ""
    """Python module green runs (`python -m`); empty: the service's own, from the working tree."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment only green replicas get (e.g. a feature switch of the new build)."""
    replicas: int = 0
    """Green replicas; 0: as many as blue has."""
    id: str = field(default_factory=lambda: secrets.token_hex(4))
    requested_at: float = field(default_factory=time.time)

    def check(self, services: Sequence[str]) -> None:
        """Raise PlanError naming the first option that is wrong."""
        if self.service not in services:
            raise PlanError(f"SERVICE {self.service!r} is not running in this mesh; running: {', '.join(services)}")
        if not self.steps or any(not 0 <= s <= 100 for s in self.steps):
            raise PlanError("--steps: percentages from 0 to 100, e.g. 5,25,50,100")
        if list(self.steps) != sorted(set(self.steps)) or self.steps[-1] != 100:
            raise PlanError("--steps: strictly increasing and ending at 100, e.g. 5,25,50,100")
        if not 0 < self.bake_seconds <= 3600:
            raise PlanError("--bake: seconds per step, above 0 and at most 3600")
        if self.max_bake_seconds and not self.bake_seconds <= self.max_bake_seconds <= 4 * 3600:
            raise PlanError("--max-bake: seconds, at least --bake and at most 14400 (0: four bakes)")
        t = self.thresholds
        if not 0 <= t.max_error_rate < 1:
            raise PlanError("--max-error-rate: a fraction from 0 to below 1, e.g. 0.05")
        if t.p99_ratio < 1 or t.p99_slack_ms < 0:
            raise PlanError("--p99-ratio must be at least 1 and --p99-slack-ms at least 0")
        if not 0 <= t.min_requests <= 100_000:
            raise PlanError("--min-requests: from 0 to 100000")
        if self.module and not _MODULE.match(self.module):
            raise PlanError(f"--module {self.module!r}: a dotted Python module name, e.g. services.agent")
        for key in self.env:
            if not _ENV_KEY.match(key) or key in _RESERVED_ENV:
                raise PlanError(f"--env {key}: an upper-case variable name the supervisor does not set itself")
        if not 0 <= self.replicas <= 16:
            raise PlanError("--replicas: from 1 to 16 (0: as many as blue)")

    @property
    def longest_step(self) -> float:
        """Seconds a step may last at most, waiting for enough green calls."""
        return self.max_bake_seconds or self.bake_seconds * MAX_BAKE_FACTOR

    def to_json(self) -> str:
        """The request file's content."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ReleaseRequest:
        """Read a request file (PlanError when it is not one)."""
        try:
            raw: dict[str, Any] = json.loads(text)
            raw["steps"] = tuple(float(s) for s in raw["steps"])
            raw["thresholds"] = Thresholds(**raw["thresholds"])
            return cls(**raw)
        except (ValueError, TypeError, KeyError) as exc:
            raise PlanError(f"not a release request: {exc}") from None


def parse_steps(text: str) -> tuple[float, ...]:
    """`5,25,50,100` -> (5.0, 25.0, 50.0, 100.0); PlanError naming --steps otherwise."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise PlanError(f"--steps {text!r}: comma-separated percentages, e.g. 5,25,50,100") from None


def colour_weigher(green: frozenset[str], share: float) -> Weigher:
    """Endpoints weighted so that green (its host:port targets) gets `share` (0..1) of the calls.

    Every endpoint stays listed: Envoy keeps serving a host that left its endpoint file as long as the
    host passes health checks, with its old weight. The colour that should get nothing (blue at 1,
    green at 0) is marked DRAINING, which takes it out of load balancing at once, and weighs 1 against
    the other's ten thousand, in case Envoy's panic mode (too few healthy hosts) balances over all.
    Green endpoints carry Envoy's `canary` flag, so Envoy's own stats tell the colours apart too.
    """
    def weigh(endpoints: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
        greens = [e for e in endpoints if f"{e[0]}:{e[1]}" in green]
        blues = [e for e in endpoints if f"{e[0]}:{e[1]}" not in green]
        green_share = share if greens and blues else (1.0 if greens else 0.0)
        weighed = []
        for colour, members, colour_share in (("blue", blues, 1 - green_share), ("green", greens, green_share)):
            for host, port in members:
                endpoint: dict[str, Any] = {**lb_endpoint(host, port),
                                            "load_balancing_weight": max(1, round(colour_share * WEIGHT_SCALE
                                                                                  / len(members)))}
                if colour_share <= 0:
                    endpoint["health_status"] = "DRAINING"
                if colour == "green":
                    endpoint["metadata"] = {"filter_metadata": {"envoy.lb": {"canary": True}}}
                weighed.append(endpoint)
        return weighed
    return weigh


# --- migrations: expand, then contract ---------------------------------------------------------------------

MARKER = re.compile(r"^\s*--\s*release:\s*(expand|contract)\b", re.IGNORECASE | re.MULTILINE)
"""How a migration declares itself safe while both colours run: a `-- release: expand` line (adds only:
blue keeps working on the new schema) or `-- release: contract` (removes only what the code already
running no longer uses, i.e. what an earlier release stopped using)."""
DESTRUCTIVE = re.compile(
    r"\b(DROP\s+(TABLE|COLUMN|SCHEMA|VIEW|TYPE|INDEX|CONSTRAINT)|RENAME\s+(TO|COLUMN|CONSTRAINT)"
    r"|ALTER\s+COLUMN\s+\S+\s+(SET\s+DATA\s+)?TYPE|SET\s+NOT\s+NULL|TRUNCATE)\b", re.IGNORECASE)
"""Statements that break the code still running on blue: never in an expand migration."""
_NAME = re.compile(r"^(\d+)_[A-Za-z0-9_]+\.sql$")


def migration_problems(folder: Path, applied: set[int]) -> list[str]:
    """Why the migrations green would apply (those not in `applied`) are not safe beside blue; empty if safe."""
    problems = []
    for path in sorted(folder.glob("*.sql")) if folder.is_dir() else []:
        match = _NAME.match(path.name)
        if match is None or int(match.group(1)) in applied:
            continue
        sql = path.read_text()
        marker = MARKER.search(sql)
        if marker is None:
            problems.append(f"{path}: a new migration without `-- release: expand` or `-- release: contract`; "
                            "both colours run on it during the release, so it must say which it is")
            continue
        code = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
        destructive = DESTRUCTIVE.search(code)
        if marker.group(1).lower() == "expand" and destructive:
            problems.append(f"{path}: marked expand but `{' '.join(destructive.group(0).split())}` breaks the "
                            "code still running on blue; ship it later as a `-- release: contract` migration")
    return problems
