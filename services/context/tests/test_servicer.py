"""ContextService over a real in-process channel: each RPC's happy path and its errors.

The contract's field rules (buf.validate, checked by the chassis before the servicer runs) are
broken one by one in RULES; the rest covers what the servicer and store decide: paging tokens,
update masks, expected_version, unknown ids, payload checks, access lists and states. Calls carry a
principal's claims as the gateway would set them (chassis.testing's channels); the access tests call
as several principals and anonymously.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, duration_pb2, field_mask_pb2, struct_pb2, timestamp_pb2

from chassis.identity import Principal, service_principal
from chassis.testing import InProcess
from protomesh.context.v1 import context_pb2
from protomesh.context.v1 import context_service_pb2 as pb
from protomesh.context.v1.context_service_pb2_grpc import ContextServiceStub
from services.context.deps import ContextDeps
from tests.support.errors import async_failure, bad_fields, reason

Stub = ContextServiceStub
ANY_ID = str(uuid.uuid4())
DAY = 86400

USER = Principal(subject=str(uuid.uuid4()), kind="user", organization="org-a", roles=frozenset({"member"}))
"""Who the tests call as unless they say otherwise: a user, whose subject is its id."""
OWNER = Principal(subject=str(uuid.uuid4()), kind="user", organization="org-a", roles=frozenset({"member"}))
AGENT = Principal(subject=service_principal("agent").subject, kind="service", organization="org-a",
                  roles=frozenset({"member"}), scopes=frozenset({"mesh"}))
"""The agent service's own principal acting in org-a (its task workers' calls, under chassis.acting_for)."""
CRM = Principal(subject="client:crm", kind="service", organization="org-a", client_id="crm",
                roles=frozenset({"member"}))
"""A service account (client credentials)."""
ADMIN = Principal(subject=str(uuid.uuid4()), kind="user", platform_admin=True)


@pytest.fixture
def stub(context_service: InProcess[ContextDeps]) -> Stub:
    return context_service.stub(ContextServiceStub, USER)


def struct(**values: Any) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(values)
    return s


def seconds_from_now(seconds: int) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    ts.seconds += seconds
    return ts


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


async def new_context(stub: Stub, **fields: Any) -> context_pb2.Context:
    request = pb.CreateContextRequest(**{"name": "ctx", "type": "session", **fields})
    return (await stub.CreateContext(request)).context


async def new_layer(stub: Stub, context_id: str, name: str, **fields: Any) -> context_pb2.Layer:
    request = pb.AddLayerRequest(context_id=context_id, name=name, **{"layer_type": "user", **fields})
    return (await stub.AddLayer(request)).layer


async def code_of(call: Callable[..., Any], request: Any) -> grpc.StatusCode:
    return (await async_failure(call, request)).code()


# --- every rule the contract declares: one request breaking it, and the field it names -------------

CREATE: dict[str, Any] = {"name": "n", "type": "t"}
RULES: list[tuple[str, str, Callable[[], Any], set[str]]] = [
    ("list page_size < 0", "ListContexts", lambda: pb.ListContextsRequest(page_size=-1), {"page_size"}),
    ("list page_size > 1000", "ListContexts", lambda: pb.ListContextsRequest(page_size=1001), {"page_size"}),
    ("list type pattern", "ListContexts", lambda: pb.ListContextsRequest(type="Bad Type"), {"type"}),
    ("list status defined", "ListContexts", lambda: pb.ListContextsRequest(status=99), {"status"}),  # type: ignore[arg-type]
    ("list tag pattern", "ListContexts", lambda: pb.ListContextsRequest(tags=["ok", "bad tag"]), {"tags[1]"}),
    ("list tags <= 32", "ListContexts", lambda: pb.ListContextsRequest(tags=[f"t{i}" for i in range(33)]), {"tags"}),
    ("list owner name", "ListContexts", lambda: pb.ListContextsRequest(owner="Billing"), {"owner"}),
    ("list owner bare service name", "ListContexts", lambda: pb.ListContextsRequest(owner="agent"), {"owner"}),
    ("create required", "CreateContext", lambda: pb.CreateContextRequest(), {"name", "type"}),
    ("create name blank", "CreateContext", lambda: pb.CreateContextRequest(**{**CREATE, "name": "  "}), {"name"}),
    ("create name spaces", "CreateContext", lambda: pb.CreateContextRequest(**{**CREATE, "name": " x"}), {"name"}),
    ("create name control", "CreateContext", lambda: pb.CreateContextRequest(**{**CREATE, "name": "a\x07b"}), {"name"}),
    ("create name <= 256", "CreateContext", lambda: pb.CreateContextRequest(**{**CREATE, "name": "n" * 257}), {"name"}),
    ("create type pattern", "CreateContext", lambda: pb.CreateContextRequest(**{**CREATE, "type": "9t"}), {"type"}),
    ("create type <= 64", "CreateContext", lambda: pb.CreateContextRequest(**{**CREATE, "type": "t" * 65}), {"type"}),
    ("create tag pattern", "CreateContext", lambda: pb.CreateContextRequest(**CREATE, tags=["-x"]), {"tags[0]"}),
    ("create tags <= 32", "CreateContext", lambda: pb.CreateContextRequest(**CREATE, tags=[f"t{i}" for i in range(33)]),
     {"tags"}),
    ("create shared_with subject", "CreateContext",
     lambda: pb.CreateContextRequest(**CREATE, shared_with=["service:crm", "crm", "user:x", str(uuid.uuid4()).upper()]),
     {"shared_with[1]", "shared_with[2]", "shared_with[3]"}),
    ("create shared_with <= 64", "CreateContext",
     lambda: pb.CreateContextRequest(**CREATE, shared_with=[f"service:s{i}" for i in range(65)]), {"shared_with"}),
    ("create ttl > 0", "CreateContext", lambda: pb.CreateContextRequest(**CREATE, ttl=duration_pb2.Duration()),
     {"ttl"}),
    ("create ttl <= 3650 days", "CreateContext",
     lambda: pb.CreateContextRequest(**CREATE, ttl=duration_pb2.Duration(seconds=3651 * DAY)), {"ttl"}),
    ("create expire_time future", "CreateContext",
     lambda: pb.CreateContextRequest(**CREATE, expire_time=seconds_from_now(-60)), {"expire_time"}),
    ("create expire_time horizon", "CreateContext",
     lambda: pb.CreateContextRequest(**CREATE, expire_time=seconds_from_now(3651 * DAY)), {"expire_time"}),
    ("create ttl with expire_time", "CreateContext",
     lambda: pb.CreateContextRequest(**CREATE, expire_time=seconds_from_now(-60), ttl=duration_pb2.Duration(seconds=5)),
     {"ttl"}),
    ("get id required", "GetContext", lambda: pb.GetContextRequest(), {"context_id"}),
    ("update id required", "UpdateContext", lambda: pb.UpdateContextRequest(name="x"), {"context_id"}),
    ("update name blank", "UpdateContext", lambda: pb.UpdateContextRequest(context_id=ANY_ID, name=""), {"name"}),
    ("update status EXPIRED", "UpdateContext",
     lambda: pb.UpdateContextRequest(context_id=ANY_ID, status=context_pb2.CONTEXT_STATUS_EXPIRED), {"status"}),
    ("update expected_version", "UpdateContext",
     lambda: pb.UpdateContextRequest(context_id=ANY_ID, name="x", expected_version=-1), {"expected_version"}),
    ("update ttl with expire_time", "UpdateContext",
     lambda: pb.UpdateContextRequest(context_id=ANY_ID, expire_time=seconds_from_now(60),
                                     ttl=duration_pb2.Duration(seconds=5)), {"ttl"}),
    ("update tag pattern", "UpdateContext", lambda: pb.UpdateContextRequest(context_id=ANY_ID, tags=["a b"]),
     {"tags[0]"}),
    ("delete expected_version", "DeleteContext",
     lambda: pb.DeleteContextRequest(context_id=ANY_ID, expected_version=-2), {"expected_version"}),
    ("layers id required", "ListLayers", lambda: pb.ListLayersRequest(), {"context_id"}),
    ("layers page_size", "ListLayers", lambda: pb.ListLayersRequest(context_id=ANY_ID, page_size=1001), {"page_size"}),
    ("layers layer_type", "ListLayers", lambda: pb.ListLayersRequest(context_id=ANY_ID, layer_type="UP"),
     {"layer_type"}),
    ("create request_id", "CreateContext", lambda: pb.CreateContextRequest(**CREATE, request_id="x" * 65),
     {"request_id"}),
    ("add request_id", "AddLayer",
     lambda: pb.AddLayerRequest(context_id=ANY_ID, name="n", layer_type="t", request_id="a b"), {"request_id"}),
    ("add required", "AddLayer", lambda: pb.AddLayerRequest(), {"context_id", "name", "layer_type"}),
    ("add name <= 128", "AddLayer", lambda: pb.AddLayerRequest(context_id=ANY_ID, name="n" * 129, layer_type="t"),
     {"name"}),
    ("add position >= 0", "AddLayer",
     lambda: pb.AddLayerRequest(context_id=ANY_ID, name="n", layer_type="t", position=-1), {"position"}),
    ("add position <= 1e6", "AddLayer",
     lambda: pb.AddLayerRequest(context_id=ANY_ID, name="n", layer_type="t", position=1_000_001), {"position"}),
    ("get layer ids required", "GetLayer", lambda: pb.GetLayerRequest(), {"context_id", "layer_id"}),
    ("update layer ids required", "UpdateLayer", lambda: pb.UpdateLayerRequest(name="x"), {"context_id", "layer_id"}),
    ("update layer position >= 1", "UpdateLayer",
     lambda: pb.UpdateLayerRequest(context_id=ANY_ID, layer_id=ANY_ID, position=0), {"position"}),
    ("update layer type", "UpdateLayer",
     lambda: pb.UpdateLayerRequest(context_id=ANY_ID, layer_id=ANY_ID, layer_type=""), {"layer_type"}),
    ("update layer name", "UpdateLayer",
     lambda: pb.UpdateLayerRequest(context_id=ANY_ID, layer_id=ANY_ID, name="a\tb"), {"name"}),
    ("update layer expected_version", "UpdateLayer",
     lambda: pb.UpdateLayerRequest(context_id=ANY_ID, layer_id=ANY_ID, name="x", expected_version=-1),
     {"expected_version"}),
    ("delete layer ids required", "DeleteLayer", lambda: pb.DeleteLayerRequest(), {"context_id", "layer_id"}),
    ("delete layer expected_version", "DeleteLayer",
     lambda: pb.DeleteLayerRequest(context_id=ANY_ID, layer_id=ANY_ID, expected_version=-1), {"expected_version"}),
    ("resolved id required", "GetResolvedContext", lambda: pb.GetResolvedContextRequest(), {"context_id"}),
    ("share required", "ShareContext", lambda: pb.ShareContextRequest(), {"context_id", "service"}),
    ("share service name", "ShareContext", lambda: pb.ShareContextRequest(context_id=ANY_ID, service="Not Valid"),
     {"service"}),
    ("unshare service name", "UnshareContext", lambda: pb.UnshareContextRequest(context_id=ANY_ID, service="x" * 64),
     {"service"}),
    ("analytics id required", "GetContextAnalytics", lambda: pb.GetContextAnalyticsRequest(), {"context_id"}),
    ("delete id required", "DeleteContext", lambda: pb.DeleteContextRequest(), {"context_id"}),
    ("unshare required", "UnshareContext", lambda: pb.UnshareContextRequest(), {"context_id", "service"}),
    ("update expire_time future", "UpdateContext",
     lambda: pb.UpdateContextRequest(context_id=ANY_ID, expire_time=seconds_from_now(-60)), {"expire_time"}),
    ("trends window", "GetUsageTrends", lambda: pb.GetUsageTrendsRequest(window="week"), {"window"}),
    ("trends last >= 0", "GetUsageTrends", lambda: pb.GetUsageTrendsRequest(last=-1), {"last"}),
    ("trends last <= 1000", "GetUsageTrends", lambda: pb.GetUsageTrendsRequest(last=1001), {"last"}),
    ("trends context_id uuid", "GetUsageTrends", lambda: pb.GetUsageTrendsRequest(context_id="nope"), {"context_id"}),
    ("trends type", "GetUsageTrends", lambda: pb.GetUsageTrendsRequest(type="Bad"), {"type"}),
    ("trends last with start", "GetUsageTrends",
     lambda: pb.GetUsageTrendsRequest(last=2, start_time=seconds_from_now(-DAY)), {"last"}),
]

@pytest.mark.parametrize(("method", "build", "fields"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
async def test_a_broken_contract_rule_names_its_field(stub: Stub, method: str, build: Callable[[], Any],
                                                      fields: set[str]) -> None:
    error = await async_failure(getattr(stub, method), build())
    assert bad_fields(error) == fields
    assert reason(error) == "ERROR_REASON_INVALID_ARGUMENT"


def _option(options: Any, name: str) -> Any:
    """A descriptor's option by its full name, or None (read by name: the typed extension API is not typed here)."""
    return next((value for descriptor, value in options.ListFields() if descriptor.full_name == name), None)


