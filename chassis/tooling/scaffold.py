"""`protomesh new-service NAME`: a contract and a service folder that build, start and answer.

What it writes is the smallest service the chassis runs: the standard RPCs (info, health, readiness,
liveness) behind the gateway at `/v1/<name>/...`, a call policy, typed settings and dependencies,
and one in-process test. The newcomer then writes their own RPCs in the proto, regenerates, and
implements them in the servicer; Envoy, the deploy files and the catalog follow from the contract.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from chassis.paths import REPO_ROOT

NAME = re.compile(r"^[a-z][a-z0-9]{1,30}$")
# Proto packages and folders that are not services.
RESERVED = frozenset({"common", "events", "options", "chassis", "services", "tooling", "test", "tests"})


class ScaffoldError(ValueError):
    """The name cannot become a service; the message says why and what to use instead."""


@dataclass(frozen=True)
class Names:
    """Every spelling of one service name the templates need."""

    name: str

    @property
    def pascal(self) -> str:
        return self.name[:1].upper() + self.name[1:]

    @property
    def upper(self) -> str:
        return self.name.upper()

    @property
    def package(self) -> str:
        return f"protomesh.{self.name}.v1"


def check_name(name: str, root: Path = REPO_ROOT) -> Names:
    """The name as a service name, or ScaffoldError saying what is wrong with it."""
    if not NAME.match(name):
        raise ScaffoldError(f"service name {name!r} must be 2-31 lowercase letters or digits, starting with a "
                            "letter (it becomes the proto package protomesh.<name>.v1 and the folder "
                            "services/<name>), e.g. orders")
    if name in RESERVED:
        raise ScaffoldError(f"{name!r} is reserved (used by the chassis or shared contracts): choose another name")
    for taken in (root / "services" / name, root / "proto" / "protomesh" / name):
        if taken.exists():
            raise ScaffoldError(f"{taken.relative_to(root)} already exists: choose another name or remove it")
    return Names(name)


def plan(names: Names) -> dict[str, str]:
    """Relative path -> content of every file the scaffold writes."""
    n = names.name
    return {
        f"proto/protomesh/{n}/v1/{n}_service.proto": _proto(names),
        f"services/{n}/__init__.py": f'"""The {n} service."""\n',
        f"services/{n}/__main__.py": _main(names),
        f"services/{n}/settings.py": _settings(names),
        f"services/{n}/deps.py": _deps(names),
        f"services/{n}/app.py": _app(names),
        f"services/{n}/servicer.py": _servicer(names),
        f"services/{n}/tests/__init__.py": "",
        f"services/{n}/tests/conftest.py": _conftest(names),
        f"services/{n}/tests/test_{n}_servicer.py": _test(names),
    }


def write(names: Names, root: Path = REPO_ROOT) -> list[Path]:
    """Write the files (none may exist yet) and return their paths."""
    files = plan(names)
    paths = [root / rel for rel in files]
    clash = [p for p in paths if p.exists()]
    if clash:
        raise ScaffoldError(f"{clash[0].relative_to(root)} already exists: nothing written")
    for path, content in zip(paths, files.values(), strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return paths


def _proto(names: Names) -> str:
    n, p = names.name, names.pascal
    return f'''syntax = "proto3";

package {names.package};

import "google/api/annotations.proto";
import "protomesh/common/v1/service_info.proto";
import "protomesh/options/v1/resilience.proto";

// {p}Service: describe in one sentence what the {n} service does.
service {p}Service {{
  // How callers reach this service: tune after measuring (see docs/adding-a-service.md).
  option (protomesh.options.v1.service_policy) = {{
    default_call: {{
      timeout: {{seconds: 5}}
      retry: {{
        max_attempts: 3
        retry_codes: [RETRY_CODE_UNAVAILABLE]
        initial_backoff: {{nanos: 50000000}}
        max_backoff: {{seconds: 1}}
      }}
    }}
    breaker: {{
      failure_threshold: 5
      recovery_timeout: {{seconds: 3}}
    }}
    max_concurrent_calls: 64
  }};

  // GetInfo describes the replica that answers.
  rpc GetInfo(GetInfoRequest) returns (GetInfoResponse) {{
    option idempotency_level = NO_SIDE_EFFECTS;
    option (google.api.http) = {{get: "/v1/{n}/info"}};
  }}
  // GetHealth reports health with dependencies; it answers even when not serving.
  rpc GetHealth(GetHealthRequest) returns (GetHealthResponse) {{
    option idempotency_level = NO_SIDE_EFFECTS;
    option (google.api.http) = {{get: "/v1/{n}/health"}};
  }}
  // GetReadiness fails with UNAVAILABLE (HTTP 503) unless the replica can serve.
  rpc GetReadiness(GetReadinessRequest) returns (GetReadinessResponse) {{
    option idempotency_level = NO_SIDE_EFFECTS;
    option (google.api.http) = {{get: "/v1/{n}/health/ready"}};
  }}
  // GetLiveness answers while the process is alive.
  rpc GetLiveness(GetLivenessRequest) returns (GetLivenessResponse) {{
    option idempotency_level = NO_SIDE_EFFECTS;
    option (google.api.http) = {{get: "/v1/{n}/health/live"}};
  }}
}}

// GetInfoRequest takes no parameters.
message GetInfoRequest {{}}

// GetInfoResponse describes the replica.
message GetInfoResponse {{
  // Replica information.
  protomesh.common.v1.ServiceInfo info = 1;
}}

// GetHealthRequest takes no parameters.
message GetHealthRequest {{}}

// GetHealthResponse reports health.
message GetHealthResponse {{
  // The health report.
  protomesh.common.v1.HealthReport health = 1;
}}

// GetReadinessRequest takes no parameters.
message GetReadinessRequest {{}}

// GetReadinessResponse reports a replica ready to serve.
message GetReadinessResponse {{
  // The health report.
  protomesh.common.v1.HealthReport health = 1;
}}

// GetLivenessRequest takes no parameters.
message GetLivenessRequest {{}}

// GetLivenessResponse reports the process alive.
message GetLivenessResponse {{
  // Always SERVING when answered.
  protomesh.common.v1.HealthState state = 1;
}}
'''


def _main(names: Names) -> str:
    n = names.name
    return f'''"""One {n} replica: `python -m services.{n}` (settings from the environment)."""

import chassis

chassis.main("services.{n}")
'''


def _settings(names: Names) -> str:
    return f'''"""The {names.name} service's own settings ({names.upper}_*), read by chassis.load_settings."""

