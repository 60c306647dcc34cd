"""Every IntegrationService operation as native gRPC through Envoy, with status codes and error details."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2

from chassis.tooling.mesh_testing import mesh_channel, running_mesh
from chassis.tooling.supervisor import Mesh
from protomesh.common.v1 import service_info_pb2
from protomesh.integration.v1 import integration_pb2
from protomesh.integration.v1 import integration_service_pb2 as pb
from protomesh.integration.v1.integration_service_pb2_grpc import IntegrationServiceStub
from tests.support import errors
from tests.support.errors import bad_fields, reason
from tests.support.fault_server import FaultServer, fault_server

T = 20  # seconds per call
TOKEN = f"grpc-{uuid.uuid4().hex}"
HTTP = integration_pb2.INTEGRATION_KIND_HTTP
SERVING = service_info_pb2.HEALTH_STATE_SERVING


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """PostgreSQL, NATS, one integration replica and Envoy; loopback admitted for the fake APIs (their ports
    vary per test), the mesh's own servers on it still refused."""
    with running_mesh(tmp_path_factory.mktemp("mesh"), only=["integration"], replicas=1,
                      extra_env={"INTEGRATION_ALLOWED_TARGETS": "127.0.0.1"}) as started:
        yield started


@pytest.fixture(scope="module")
def stub(mesh: Mesh) -> Iterator[IntegrationServiceStub]:
    with mesh_channel(mesh) as channel:
        yield IntegrationServiceStub(channel)


@pytest.fixture(scope="module")
def api() -> Iterator[FaultServer]:
    with fault_server(token=TOKEN) as server:
        yield server


def struct(**values: Any) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(values)
    return s


def failure(call: Callable[..., Any], request: Any) -> grpc.RpcError:
    # Calls here may go through retries of an external API first: a longer bound than the shared one.
    return errors.failure(call, request, timeout=T)


def new_http(stub: IntegrationServiceStub, api: FaultServer, name: str, **config: Any) -> integration_pb2.Integration:
    return stub.CreateIntegration(pb.CreateIntegrationRequest(
        name=name, kind=HTTP, config=struct(base_url=api.url, auth="bearer", health_path="/health",
                                            test_path="/v1/items/t", **config),
        credentials={"token": TOKEN}), timeout=T).integration