def test_the_table_breaks_every_rule_the_contract_declares() -> None:
    declared: set[tuple[str, str]] = set()
    for method in pb.DESCRIPTOR.services_by_name["ContextService"].methods:
        message = method.input_type
        declared |= {(method.name, f.name) for f in message.fields
                     if _option(f.GetOptions(), "buf.validate.field") is not None}
        message_rules = _option(message.GetOptions(), "buf.validate.message")
        # A message-level rule names its field by the start of its id (chassis/validation.py).
        declared |= {(method.name, rule.id.split(".")[0]) for rule in (message_rules.cel if message_rules else [])}
    broken = {(method, field.split("[")[0]) for _, method, _, fields in RULES for field in fields}
    assert declared - broken == set()


# --- contexts ----------------------------------------------------------------------------------------


async def test_context_create_get_update_delete(stub: Stub) -> None:
    ctx = await new_context(stub, metadata=struct(channel="web", n=2), tags=["vip", "eu", "vip"],
                            shared_with=["service:crm", "client:billing", "service:crm"],
                            ttl=duration_pb2.Duration(seconds=3600))
    assert (ctx.version, ctx.status, list(ctx.tags)) == (1, context_pb2.CONTEXT_STATUS_ACTIVE, ["vip", "eu"])
    assert list(ctx.shared_with) == ["client:billing", "service:crm"] and ctx.HasField("expire_time")
    assert ctx.owner == USER.subject, "the owner is the principal that created it"
    got = (await stub.GetContext(pb.GetContextRequest(context_id=ctx.context_id))).context
    assert got.access_count == 1 and got.metadata == struct(channel="web", n=2)

    updated = (await stub.UpdateContext(pb.UpdateContextRequest(
        context_id=ctx.context_id, name="renamed", status=context_pb2.CONTEXT_STATUS_ARCHIVED, expected_version=1,
    ))).context
    assert (updated.name, updated.status, updated.version) == ("renamed", context_pb2.CONTEXT_STATUS_ARCHIVED, 2)
    assert list(updated.tags) == ["vip", "eu"], "fields not named stay"

    deleted = await stub.DeleteContext(pb.DeleteContextRequest(context_id=ctx.context_id, expected_version=2))
    assert deleted.context_id == ctx.context_id
    assert await code_of(stub.GetContext, pb.GetContextRequest(context_id=ctx.context_id)) == grpc.StatusCode.NOT_FOUND


