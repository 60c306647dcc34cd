"""The lifecycle option (options/v1/lifecycle.proto) as the generators read it: headers, checks, routes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2

from chassis.paths import DESCRIPTOR_SET, REPO_ROOT
from chassis.tooling.api_lifecycle import (
    METHOD_LIFECYCLE,
    SERVICE_LIFECYCLE,
    Deprecation,
    LifecycleError,
    deprecations,
)
from chassis.tooling.apidocs.migration_notes import migration_notes
from chassis.tooling.catalog import load_catalog
from chassis.tooling.envoy_config import build_envoy_config
from protomesh.options.v1 import lifecycle_pb2

V1 = "/protomesh.agent.v1.AgentService/"
V2 = "/protomesh.agent.v2.AgentService/"


def _file(service: lifecycle_pb2.Lifecycle | None,
          **methods: lifecycle_pb2.Lifecycle) -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(name="probe.proto", package="protomesh.probe.v1")
    svc = file.service.add(name="ProbeService")
    if service is not None:
        svc.options.Extensions[SERVICE_LIFECYCLE].CopyFrom(service)
    for name in ("GetProbe", "GetHealth"):
        method = svc.method.add(name=name, input_type=".x.Req", output_type=".x.Resp")
        if name in methods:
            method.options.Extensions[METHOD_LIFECYCLE].CopyFrom(methods[name])
    return file


def test_headers_follow_rfc_9745_and_8594() -> None:
    deprecation = Deprecation(datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC),
                              "/docs/versions.md", "")
    assert deprecation.headers() == {
        "deprecation": "@1796083200",
        "sunset": "Tue, 01 Jun 2027 00:00:00 GMT",
        "link": '</docs/versions.md>; rel="deprecation", </docs/versions.md>; rel="sunset"',
    }
    assert "sunset" not in Deprecation(deprecation.since, None, "/n", "").headers()


def test_a_service_option_covers_its_methods_and_unversioned_ones_are_exempt() -> None:
    option = lifecycle_pb2.Lifecycle(deprecated_since="2026-12-01T01:00:00+01:00", migration_url="/n")
    found = deprecations([_file(option, GetHealth=lifecycle_pb2.Lifecycle(unversioned=True))])
    assert list(found) == ["/protomesh.probe.v1.ProbeService/GetProbe"]
    assert found["/protomesh.probe.v1.ProbeService/GetProbe"].since == datetime(2026, 12, 1, tzinfo=UTC)
    alone = deprecations([_file(None, GetProbe=option)])
    assert list(alone) == ["/protomesh.probe.v1.ProbeService/GetProbe"]


@pytest.mark.parametrize(("option", "problem"), [
    (lifecycle_pb2.Lifecycle(deprecated_since="1 Dec 2026", migration_url="/n"), "not an RFC 3339"),
    (lifecycle_pb2.Lifecycle(deprecated_since="2026-12-01T00:00:00", migration_url="/n"), "time zone"),
    (lifecycle_pb2.Lifecycle(deprecated_since="2026-12-01T00:00:00Z"), "migration_url is required"),
    (lifecycle_pb2.Lifecycle(migration_url="/n"), "deprecated_since is required"),
    (lifecycle_pb2.Lifecycle(deprecated_since="2026-12-01T00:00:00Z", sunset="2026-11-01T00:00:00Z",
                             migration_url="/n"), "sunset must come after"),
    (lifecycle_pb2.Lifecycle(unversioned=True, migration_url="/n"), "no other lifecycle field"),
])
def test_a_malformed_option_stops_the_generator_naming_where(option: lifecycle_pb2.Lifecycle, problem: str) -> None:
    with pytest.raises(LifecycleError, match=problem) as caught:
        deprecations([_file(None, GetProbe=option)])
    assert "protomesh.probe.v1.ProbeService/GetProbe" in str(caught.value)


def _routes() -> list[dict[str, Any]]:
    config = build_envoy_config(load_catalog(DESCRIPTOR_SET), {}, listen_port=1, admin_port=2,
                                descriptor_set=DESCRIPTOR_SET)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return list(hcm["route_config"]["virtual_hosts"][0]["routes"])


def test_every_route_of_a_deprecated_method_carries_the_headers_and_no_other_does() -> None:
    routes = _routes()
    marked = {r["name"] for r in routes if "response_headers_to_add" in r}
    v1_routes = {r["name"] for r in routes if r["name"].startswith(V1)}
    probes = {n for n in v1_routes if n.split(" ")[0].removeprefix(V1) in ("GetHealth", "GetReadiness", "GetLiveness")}
    assert marked == v1_routes - probes
    assert not [n for n in marked if n.startswith(V2)]
    names = [r["name"] for r in routes]
    # A write without a route of its own gets one before its package's prefix route, after its keyed route.
    for write in ("RegisterAgent", "ExecuteAgent"):
        assert names.index(f"{V1}{write} keyed") < names.index(f"{V1}{write}") < names.index("protomesh.agent.v1")
    headers = {h["header"]["key"] for h in next(r for r in routes if r["name"] == f"{V1}GetAgent")[
        "response_headers_to_add"]}
    assert headers == {"deprecation", "sunset", "link"}


def test_the_link_target_is_served_from_docs(tmp_path: Path) -> None:
    """Every migration_url of the contracts that is a gateway path names a file of docs/, which the gateway serves."""
    documents = migration_notes(load_catalog(DESCRIPTOR_SET), tmp_path)
    assert [d.path for d in documents] == ["/docs/versions.md"]
    assert documents[0].file.read_text() == (REPO_ROOT / "docs" / "versions.md").read_text()
    with pytest.raises(FileNotFoundError, match="names no file"):
        migration_notes(load_catalog(DESCRIPTOR_SET), tmp_path, docs_dir=tmp_path / "elsewhere")
