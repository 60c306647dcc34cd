"""The field service through the gateway (Envoy): REST and native gRPC with real users' tokens.

Organization A's member creates a farm and fields over REST (areas checked against the ellipsoidal closed
form, bad geometry and an overlap refused with the field named), redraws a boundary and reads the old one
back at a past time, queries by point over native gRPC and exports GeoJSON. A member of organization B sees
none of it: 404 by id, empty lists, queries and exports. A `field-report` agent execution summarises the
organization's fields through the agent service's field client.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
import requests

from chassis.paths import REPO_ROOT
from chassis.tooling.supervisor import Mesh
from protomesh.field.v1 import field_service_pb2 as pb
from protomesh.field.v1.field_service_pb2_grpc import FieldServiceStub
from services.field.tests.shapes import ellipsoid_rectangle_area, rect
from tests.e2e.authz_support import Caller, create_organization, member
from tests.e2e.identity_support import TIMEOUT, admin_token, base_url, identity_mesh


@dataclass(frozen=True)
class World:
    mesh: Mesh
    a: Caller
    b: Caller


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with identity_mesh("field", "agent") as mesh:
        platform = admin_token(mesh)
        org_a, org_b = create_organization(mesh, platform, "fields-a"), create_organization(mesh, platform, "fields-b")
        yield World(mesh, member(mesh, platform, org_a, "member"), member(mesh, platform, org_b, "member"))


def rest(world: World, caller: Caller, verb: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(verb, base_url(world.mesh) + path, json=body, timeout=TIMEOUT,
                            headers={**caller.headers, "content-type": "application/json"})


def ok(reply: requests.Response) -> Any:
    assert reply.status_code == 200, f"{reply.status_code} {reply.text}"
    return reply.json()


def violations(reply: requests.Response) -> set[str]:
    assert reply.status_code == 400, f"{reply.status_code} {reply.text}"
    return {v["field"] for d in reply.json().get("details", []) for v in d.get("field_violations", [])}


def test_farms_fields_history_queries_and_export_through_the_gateway(world: World) -> None:
    a = world.a
    farm = ok(rest(world, a, "POST", "/v1/farms", {"name": f"farm-{uuid.uuid4().hex[:6]}",
                                                     "location": {"longitude": 5.0, "latitude": 52.0},
                                                     "timezone": "Europe/Amsterdam"}))["farm"]
    made = ok(rest(world, a, "POST", "/v1/fields", {"farm_id": farm["farm_id"], "name": "North",
                                                     "boundary": rect(5.0, 52.0, 0.004, 0.003)}))["field"]
    expected = ellipsoid_rectangle_area(5.0, 52.0, 5.004, 52.003)
    assert made["measures"]["area"]["square_meters"] == pytest.approx(expected, rel=1e-4)
    assert made["measures"]["area"]["hectares"] == pytest.approx(expected / 10_000, rel=1e-4)

    unclosed = {"type": "Polygon", "coordinates": [[[5.1, 52], [5.11, 52], [5.11, 52.01], [5.1, 52.01], [5.1, 52.005],
                                                    [5.101, 52.001]]]}
    bad = rest(world, a, "POST", "/v1/fields", {"farm_id": farm["farm_id"], "name": "Open", "boundary": unclosed})
    assert violations(bad) == {"boundary.coordinates[0][5]"}
    overlap = rest(world, a, "POST", "/v1/fields", {"farm_id": farm["farm_id"], "name": "Clash",
                                                    "boundary": rect(5.002, 52.0, 0.004, 0.003)})
    assert overlap.status_code == 400 and "'North'" in overlap.json()["message"], overlap.text

    before = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    redrawn = ok(rest(world, a, "PUT", f"/v1/fields/{made['field_id']}/boundary",
                      {"boundary": rect(5.0, 52.0, 0.002, 0.003)}))["field"]
    assert redrawn["boundary_version"] == 2
    then = ok(rest(world, a, "GET", f"/v1/fields/{made['field_id']}/boundary?at_time={before}"))["boundary"]
    assert then["version"] == 1 and then["measures"]["area"] == made["measures"]["area"]

    with grpc.insecure_channel(world.mesh.gateway) as channel:
        stub = FieldServiceStub(channel)
        metadata = tuple(a.headers.items())
        found = stub.FindFieldsAtPoint(pb.FindFieldsAtPointRequest(longitude=5.001, latitude=52.001),
                                       metadata=metadata, timeout=TIMEOUT)
        assert [x.field_id for x in found.fields] == [made["field_id"]]
        gone = stub.FindFieldsAtPoint(pb.FindFieldsAtPointRequest(longitude=5.003, latitude=52.001),
                                      metadata=metadata, timeout=TIMEOUT)
        assert not gone.fields  # outside the redrawn boundary
    exported = ok(rest(world, a, "GET", f"/v1/fields/export?farm_id={farm['farm_id']}"))["feature_collection"]
    assert exported["type"] == "FeatureCollection"
    assert [x["properties"]["id"] for x in exported["features"]] == [made["field_id"]]


def test_another_organization_sees_nothing(world: World) -> None:
    a, b = world.a, world.b
    farm = ok(rest(world, a, "POST", "/v1/farms", {"name": f"private-{uuid.uuid4().hex[:6]}"}))["farm"]
    made = ok(rest(world, a, "POST", "/v1/fields", {"farm_id": farm["farm_id"], "name": "Private",
                                                     "boundary": rect(6.0, 52.0, 0.002, 0.002)}))["field"]
    for path in (f"/v1/fields/{made['field_id']}", f"/v1/farms/{farm['farm_id']}",
                 f"/v1/fields/{made['field_id']}/boundaries"):
        assert rest(world, b, "GET", path).status_code == 404
    assert rest(world, b, "POST", f"/v1/fields/{made['field_id']}/archive", {}).status_code == 404
    assert not ok(rest(world, b, "GET", "/v1/fields")).get("fields")
    assert not ok(rest(world, b, "GET", "/v1/fields/at-point?longitude=6.001&latitude=52.001")).get("fields")
    assert ok(rest(world, b, "GET", "/v1/fields/export"))["feature_collection"].get("features", []) == []
    with grpc.insecure_channel(world.mesh.gateway) as channel, pytest.raises(grpc.RpcError) as caught:
        FieldServiceStub(channel).GetField(pb.GetFieldRequest(field_id=made["field_id"]),
                                           metadata=tuple(b.headers.items()), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    still = ok(rest(world, a, "GET", f"/v1/fields/{made['field_id']}"))["field"]
    assert still["status"] == "FIELD_STATUS_ACTIVE"


def test_no_token_is_401(world: World) -> None:
    reply = requests.get(base_url(world.mesh) + "/v1/fields", timeout=TIMEOUT)
    assert reply.status_code == 401



def test_the_readme_examples_work_as_written(world: World) -> None:
    """The README's field section, run against this mesh as the local admin (its CLI session)."""
    from tests.e2e.test_readme import for_mesh, run_bash, section_blocks

    [script] = section_blocks("Fields:", "bash")
    output = run_bash(script, world.mesh)
    assert '"hectares": 9.1696' in output or '"hectares":9.1696' in output, output
    assert "boundary.coordinates[0][3]" in output and "FindFieldsAtPoint" not in output, output
    assert '"feature_collection"' in output and "North" in output, output
    assert "EXECUTION_STATE_SUCCEEDED" in output and '"field_count"' in output, output
    [program] = section_blocks("Fields:", "python")
    env = {**os.environ, "PROTOMESH_STATE_DIR": str(world.mesh.state_dir)}
    result = subprocess.run([sys.executable, "-c", for_mesh(program, world.mesh)], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("76.4077"), result.stdout


def test_a_field_report_execution_summarises_the_callers_organization(world: World) -> None:
    a, b = world.a, world.b
    farm = ok(rest(world, a, "POST", "/v1/farms", {"name": f"report-{uuid.uuid4().hex[:6]}"}))["farm"]
    wheat = ok(rest(world, a, "POST", "/v1/fields", {"farm_id": farm["farm_id"], "name": "Wheat",
                                                      "boundary": rect(7.0, 52.0, 0.002, 0.002)}))["field"]
    ok(rest(world, a, "POST", f"/v1/fields/{wheat['field_id']}/seasons", {"crop": "wheat"}))
    active = ok(rest(world, a, "GET", "/v1/fields?status=FIELD_STATUS_ACTIVE&page_size=1000"))["fields"]
    expected_ha = sum(f.get("measures", {}).get("area", {}).get("hectares", 0.0) for f in active)

    def report(caller: Caller) -> dict[str, Any]:
        agent = ok(rest(world, caller, "POST", "/v1/agents", {"name": f"fields-{uuid.uuid4().hex[:6]}",
                                                               "type": "field-report"}))["agent"]
        # A generous read timeout: the execution makes one call per field to the field service, on a busy machine.
        reply = requests.post(base_url(world.mesh) + f"/v1/agents/{agent['agent_id']}/execute", timeout=90,
                              json={"input": {"max_fields": 1000}, "wait": True},
                              headers={**caller.headers, "content-type": "application/json"})
        ran = ok(reply)["execution"]
        assert ran["state"] == "EXECUTION_STATE_SUCCEEDED", ran
        output: dict[str, Any] = ran["output"]
        return output

    mine = report(a)
    assert mine["field_count"] == len(active) == mine["fields_reported"]
    assert mine["total_hectares"] == pytest.approx(expected_ha, abs=1e-3)
    assert mine["crop_hectares"]["wheat"] == pytest.approx(wheat["measures"]["area"]["hectares"], abs=1e-3)
    assert mine["season_count"] >= 1
    theirs = report(b)
    assert theirs["field_count"] == 0 and theirs["total_hectares"] == 0  # B has no fields; A's are not B's