def test_integration_lifecycle(stub: IntegrationServiceStub, api: FaultServer) -> None:
    created = new_http(stub, api, "grpc-api")
    assert created.has_credentials and list(created.credential_keys) == ["token"] and created.version == 1
    assert TOKEN not in str(created)
    got = stub.GetIntegration(pb.GetIntegrationRequest(integration_id=created.integration_id), timeout=T)
    assert got.integration.name == "grpc-api"
    listed = stub.ListIntegrations(pb.ListIntegrationsRequest(kind=HTTP, name_contains="grpc-"), timeout=T)
    assert [i.integration_id for i in listed.integrations] == [created.integration_id]
    updated = stub.UpdateIntegration(pb.UpdateIntegrationRequest(
        integration_id=created.integration_id, description="via grpc", enabled=False,
        update_mask=field_mask_pb2.FieldMask(paths=["description", "enabled"]), expected_version=1), timeout=T)
    assert updated.integration.description == "via grpc" and not updated.integration.enabled
    error = failure(stub.UpdateIntegration, pb.UpdateIntegrationRequest(
        integration_id=created.integration_id, description="x", expected_version=1))
    assert error.code() == grpc.StatusCode.ABORTED
    error = failure(stub.InvokeIntegration, pb.InvokeIntegrationRequest(
        integration_id=created.integration_id, operation="request"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    stub.DeleteIntegration(pb.DeleteIntegrationRequest(integration_id=created.integration_id), timeout=T)
    for call, request in [
        (stub.GetIntegration, pb.GetIntegrationRequest(integration_id=created.integration_id)),
        (stub.DeleteIntegration, pb.DeleteIntegrationRequest(integration_id=created.integration_id)),
        (stub.UpdateIntegration, pb.UpdateIntegrationRequest(integration_id=str(uuid.uuid4()), name="x")),
        (stub.CheckIntegrationHealth, pb.CheckIntegrationHealthRequest(integration_id=str(uuid.uuid4()))),
        (stub.GetIntegrationStatus, pb.GetIntegrationStatusRequest(integration_id=str(uuid.uuid4()))),
        (stub.TestIntegration, pb.TestIntegrationRequest(integration_id=str(uuid.uuid4()))),
        (stub.InvokeIntegration, pb.InvokeIntegrationRequest(integration_id=str(uuid.uuid4()), operation="x")),
        (stub.GetRateLimitStatus, pb.GetRateLimitStatusRequest(integration_id=str(uuid.uuid4()))),
        (stub.GetCacheStats, pb.GetCacheStatsRequest(integration_id=str(uuid.uuid4()))),
        (stub.ClearCache, pb.ClearCacheRequest(integration_id=str(uuid.uuid4()))),
        (stub.GetCircuitBreakerStatus, pb.GetCircuitBreakerStatusRequest(integration_id=str(uuid.uuid4()))),
        (stub.ResetCircuitBreaker, pb.ResetCircuitBreakerRequest(integration_id=str(uuid.uuid4()))),
        (stub.CheckClientHealth, pb.CheckClientHealthRequest(client_type="gopher")),
        (stub.TestClient, pb.TestClientRequest(client_type="gopher")),
    ]:
        error = failure(call, request)
        assert error.code() == grpc.StatusCode.NOT_FOUND, (call, error.details())
        assert reason(error) == "ERROR_REASON_NOT_FOUND"
    malformed = failure(stub.CheckIntegrationHealth, pb.CheckIntegrationHealthRequest(integration_id="nope"))
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT and "integration_id" in (malformed.details() or "")


def test_validation_and_conflicts(stub: IntegrationServiceStub, api: FaultServer) -> None:
    assert bad_fields(failure(stub.CreateIntegration, pb.CreateIntegrationRequest())) == {"name", "kind"}
    assert bad_fields(failure(stub.CreateIntegration, pb.CreateIntegrationRequest(
        name="s3", kind=integration_pb2.INTEGRATION_KIND_S3, config=struct(endpoint="http://h:1/path", bucket="B")))
    ) == {"config.endpoint", "config.bucket", "credentials.access_key_id", "credentials.secret_access_key"}
    new_http(stub, api, "grpc-dup")
    error = failure(stub.CreateIntegration, pb.CreateIntegrationRequest(
        name="GRPC-dup", kind=HTTP, config=struct(base_url=api.url)))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS and reason(error) == "ERROR_REASON_ALREADY_EXISTS"
    assert bad_fields(failure(stub.ListIntegrations, pb.ListIntegrationsRequest(page_size=-1))) == {"page_size"}
    refused = failure(stub.CreateIntegration, pb.CreateIntegrationRequest(
        name="grpc-metadata", kind=HTTP, config=struct(base_url="http://169.254.169.254/latest/")))
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(refused) == {"config.base_url"}
    assert "cloud metadata" in (refused.details() or "")


def test_probe_invoke_limits_cache_and_breaker(stub: IntegrationServiceStub, api: FaultServer) -> None:
    integration = new_http(stub, api, "grpc-calls", rate_limit={"per_client_requests_per_second": 0.01,
                                                                 "per_client_burst": 3})
    iid = integration.integration_id
    health = stub.CheckIntegrationHealth(pb.CheckIntegrationHealthRequest(integration_id=iid), timeout=T)
    assert health.probe.state == SERVING and health.circuit_state == "closed"
    tested = stub.TestIntegration(pb.TestIntegrationRequest(integration_id=iid), timeout=T)
    assert tested.ok and len(tested.steps) == 3
    request = pb.InvokeIntegrationRequest(integration_id=iid, operation="request",
                                          parameters=struct(path="/v1/items/g"))
    first = stub.InvokeIntegration(request, timeout=T, metadata=[("x-client-key", "grpc-client")])
    second = stub.InvokeIntegration(request, timeout=T, metadata=[("x-client-key", "grpc-client")])
    assert first.result["status"] == 200 and not first.from_cache and second.from_cache
    stub.InvokeIntegration(request, timeout=T, metadata=[("x-client-key", "grpc-client")])
    error = failure(lambda r, timeout: stub.InvokeIntegration(r, timeout=timeout,
                                                              metadata=[("x-client-key", "grpc-client")]), request)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and reason(error) == "ERROR_REASON_RESOURCE_EXHAUSTED"
    limits = stub.GetRateLimitStatus(pb.GetRateLimitStatusRequest(integration_id=iid), timeout=T)
    (client,) = limits.clients
    assert (client.key, client.admitted, client.rejected) == ("grpc-client", 3, 1)
    assert limits.integration.admitted == 1, "cache hits take no token from the integration's bucket"
    cache = stub.GetCacheStats(pb.GetCacheStatsRequest(integration_id=iid), timeout=T).cache
    assert (cache.hits, cache.misses, cache.entries) == (2, 1, 1)
    cleared = stub.ClearCache(pb.ClearCacheRequest(integration_id=iid), timeout=T)
    assert cleared.cleared_entries == 1 and cleared.cache.entries == 0
    status = stub.GetIntegrationStatus(pb.GetIntegrationStatusRequest(integration_id=iid), timeout=T)
    assert status.calls.succeeded == 1 and status.integration.last_probe.probe == "test"
    assert bad_fields(failure(stub.InvokeIntegration, pb.InvokeIntegrationRequest(
        integration_id=iid, operation="request", parameters=struct(path="no-slash")))) == {"parameters.path"}

    with fault_server() as down:
        flaky = stub.CreateIntegration(pb.CreateIntegrationRequest(
            name="grpc-flaky", kind=HTTP, config=struct(base_url=down.url, resilience={
                "failure_threshold": 2, "recovery_timeout_seconds": 60, "max_attempts": 1})), timeout=T).integration
        down.set_mode("failing")
        call = pb.InvokeIntegrationRequest(integration_id=flaky.integration_id, operation="request",
                                           parameters=struct(method="POST", path="/v1/charges"))
        for _ in range(2):
            assert failure(stub.InvokeIntegration, call).code() == grpc.StatusCode.UNAVAILABLE
        error = failure(stub.InvokeIntegration, call)
        assert error.code() == grpc.StatusCode.UNAVAILABLE and reason(error) == "ERROR_REASON_CIRCUIT_OPEN"
        breaker = stub.GetCircuitBreakerStatus(pb.GetCircuitBreakerStatusRequest(
            integration_id=flaky.integration_id), timeout=T)
        assert breaker.state == "opened" and breaker.failure_threshold == 2 and breaker.calls.short_circuited == 1
        reset = stub.ResetCircuitBreaker(pb.ResetCircuitBreakerRequest(integration_id=flaky.integration_id),
                                         timeout=T)
        assert (reset.previous_state, reset.state) == ("opened", "closed")


def test_clients_info_and_health(stub: IntegrationServiceStub, api: FaultServer, tmp_path: Path) -> None:
    stub.CreateIntegration(pb.CreateIntegrationRequest(
        name="grpc-dir", kind=integration_pb2.INTEGRATION_KIND_LOCAL_STORAGE, config=struct(root=str(tmp_path))),
        timeout=T)
    clients = stub.ListClients(pb.ListClientsRequest(), timeout=T).clients
    assert {c.client_type for c in clients} == {"http", "postgres", "smtp", "local_storage", "s3", "nats"}
    everything = stub.CheckAllClientsHealth(pb.CheckAllClientsHealthRequest(), timeout=T)
    assert {c.client_type for c in everything.clients} == {c.client_type for c in clients}
    storage = stub.CheckClientHealth(pb.CheckClientHealthRequest(client_type="local_storage"), timeout=T).health
    assert storage.state == SERVING and [i.name for i in storage.integrations] == ["grpc-dir"]
    adhoc = stub.TestClient(pb.TestClientRequest(client_type="local_storage", config=struct(root=str(tmp_path / "t"))),
                            timeout=T)
    assert adhoc.ok and [s.name for s in adhoc.results[0].steps] == ["reach", "put", "get", "delete"]
    assert bad_fields(failure(stub.TestClient, pb.TestClientRequest(
        client_type="local_storage", config=struct(root="relative")))) == {"config.root"}
    info = stub.GetInfo(pb.GetInfoRequest(), timeout=T)
    assert info.info.name == "integration" and info.encryption_key_source == "generated file"
    assert stub.GetHealth(pb.GetHealthRequest(), timeout=T).health.state == SERVING
    assert stub.GetReadiness(pb.GetReadinessRequest(), timeout=T).health.state == SERVING
    assert stub.GetLiveness(pb.GetLivenessRequest(), timeout=T).state == SERVING
