"""IntegrationService over a real channel: each RPC's happy path and the errors only the servicer can give.

Local-storage integrations (a folder under tmp_path) need no external server, so these stay fast.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2
from google.rpc import error_details_pb2

from chassis.testing import InProcess
from protomesh.common.v1 import service_info_pb2
from protomesh.integration.v1 import integration_pb2
from protomesh.integration.v1 import integration_service_pb2 as pb
from protomesh.integration.v1.integration_service_pb2_grpc import IntegrationServiceStub
from tests.support.errors import async_failure, bad_fields, reason, status_of

LOCAL = integration_pb2.INTEGRATION_KIND_LOCAL_STORAGE
SERVING = service_info_pb2.HEALTH_STATE_SERVING


def struct(**fields: Any) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(fields)
    return s


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=paths)


@pytest.fixture
def stub(integration: InProcess[Any]) -> IntegrationServiceStub:
    return integration.stub(IntegrationServiceStub)


async def new_dir(stub: IntegrationServiceStub, root: Path, name: str = "",
                  **fields: Any) -> integration_pb2.Integration:
    reply = await stub.CreateIntegration(pb.CreateIntegrationRequest(
        name=name or f"dir-{uuid.uuid4().hex[:8]}", kind=LOCAL, config=struct(root=str(root)), **fields))
    return reply.integration


def error_metadata(error: grpc.aio.AioRpcError) -> dict[str, str]:
    for detail in status_of(error).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return dict(info.metadata)
    return {}


async def test_lifecycle_of_an_integration(stub: IntegrationServiceStub, tmp_path: Path) -> None:
    created = await new_dir(stub, tmp_path, "life-dir", description="files", labels={"team": "ops"})
    iid = created.integration_id
    assert (created.version, created.enabled, dict(created.labels)) == (1, True, {"team": "ops"})
    assert (await stub.GetIntegration(pb.GetIntegrationRequest(integration_id=iid))).integration == created

    updated = (await stub.UpdateIntegration(pb.UpdateIntegrationRequest(
        integration_id=iid, description="more files", expected_version=1))).integration
    assert (updated.version, updated.description, dict(updated.labels)) == (2, "more files", {"team": "ops"})
    cleared = (await stub.UpdateIntegration(pb.UpdateIntegrationRequest(
        integration_id=iid, update_mask=mask("labels", "name"), name="life-dir-2"))).integration
    assert (cleared.name, dict(cleared.labels), cleared.version) == ("life-dir-2", {}, 3)

    put = await stub.InvokeIntegration(pb.InvokeIntegrationRequest(
        integration_id=iid, operation="put", parameters=struct(key="a.txt", content="hi")))
    assert put.attempts == 1 and not put.from_cache
    request = pb.InvokeIntegrationRequest(integration_id=iid, operation="get", parameters=struct(key="a.txt"))
    first = await stub.InvokeIntegration(request, metadata=[("x-client-key", "tester")])
    again = await stub.InvokeIntegration(request, metadata=[("x-client-key", "tester")])
    assert first.result["content"] == "hi" and not first.from_cache and again.from_cache

    health = await stub.CheckIntegrationHealth(pb.CheckIntegrationHealthRequest(integration_id=iid))
    assert health.probe.state == SERVING and health.circuit_state == "closed"
    tested = await stub.TestIntegration(pb.TestIntegrationRequest(integration_id=iid))
    assert tested.ok and tested.probe.probe == "test"
    status = await stub.GetIntegrationStatus(pb.GetIntegrationStatusRequest(integration_id=iid))
    assert status.integration.last_probe.probe == "test" and status.calls.succeeded == 2
    limits = await stub.GetRateLimitStatus(pb.GetRateLimitStatusRequest(integration_id=iid))
    assert limits.integration_id == iid and limits.integration.admitted == 2, "the cache hit took no token"
    cache = (await stub.GetCacheStats(pb.GetCacheStatsRequest(integration_id=iid))).cache
    assert (cache.hits, cache.entries) == (1, 1)
    emptied = await stub.ClearCache(pb.ClearCacheRequest(integration_id=iid))
    assert emptied.cleared_entries == 1 and emptied.cache.entries == 0
    breaker = await stub.GetCircuitBreakerStatus(pb.GetCircuitBreakerStatusRequest(integration_id=iid))
    assert breaker.state == "closed" and breaker.failure_count == 0
    reset = await stub.ResetCircuitBreaker(pb.ResetCircuitBreakerRequest(integration_id=iid))
    assert (reset.previous_state, reset.state) == ("closed", "closed")

    deleted = await stub.DeleteIntegration(pb.DeleteIntegrationRequest(integration_id=iid))
    assert deleted.integration_id == iid
    error = await async_failure(stub.GetIntegration, pb.GetIntegrationRequest(integration_id=iid))
    assert error.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("rpc", ["GetIntegration", "DeleteIntegration", "CheckIntegrationHealth",
                                 "GetIntegrationStatus", "TestIntegration", "GetRateLimitStatus", "GetCacheStats",
                                 "ClearCache", "GetCircuitBreakerStatus", "ResetCircuitBreaker"])
@pytest.mark.parametrize(("integration_id", "expected"),
                         [(str(uuid.uuid4()), "NOT_FOUND"), ("not-a-uuid", "INVALID_ARGUMENT")],
                         ids=["unknown", "malformed"])
async def test_an_unknown_id_is_not_found_a_malformed_one_invalid(stub: IntegrationServiceStub, rpc: str,
                                                                  integration_id: str, expected: str) -> None:
    request = getattr(pb, f"{rpc}Request")(integration_id=integration_id)
    error = await async_failure(getattr(stub, rpc), request)
    assert error.code().name == expected and reason(error) == f"ERROR_REASON_{expected}"


async def test_update_and_invoke_of_an_unknown_id_are_not_found(stub: IntegrationServiceStub) -> None:
    for call, request in [
        (stub.UpdateIntegration, pb.UpdateIntegrationRequest(integration_id=str(uuid.uuid4()), description="x")),
        (stub.InvokeIntegration, pb.InvokeIntegrationRequest(integration_id=str(uuid.uuid4()), operation="get")),
        (stub.CheckClientHealth, pb.CheckClientHealthRequest(client_type="gopher")),
        (stub.TestClient, pb.TestClientRequest(client_type="gopher")),
    ]:
        assert (await async_failure(call, request)).code() == grpc.StatusCode.NOT_FOUND


async def test_pages_newest_first_with_tokens_bound_to_the_filters(stub: IntegrationServiceStub,
                                                                   tmp_path: Path) -> None:
    for i in range(3):
        await new_dir(stub, tmp_path / str(i), f"page-dir-{i}", labels={"batch": "p"})
    first = await stub.ListIntegrations(pb.ListIntegrationsRequest(page_size=2, label="batch=p"))
    assert first.page_info.total_size == 3 and first.page_info.next_page_token
    token = first.page_info.next_page_token
    rest = await stub.ListIntegrations(pb.ListIntegrationsRequest(page_size=2, label="batch=p", page_token=token))
    names = [i.name for i in [*first.integrations, *rest.integrations]]
    assert names == ["page-dir-2", "page-dir-1", "page-dir-0"] and not rest.page_info.next_page_token
    assert len((await stub.ListIntegrations(pb.ListIntegrationsRequest(label="batch"))).integrations) >= 3
    disabled = await stub.ListIntegrations(pb.ListIntegrationsRequest(enabled="false", label="batch=p"))
    assert disabled.integrations == []

    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for request in [pb.ListIntegrationsRequest(page_size=2, label="batch=p", page_token=tampered),
                    pb.ListIntegrationsRequest(page_size=2, label="batch=q", page_token=token),
                    pb.ListIntegrationsRequest(page_size=2, page_token=token)]:
        assert bad_fields(await async_failure(stub.ListIntegrations, request)) == {"page_token"}


async def test_update_masks_name_bad_paths_and_drop_repeats(stub: IntegrationServiceStub, tmp_path: Path) -> None:
    iid = (await new_dir(stub, tmp_path, description="d")).integration_id

    async def refused(*paths: str, **fields: Any) -> set[str]:
        request = pb.UpdateIntegrationRequest(integration_id=iid, update_mask=mask(*paths), **fields)
        return bad_fields(await async_failure(stub.UpdateIntegration, request))

    assert await refused("nope", description="x") == {"update_mask.paths[0]"}  # unknown
    assert await refused("description", "kind") == {"update_mask.paths[1]"}  # immutable
    assert await refused("version") == {"update_mask.paths[0]"}
    assert bad_fields(await async_failure(stub.UpdateIntegration, pb.UpdateIntegrationRequest(
        integration_id=iid))) == {"update_mask"}  # nothing to update
    twice = await stub.UpdateIntegration(pb.UpdateIntegrationRequest(
        integration_id=iid, update_mask=mask("description", "description"), description="once"))
    assert (twice.integration.description, twice.integration.version) == ("once", 2)


async def test_a_stale_expected_version_is_aborted(stub: IntegrationServiceStub, tmp_path: Path) -> None:
    iid = (await new_dir(stub, tmp_path)).integration_id
    await stub.UpdateIntegration(pb.UpdateIntegrationRequest(integration_id=iid, description="a", expected_version=1))
    error = await async_failure(stub.UpdateIntegration, pb.UpdateIntegrationRequest(
        integration_id=iid, description="b", expected_version=1))
    assert error.code() == grpc.StatusCode.ABORTED and "re-read" in (error.details() or "")
    assert error_metadata(error) == {"current_version": "2", "expected_version": "1"}
    got = (await stub.GetIntegration(pb.GetIntegrationRequest(integration_id=iid))).integration
    assert (got.description, got.version) == ("a", 2), "a refused write changes nothing"


async def test_names_are_unique_ignoring_case(stub: IntegrationServiceStub, tmp_path: Path) -> None:
    await new_dir(stub, tmp_path, "Unique-Dir")
    error = await async_failure(stub.CreateIntegration, pb.CreateIntegrationRequest(
        name="unique-dir", kind=LOCAL, config=struct(root=str(tmp_path))))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    other = await new_dir(stub, tmp_path, "other-dir")
    error = await async_failure(stub.UpdateIntegration, pb.UpdateIntegrationRequest(
        integration_id=other.integration_id, name="UNIQUE-DIR"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_what_only_the_kind_can_tell(stub: IntegrationServiceStub, tmp_path: Path) -> None:
    assert bad_fields(await async_failure(stub.CreateIntegration, pb.CreateIntegrationRequest(
        name="kind-dir", kind=LOCAL, config=struct(root="relative"), credentials={"token": "x"}))) >= {
        "config.root", "credentials.token"}
    iid = (await new_dir(stub, tmp_path)).integration_id
    assert bad_fields(await async_failure(stub.UpdateIntegration, pb.UpdateIntegrationRequest(
        integration_id=iid, config=struct(root="relative")))) == {"config.root"}
    bad = bad_fields(await async_failure(stub.InvokeIntegration, pb.InvokeIntegrationRequest(
        integration_id=iid, operation="fetch")))
    assert bad == {"operation"}
    assert bad_fields(await async_failure(stub.InvokeIntegration, pb.InvokeIntegrationRequest(
        integration_id=iid, operation="get", parameters=struct(key="../etc/passwd")))) == {"parameters.key"}
    header_key = await async_failure(
        lambda r, timeout: stub.InvokeIntegration(r, timeout=timeout, metadata=[("x-client-key", "has space")]),
        pb.InvokeIntegrationRequest(integration_id=iid, operation="get", parameters=struct(key="a")))
    assert bad_fields(header_key) == {"client_key"}
    await stub.UpdateIntegration(pb.UpdateIntegrationRequest(integration_id=iid, update_mask=mask("enabled")))
    error = await async_failure(stub.InvokeIntegration, pb.InvokeIntegrationRequest(
        integration_id=iid, operation="get", parameters=struct(key="a")))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_clients_health_tests_and_info(stub: IntegrationServiceStub, tmp_path: Path) -> None:
    await new_dir(stub, tmp_path, "clients-dir")
    clients = (await stub.ListClients(pb.ListClientsRequest())).clients
    assert {c.client_type for c in clients} == {"http", "postgres", "smtp", "local_storage", "s3", "nats"}
    everything = await stub.CheckAllClientsHealth(pb.CheckAllClientsHealthRequest())
    assert {c.client_type for c in everything.clients} == {c.client_type for c in clients}
    storage = (await stub.CheckClientHealth(pb.CheckClientHealthRequest(client_type="local_storage"))).health
    assert storage.state == SERVING and "clients-dir" in [i.name for i in storage.integrations]
    adhoc = await stub.TestClient(pb.TestClientRequest(client_type="local_storage",
                                                       config=struct(root=str(tmp_path / "adhoc"))))
    assert adhoc.ok and adhoc.results[0].integration_id == ""
    registered = await stub.TestClient(pb.TestClientRequest(client_type="local_storage"))
    assert registered.results and all(r.integration_id for r in registered.results)
    assert bad_fields(await async_failure(stub.TestClient, pb.TestClientRequest(
        client_type="local_storage", config=struct(root="relative")))) == {"config.root"}
    info = await stub.GetInfo(pb.GetInfoRequest())
    assert info.info.name == "integration" and info.encryption_key_source == "env" and info.integration_count >= 1