async def test_list_contexts_pages_newest_first_with_tokens_bound_to_the_filters(stub: Stub) -> None:
    kind = f"paged-{uuid.uuid4().hex[:8]}"
    made = [(await new_context(stub, name=f"c{i}", type=kind, tags=["all", f"t{i % 2}"])).context_id
            for i in range(5)]
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListContexts(pb.ListContextsRequest(type=kind, page_size=2, page_token=token))
        assert page.page_info.total_size == 5
        seen += [c.context_id for c in page.contexts]
        token = page.page_info.next_page_token
        if not token:
            break
    assert seen == made[::-1]
    tagged = await stub.ListContexts(pb.ListContextsRequest(type=kind, tags=["all", "t0", "t0"]))
    assert len(tagged.contexts) == 3

    first = (await stub.ListContexts(pb.ListContextsRequest(type=kind, page_size=2))).page_info.next_page_token
    tampered = first[:-2] + ("A" if first[-2] != "A" else "B") + first[-1]
    for request in (pb.ListContextsRequest(type=kind, page_size=2, page_token=tampered),
                    pb.ListContextsRequest(type=kind, owner="service:other", page_size=2, page_token=first),
                    pb.ListContextsRequest(type=kind, page_size=2, page_token="garbage")):
        assert bad_fields(await async_failure(stub.ListContexts, request)) == {"page_token"}