from __future__ import annotations

from dataclasses import dataclass

from chassis import setting


@dataclass(frozen=True)
class {names.pascal}Settings:
    """Each field is read from {names.upper}_<FIELD> (e.g. {names.upper}_PAGE_LIMIT); a bad value names its variable."""

    page_limit: int = setting(100, low=1, high=1000)
    """An example setting: replace it with the service's own ({names.upper}_PAGE_LIMIT)."""
'''


def _deps(names: Names) -> str:
    return f'''"""What the {names.name} service's lifespan opens and its servicer uses."""

from __future__ import annotations

from dataclasses import dataclass

from services.{names.name}.settings import {names.pascal}Settings


@dataclass(frozen=True)
class {names.pascal}Deps:
    """The replica's dependencies, typed: add the store, clients and caches the servicer needs."""

    settings: {names.pascal}Settings
'''


def _app(names: Names) -> str:
    n, p = names.name, names.pascal
    return f'''"""The {n} service, described for the chassis to run."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import chassis
from services.{n}.deps import {p}Deps
from services.{n}.servicer import {p}Servicer
from services.{n}.settings import {p}Settings


@contextlib.asynccontextmanager
async def lifespan(replica: chassis.Replica, settings: {p}Settings) -> AsyncIterator[{p}Deps]:
    """Open what the servicer needs (a store on replica.db, clients from replica.client) and close it after."""
    yield {p}Deps(settings)


def build() -> chassis.Service[{p}Settings, {p}Deps]:
    """The {n} service. Add `migrations=Path(__file__).parent / "migrations"` for a PostgreSQL schema."""
    return chassis.Service(
        name="{n}",
        description="Describe the {n} service in one sentence.",
        servicers=[{p}Servicer],
        settings={p}Settings,
        lifespan=lifespan,
    )
'''


def _servicer(names: Names) -> str:
    n, p = names.name, names.pascal
    return f'''"""{p}Service: the RPCs of the contract in proto/protomesh/{n}/v1/{n}_service.proto."""

from __future__ import annotations

import grpc

from chassis import Replica
from chassis.standard_rpcs import HealthRpcs
from protomesh.{n}.v1 import {n}_service_pb2 as pb
from protomesh.{n}.v1 import {n}_service_pb2_grpc
from services.{n}.deps import {p}Deps


class {p}Servicer(HealthRpcs, {n}_service_pb2_grpc.{p}ServiceServicer):
    """Implements {names.package}.{p}Service; GetHealth, GetReadiness and GetLiveness come from the chassis."""

    def __init__(self, replica: Replica, deps: {p}Deps) -> None:
        self._replica = replica
        self._deps = deps

    async def GetInfo(self, request: pb.GetInfoRequest, context: grpc.aio.ServicerContext) -> pb.GetInfoResponse:
        return pb.GetInfoResponse(info=self._replica.service_info())
'''


def _conftest(names: Names) -> str:
    n = names.name
    return f'''"""The {n} service served in process for each test: real PostgreSQL and NATS, no Envoy."""

from tests.support.inprocess import in_process_service

{n} = in_process_service("services.{n}")
'''


def _test(names: Names) -> str:
    n, p = names.name, names.pascal
    return f'''"""The {n} servicer over a real channel, in process (no Envoy): see chassis.testing."""

from __future__ import annotations

from typing import Any

from chassis.testing import InProcess
from protomesh.{n}.v1 import {n}_service_pb2 as pb
from protomesh.{n}.v1.{n}_service_pb2_grpc import {p}ServiceStub


async def test_get_info_names_the_service({n}: InProcess[Any]) -> None:
    reply = await {n}.stub({p}ServiceStub).GetInfo(pb.GetInfoRequest())
    assert reply.info.name == "{n}"
    assert list(reply.info.grpc_services) == ["{names.package}.{p}Service"]
'''