async def test_update_context_masks(stub: Stub) -> None:
    ctx = await new_context(stub, tags=["a"], ttl=duration_pb2.Duration(seconds=600))
    cleared = (await stub.UpdateContext(pb.UpdateContextRequest(
        context_id=ctx.context_id, update_mask=mask("tags", "expire_time", "tags")))).context
    assert list(cleared.tags) == [] and not cleared.HasField("expire_time") and cleared.version == 2
    by_ttl = (await stub.UpdateContext(pb.UpdateContextRequest(
        context_id=ctx.context_id, ttl=duration_pb2.Duration(seconds=60)))).context
    assert by_ttl.HasField("expire_time")

    def update(*paths: str, **fields: Any) -> pb.UpdateContextRequest:
        return pb.UpdateContextRequest(context_id=ctx.context_id, update_mask=mask(*paths), **fields)

    cases = [
        (pb.UpdateContextRequest(context_id=ctx.context_id), {"update_mask"}),
        (update("colour"), {"update_mask.paths[0]"}),
        (update("name", "owner", name="x"), {"update_mask.paths[1]"}),
        (update("name"), {"name"}),
        (update("status"), {"status"}),
    ]
    for request, fields in cases:
        assert bad_fields(await async_failure(stub.UpdateContext, request)) == fields, request
    immutable = await async_failure(stub.UpdateContext, update("owner"))
    assert "'owner' cannot be changed" in str(immutable.details())


async def test_update_and_delete_with_a_stale_version_are_aborted(stub: Stub) -> None:
    ctx = await new_context(stub)
    await stub.UpdateContext(pb.UpdateContextRequest(context_id=ctx.context_id, name="first", expected_version=1))
    stale = await async_failure(stub.UpdateContext, pb.UpdateContextRequest(context_id=ctx.context_id, name="second",
                                                                            expected_version=1))
    assert stale.code() == grpc.StatusCode.ABORTED and "re-read" in str(stale.details())
    assert await code_of(stub.DeleteContext, pb.DeleteContextRequest(context_id=ctx.context_id,
                                                                      expected_version=1)) == grpc.StatusCode.ABORTED
    layer = await new_layer(stub, ctx.context_id, "l")
    for call, request in (
        (stub.UpdateLayer, pb.UpdateLayerRequest(context_id=ctx.context_id, layer_id=layer.layer_id, name="x",
                                                 expected_version=7)),
        (stub.DeleteLayer, pb.DeleteLayerRequest(context_id=ctx.context_id, layer_id=layer.layer_id,
                                                 expected_version=7)),
    ):
        assert await code_of(call, request) == grpc.StatusCode.ABORTED


async def test_unknown_ids_are_not_found_malformed_ones_invalid(stub: Stub) -> None:
    ctx = await new_context(stub)
    missing = str(uuid.uuid4())
    calls: list[tuple[Any, Any]] = [
        (stub.GetContext, pb.GetContextRequest(context_id=missing)),
        (stub.UpdateContext, pb.UpdateContextRequest(context_id=missing, name="x")),
        (stub.DeleteContext, pb.DeleteContextRequest(context_id=missing)),
        (stub.ListLayers, pb.ListLayersRequest(context_id=missing)),
        (stub.AddLayer, pb.AddLayerRequest(context_id=missing, name="l", layer_type="t")),
        (stub.GetLayer, pb.GetLayerRequest(context_id=ctx.context_id, layer_id=missing)),
        (stub.UpdateLayer, pb.UpdateLayerRequest(context_id=ctx.context_id, layer_id=missing, name="x")),
        (stub.DeleteLayer, pb.DeleteLayerRequest(context_id=ctx.context_id, layer_id=missing)),
        (stub.GetResolvedContext, pb.GetResolvedContextRequest(context_id=missing)),
        (stub.ShareContext, pb.ShareContextRequest(context_id=missing, service="service:crm")),
        (stub.UnshareContext, pb.UnshareContextRequest(context_id=missing, service="service:crm")),
        (stub.GetContextAnalytics, pb.GetContextAnalyticsRequest(context_id=missing)),
    ]
    for call, request in calls:
        error = await async_failure(call, request)
        assert error.code() == grpc.StatusCode.NOT_FOUND, request
        assert reason(error) == "ERROR_REASON_NOT_FOUND"
    for call, request, field in ((stub.GetContext, pb.GetContextRequest(context_id="not-an-id"), "context_id"),
                                 (stub.GetLayer, pb.GetLayerRequest(context_id=ctx.context_id, layer_id="not-an-id"),
                                  "layer_id")):
        error = await async_failure(call, request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and reason(error) == "ERROR_REASON_INVALID_ARGUMENT"
        assert field in (error.details() or "")


async def test_metadata_is_checked_after_the_contract(stub: Stub) -> None:
    metadata = struct(deep={"k\x01": 1})
    metadata.fields["nan"].number_value = float("nan")
    error = await async_failure(stub.CreateContext, pb.CreateContextRequest(**CREATE, metadata=metadata))
    assert bad_fields(error) == {'metadata.deep["k\\u0001"]', "metadata.nan"}
    big = await async_failure(stub.CreateContext, pb.CreateContextRequest(**CREATE, metadata=struct(b="x" * 70_000)))
    assert bad_fields(big) == {"metadata"}


# --- layers ------------------------------------------------------------------------------------------


async def test_layers_add_get_update_list_resolve_delete(stub: Stub) -> None:
    ctx = await new_context(stub)
    base = await stub.AddLayer(pb.AddLayerRequest(context_id=ctx.context_id, name="base", layer_type="base",
                                                  data=struct(x={"y": 1, "z": 2})))
    assert base.layer.position == 1 and base.context.layer_count == 1
    top = await new_layer(stub, ctx.context_id, "top", data=struct(x={"y": 5}))
    got = (await stub.GetLayer(pb.GetLayerRequest(context_id=ctx.context_id, layer_id=top.layer_id))).layer
    assert got == top
    updated = await stub.UpdateLayer(pb.UpdateLayerRequest(
        context_id=ctx.context_id, layer_id=top.layer_id, data=struct(x={"z": None}, w=True), position=9,
        expected_version=1))
    assert (updated.layer.version, updated.layer.position, updated.layer.name) == (2, 9, "top")
    resolved = await stub.GetResolvedContext(pb.GetResolvedContextRequest(context_id=ctx.context_id))
    assert resolved.data == struct(x={"y": 1}, w=True)
    assert list(resolved.layer_ids) == [base.layer.layer_id, top.layer_id]
    gone = await stub.DeleteLayer(pb.DeleteLayerRequest(context_id=ctx.context_id, layer_id=top.layer_id,
                                                        expected_version=2))
    assert gone.context.layer_count == 1 and gone.layer_id == top.layer_id


async def test_list_layers_pages_by_position_with_tokens_bound_to_the_filters(stub: Stub) -> None:
    ctx = await new_context(stub)
    for i in range(5):
        await new_layer(stub, ctx.context_id, f"l{i}", layer_type="even" if i % 2 == 0 else "odd", position=50 - i)
    positions: list[int] = []
    token = ""
    while True:
        page = await stub.ListLayers(pb.ListLayersRequest(context_id=ctx.context_id, page_size=2, page_token=token))
        assert page.page_info.total_size == 5
        positions += [layer.position for layer in page.layers]
        token = page.page_info.next_page_token
        if not token:
            break
    assert positions == [46, 47, 48, 49, 50]
    even = await stub.ListLayers(pb.ListLayersRequest(context_id=ctx.context_id, layer_type="even"))
    assert [layer.name for layer in even.layers] == ["l4", "l2", "l0"]
    first = (await stub.ListLayers(pb.ListLayersRequest(context_id=ctx.context_id, page_size=2)))
    other_filter = pb.ListLayersRequest(context_id=ctx.context_id, layer_type="odd", page_size=2,
                                        page_token=first.page_info.next_page_token)
    assert bad_fields(await async_failure(stub.ListLayers, other_filter)) == {"page_token"}
    other = await new_context(stub)
    other_context = pb.ListLayersRequest(context_id=other.context_id, page_token=first.page_info.next_page_token)
    assert bad_fields(await async_failure(stub.ListLayers, other_context)) == {"page_token"}


async def test_update_layer_masks(stub: Stub) -> None:
    ctx = await new_context(stub)
    layer = await new_layer(stub, ctx.context_id, "l", data=struct(a=1))
    cleared = (await stub.UpdateLayer(pb.UpdateLayerRequest(
        context_id=ctx.context_id, layer_id=layer.layer_id, update_mask=mask("data", "data")))).layer
    assert cleared.data == struct() and cleared.version == 2 and cleared.size_bytes == 2

    def update(*paths: str) -> pb.UpdateLayerRequest:
        return pb.UpdateLayerRequest(context_id=ctx.context_id, layer_id=layer.layer_id, update_mask=mask(*paths))

    cases = [
        (pb.UpdateLayerRequest(context_id=ctx.context_id, layer_id=layer.layer_id), {"update_mask"}),
        (update("size_bytes"), {"update_mask.paths[0]"}),
        (update("data", "colour"), {"update_mask.paths[1]"}),
        (update("name", "layer_type", "position"), {"name", "layer_type", "position"}),
    ]
    for request, fields in cases:
        assert bad_fields(await async_failure(stub.UpdateLayer, request)) == fields, request


async def test_layer_data_is_checked_after_the_contract(stub: Stub, context_service: InProcess[ContextDeps]) -> None:
    ctx = await new_context(stub)
    data = struct(ok=1, nested={"k": 1})
    data.fields["nested"].struct_value.fields["inf"].number_value = float("-inf")
    data.fields["nul"].string_value = "a\x00b"
    data.fields["unset"].CopyFrom(struct_pb2.Value())
    error = await async_failure(stub.AddLayer, pb.AddLayerRequest(context_id=ctx.context_id, name="l",
                                                                  layer_type="t", data=data))
    assert bad_fields(error) == {"data.nested.inf", "data.nul", "data.unset"}
    limit = context_service.deps.settings.max_layer_bytes
    big = await async_failure(stub.AddLayer, pb.AddLayerRequest(context_id=ctx.context_id, name="l", layer_type="t",
                                                                data=struct(blob="x" * limit)))
    assert bad_fields(big) == {"data"}
    assert (await stub.GetContext(pb.GetContextRequest(context_id=ctx.context_id))).context.layer_count == 0


async def test_duplicate_layer_name_or_position_already_exists(stub: Stub) -> None:
    ctx = await new_context(stub)
    await new_layer(stub, ctx.context_id, "one", position=7)
    for request in (pb.AddLayerRequest(context_id=ctx.context_id, name="one", layer_type="t"),
                    pb.AddLayerRequest(context_id=ctx.context_id, name="two", layer_type="t", position=7)):
        assert await code_of(stub.AddLayer, request) == grpc.StatusCode.ALREADY_EXISTS
    assert (await new_layer(stub, ctx.context_id, "two")).position == 8


async def test_archived_context_keeps_its_layers_read_only(stub: Stub) -> None:
    ctx = await new_context(stub)
    layer = await new_layer(stub, ctx.context_id, "l")
    await stub.UpdateContext(pb.UpdateContextRequest(context_id=ctx.context_id,
                                                     status=context_pb2.CONTEXT_STATUS_ARCHIVED))
    for call, request in (
        (stub.AddLayer, pb.AddLayerRequest(context_id=ctx.context_id, name="m", layer_type="t")),
        (stub.UpdateLayer, pb.UpdateLayerRequest(context_id=ctx.context_id, layer_id=layer.layer_id, name="n")),
        (stub.DeleteLayer, pb.DeleteLayerRequest(context_id=ctx.context_id, layer_id=layer.layer_id)),
    ):
        assert await code_of(call, request) == grpc.StatusCode.FAILED_PRECONDITION


# --- sharing, analytics, replica ---------------------------------------------------------------------


def as_(service: InProcess[ContextDeps], principal: Principal | None) -> Stub:
    return service.stub(ContextServiceStub, principal)


async def test_the_creating_principal_owns_the_context_and_the_access_list_holds_subjects(
        context_service: InProcess[ContextDeps]) -> None:
    owner, agent, crm, admin = (as_(context_service, p) for p in (OWNER, AGENT, CRM, ADMIN))
    ctx = await new_context(owner, shared_with=[AGENT.subject])
    assert ctx.owner == OWNER.subject and list(ctx.shared_with) == ["service:agent"]
    cid = ctx.context_id
    assert (await agent.GetContext(pb.GetContextRequest(context_id=cid))).context.owner == OWNER.subject
    layer = await new_layer(agent, cid, "by-agent")

    denied = await async_failure(crm.GetContext, pb.GetContextRequest(context_id=cid))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED and reason(denied) == "ERROR_REASON_PERMISSION_DENIED"
    assert "'client:crm' is not on the access list" in str(denied.details())
    assert OWNER.subject not in str(denied.details()), "a principal off the list does not learn the owner"
    off_the_list: list[tuple[Any, Any]] = [
        (crm.UpdateContext, pb.UpdateContextRequest(context_id=cid, name="x")),
        (crm.ListLayers, pb.ListLayersRequest(context_id=cid)),
        (crm.AddLayer, pb.AddLayerRequest(context_id=cid, name="l", layer_type="t")),
        (crm.GetLayer, pb.GetLayerRequest(context_id=cid, layer_id=layer.layer_id)),
        (crm.UpdateLayer, pb.UpdateLayerRequest(context_id=cid, layer_id=layer.layer_id, name="x")),
        (crm.DeleteLayer, pb.DeleteLayerRequest(context_id=cid, layer_id=layer.layer_id)),
        (crm.GetResolvedContext, pb.GetResolvedContextRequest(context_id=cid)),
        (crm.GetContextAnalytics, pb.GetContextAnalyticsRequest(context_id=cid)),
        (crm.GetUsageTrends, pb.GetUsageTrendsRequest(context_id=cid)),
        (crm.ShareContext, pb.ShareContextRequest(context_id=cid, service=CRM.subject)),
        (crm.DeleteContext, pb.DeleteContextRequest(context_id=cid)),
        # On the list is not owner: the agent may read and write, not share or delete.
        (agent.ShareContext, pb.ShareContextRequest(context_id=cid, service=CRM.subject)),
        (agent.UnshareContext, pb.UnshareContextRequest(context_id=cid, service=AGENT.subject)),
        (agent.DeleteContext, pb.DeleteContextRequest(context_id=cid)),
    ]
    for call, request in off_the_list:
        assert await code_of(call, request) == grpc.StatusCode.PERMISSION_DENIED, (call, request)

    mine = await owner.ListContexts(pb.ListContextsRequest(owner=OWNER.subject))
    assert cid in [c.context_id for c in mine.contexts]
    assert cid not in [c.context_id for c in (await crm.ListContexts(pb.ListContextsRequest())).contexts]
    assert cid in [c.context_id for c in (await agent.ListContexts(pb.ListContextsRequest())).contexts]

    shared = await owner.ShareContext(pb.ShareContextRequest(context_id=cid, service=CRM.subject))
    assert list(shared.context.shared_with) == ["client:crm", "service:agent"] and shared.context.version == 2
    again = await owner.ShareContext(pb.ShareContextRequest(context_id=cid, service=CRM.subject))
    assert again.context.version == 2, "sharing twice changes nothing"
    assert (await crm.GetResolvedContext(pb.GetResolvedContextRequest(context_id=cid))).layer_ids == [layer.layer_id]
    assert cid in [c.context_id for c in (await crm.ListContexts(pb.ListContextsRequest())).contexts]
    unshared = await owner.UnshareContext(pb.UnshareContextRequest(context_id=cid, service=AGENT.subject))
    assert list(unshared.context.shared_with) == ["client:crm"]
    assert await code_of(agent.GetContext, pb.GetContextRequest(context_id=cid)) == grpc.StatusCode.PERMISSION_DENIED

    # A platform admin may do what the owner may; the owner may delete.
    assert (await admin.UnshareContext(pb.UnshareContextRequest(context_id=cid, service=CRM.subject))).context
    assert cid in [c.context_id for c in (await admin.ListContexts(pb.ListContextsRequest())).contexts]
    assert (await owner.DeleteContext(pb.DeleteContextRequest(context_id=cid))).context_id == cid


async def test_an_empty_access_list_admits_every_principal(context_service: InProcess[ContextDeps]) -> None:
    owner, crm = as_(context_service, OWNER), as_(context_service, CRM)
    ctx = await new_context(owner)
    assert (await crm.AddLayer(pb.AddLayerRequest(context_id=ctx.context_id, name="l", layer_type="t"))).layer
    assert ctx.context_id in [c.context_id for c in (await crm.ListContexts(pb.ListContextsRequest())).contexts]
    owner_only = await async_failure(crm.DeleteContext, pb.DeleteContextRequest(context_id=ctx.context_id))
    assert owner_only.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "only the owner" in str(owner_only.details()) and "'client:crm'" in str(owner_only.details())


async def test_anonymous_calls_are_unauthenticated(context_service: InProcess[ContextDeps]) -> None:
    anonymous = as_(context_service, None)
    for call, request in ((anonymous.ListContexts, pb.ListContextsRequest()),
                          (anonymous.CreateContext, pb.CreateContextRequest(**CREATE)),
                          (anonymous.GetContext, pb.GetContextRequest(context_id=ANY_ID))):
        assert await code_of(call, request) == grpc.StatusCode.UNAUTHENTICATED
    # Health is public in the contract: a load balancer's probe carries no token.
    assert (await anonymous.GetLiveness(pb.GetLivenessRequest())).state
    assert (await anonymous.GetReadiness(pb.GetReadinessRequest())).health.service == "context"


def test_the_caller_and_owner_request_fields_are_reserved() -> None:
    """Deleted with their names and numbers reserved (buf's WIRE_JSON allows exactly that): never reused."""
    reserved: dict[str, tuple[set[str], set[int]]] = {}
    for method in pb.DESCRIPTOR.services_by_name["ContextService"].methods:
        message = descriptor_pb2.DescriptorProto()
        method.input_type.CopyToProto(message)
        assert "caller" not in method.input_type.fields_by_name, method.name
        reserved[method.name] = (set(message.reserved_name), {r.start for r in message.reserved_range})
    with_caller = {name for name, (names, _) in reserved.items() if "caller" in names}
    assert with_caller == {"ListContexts", "GetContext", "UpdateContext", "DeleteContext", "ListLayers", "AddLayer",
                           "GetLayer", "UpdateLayer", "DeleteLayer", "GetResolvedContext", "ShareContext",
                           "UnshareContext", "GetContextAnalytics"}
    assert reserved["GetContext"] == ({"caller"}, {2}) and reserved["ListContexts"] == ({"caller"}, {8})
    assert reserved["CreateContext"] == ({"owner"}, {3})


async def test_a_client_claiming_a_caller_or_owner_is_not_believed(context_service: InProcess[ContextDeps]) -> None:
    """The removed fields are reserved: an old client that still sends them is just the principal it is."""
    ctx = await new_context(as_(context_service, OWNER), shared_with=[AGENT.subject])
    # field 2 was GetContextRequest.caller: sent as an unknown field, it is ignored.
    old_client = pb.GetContextRequest(context_id=ctx.context_id).SerializeToString() + b"\x12\x0dservice:agent"
    crm = as_(context_service, CRM)
    error = await async_failure(crm.GetContext, pb.GetContextRequest.FromString(old_client))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    # field 3 was CreateContextRequest.owner.
    claimed_owner = pb.CreateContextRequest(**CREATE).SerializeToString() + b"\x1a\x0dservice:agent"
    created = await crm.CreateContext(pb.CreateContextRequest.FromString(claimed_owner))
    assert created.context.owner == CRM.subject


async def test_analytics_summary_trends_and_info(stub: Stub) -> None:
    kind = f"stats-{uuid.uuid4().hex[:6]}"
    ctx = await new_context(stub, type=kind)
    await new_layer(stub, ctx.context_id, "a", layer_type="base")
    await stub.GetContext(pb.GetContextRequest(context_id=ctx.context_id))
    analytics = (await stub.GetContextAnalytics(pb.GetContextAnalyticsRequest(context_id=ctx.context_id))).analytics
    assert (analytics.layer_count, analytics.reads_last_24h, analytics.writes_last_24h) == (1, 1, 1)
    assert dict(analytics.layers_by_type) == {"base": 1}
    summary = await stub.GetAnalyticsSummary(pb.GetAnalyticsSummaryRequest())
    assert summary.contexts_by_type[kind] == 1 and summary.total_layers >= 1
    trends = await stub.GetUsageTrends(pb.GetUsageTrendsRequest(context_id=ctx.context_id, last=2))
    assert len(trends.buckets) == 2 and (trends.total_reads, trends.total_writes) == (1, 1)
    daily = await stub.GetUsageTrends(pb.GetUsageTrendsRequest(window="day", type=kind))
    assert daily.window == "day" and len(daily.buckets) == 30
    too_long = pb.GetUsageTrendsRequest(start_time=seconds_from_now(-1001 * 3600))
    assert bad_fields(await async_failure(stub.GetUsageTrends, too_long)) == {"start_time"}
    info = await stub.GetInfo(pb.GetInfoRequest())
    assert info.info.name == "context" and info.context_count >= 1
