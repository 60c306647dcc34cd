"""Every ContextService operation as REST/JSON through Envoy, with its error cases.

`rest` calls as the local admin (a platform admin); the access-list tests call as service accounts
registered with the identity service (tests/e2e/context_principals.py), each its own principal.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chassis.tooling.mesh_testing import RestClient, running_mesh
from chassis.tooling.supervisor import Mesh
from tests.e2e.context_principals import ServiceAccount, service_account
from tests.support.errors import violations


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    """PostgreSQL, NATS, two context replicas and Envoy."""
    with running_mesh(only=["context"]) as started:
        yield started


@pytest.fixture(scope="module")
def accounts(mesh: Mesh, rest: RestClient) -> dict[str, ServiceAccount]:
    """Three service accounts: one owns contexts, one is shared with, one is neither."""
    return {role: service_account(mesh, rest, f"context-e2e-{role}") for role in ("owner", "reader", "outsider")}


def create(rest: RestClient, name: str = "ctx", type_: str = "session", **extra: Any) -> dict:
    reply = rest.post("/v1/contexts", {"name": name, "type": type_, **extra})
    assert reply.status == 200, reply.body
    return reply.body["context"]


def add_layer(rest: RestClient, context_id: str, name: str, data: dict, layer_type: str = "user", **extra: Any) -> dict:
    reply = rest.post(f"/v1/contexts/{context_id}/layers",
                      {"name": name, "layer_type": layer_type, "data": data, **extra})
    assert reply.status == 200, reply.body
    return reply.body


def nested(depth: int) -> dict:
    """An object nested `depth` levels deep (the outer object is level 1)."""
    data: dict = {"leaf": 1}
    for _ in range(depth - 1):
        data = {"k": data}
    return data


# --- contexts ----------------------------------------------------------------------------------


def test_create_get_update_delete_round_trip(rest: RestClient) -> None:
    created = create(rest, "support chat", "conversation", metadata={"channel": "web", "n": 2},
                     tags=["vip", "eu", "vip"], ttl="3600s")
    assert uuid.UUID(created["context_id"])
    assert created["status"] == "CONTEXT_STATUS_ACTIVE"
    assert created["version"] == "1"
    assert created["tags"] == ["vip", "eu"]
    assert created["metadata"] == {"channel": "web", "n": 2}
    assert created["layer_count"] == 0 and created["size_bytes"] == "0" and created["access_count"] == "0"
    expires = datetime.fromisoformat(created["expire_time"].replace("Z", "+00:00"))
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)

    fetched = rest.get(f"/v1/contexts/{created['context_id']}")
    assert fetched.status == 200
    assert fetched.body["context"]["access_count"] == "1"
    assert fetched.body["context"]["last_access_time"]

    updated = rest.put(f"/v1/contexts/{created['context_id']}",
                       {"name": "renamed", "metadata": {"channel": "app"}, "expected_version": 1})
    assert updated.status == 200, updated.body
    context = updated.body["context"]
    assert (context["name"], context["metadata"], context["version"]) == ("renamed", {"channel": "app"}, "2")
    assert context["tags"] == ["vip", "eu"], "fields not named stay"

    cleared = rest.put(f"/v1/contexts/{created['context_id']}", {"update_mask": "expire_time,tags"})
    assert cleared.status == 200
    assert cleared.body["context"]["tags"] == [] and "expire_time" not in cleared.body["context"]
    assert cleared.body["context"]["version"] == "3"

    deleted = rest.delete(f"/v1/contexts/{created['context_id']}?expected_version=3")
    assert deleted.status == 200 and deleted.body["context_id"] == created["context_id"]
    assert rest.get(f"/v1/contexts/{created['context_id']}").status == 404
    assert rest.delete(f"/v1/contexts/{created['context_id']}").status == 404


def test_create_names_every_bad_field(rest: RestClient) -> None:
    assert set(violations(rest.post("/v1/contexts", {}))) == {"name", "type"}
    bad = violations(rest.post("/v1/contexts", {
        "name": "a\u0007b", "type": "Not A Type", "tags": ["ok", "bad tag"],
        "shared_with": ["service:agent", "agent"], "metadata": {"deep": {"k\u0001": 1}}, "ttl": "-5s",
    }))
    assert set(bad) == {"name", "type", "tags[1]", "shared_with[1]", 'metadata.deep["k\\u0001"]', "ttl"}
    assert "service:<name>" in bad["shared_with[1]"], "a bare service name is refused, saying what a subject is"
    past = violations(rest.post("/v1/contexts", {"name": "n", "type": "t", "expire_time": "2001-01-01T00:00:00Z"}))
    assert past == {"expire_time": "must be in the future"}
    both = violations(rest.post("/v1/contexts", {"name": "n", "type": "t", "ttl": "60s",
                                                 "expire_time": "2999-01-01T00:00:00Z"}))
    assert set(both) == {"ttl"}


def test_update_rules(rest: RestClient) -> None:
    context = create(rest, "upd")
    path = f"/v1/contexts/{context['context_id']}"
    assert "update_mask" in violations(rest.put(path, {}))
    assert "update_mask.paths[0]" in violations(rest.put(path, {"update_mask": "owner"}))
    assert "status" in violations(rest.put(path, {"status": "CONTEXT_STATUS_EXPIRED"}))
    assert "expected_version" in violations(rest.put(path, {"name": "x", "expected_version": -1}))
    archived = rest.put(path, {"status": "CONTEXT_STATUS_ARCHIVED"})
    assert archived.status == 200 and archived.body["context"]["status"] == "CONTEXT_STATUS_ARCHIVED"


def test_stale_version_is_409_telling_to_reread(rest: RestClient) -> None:
    context = create(rest, "stale")
    path = f"/v1/contexts/{context['context_id']}"
    assert rest.put(path, {"name": "first", "expected_version": 1}).status == 200
    stale = rest.put(path, {"name": "second", "expected_version": 1})
    assert stale.status == 409
    assert stale.body["code"] == 10  # ABORTED
    assert "re-read" in stale.body["message"] and "version 2" in stale.body["message"]
    assert rest.delete(f"{path}?expected_version=1").status == 409
    assert rest.get(path).body["context"]["name"] == "first"


def test_unknown_ids_are_404(rest: RestClient) -> None:
    missing = uuid.uuid4()
    layer = uuid.uuid4()
    for method, path in [
        ("GET", f"/v1/contexts/{missing}"), ("DELETE", f"/v1/contexts/{missing}"),
        ("GET", f"/v1/contexts/{missing}/layers"), ("GET", f"/v1/contexts/{missing}/layers/{layer}"),
        ("DELETE", f"/v1/contexts/{missing}/layers/{layer}"), ("GET", f"/v1/contexts/{missing}/resolved"),
        ("GET", f"/v1/contexts/{missing}/analytics"), ("DELETE", f"/v1/contexts/{missing}/shares/service:billing"),
    ]:
        assert rest.call(method, path).status == 404, (method, path)
    assert rest.put(f"/v1/contexts/{missing}", {"name": "x"}).status == 404
    assert rest.post(f"/v1/contexts/{missing}/layers", {"name": "l", "layer_type": "t"}).status == 404
    assert rest.put(f"/v1/contexts/{missing}/layers/{layer}", {"name": "x"}).status == 404
    assert rest.post(f"/v1/contexts/{missing}/shares", {"service": "service:billing"}).status == 404
    context = create(rest, "has no such layer")
    reply = rest.get(f"/v1/contexts/{context['context_id']}/layers/{layer}")
    assert reply.status == 404 and "layer" in reply.body["message"]
    for path, field in (("/v1/contexts/not-an-id", "context_id"),
                        (f"/v1/contexts/{context['context_id']}/layers/not-an-id", "layer_id")):
        assert field in rest.get(path).field_violations(), path


# --- layers ------------------------------------------------------------------------------------


def test_layer_add_get_update_delete_keep_counters(rest: RestClient) -> None:
    context = create(rest, "layered")
    cid = context["context_id"]
    first = add_layer(rest, cid, "base", {"a": 1, "nested": {"x": "y"}}, layer_type="base")
    layer = first["layer"]
    expected_size = str(len('{"a":1,"nested":{"x":"y"}}'))
    assert (layer["position"], layer["version"], layer["size_bytes"]) == (1, "1", expected_size)
    assert first["context"]["layer_count"] == 1 and first["context"]["size_bytes"] == layer["size_bytes"]
    second = add_layer(rest, cid, "user", {"b": [1, 2]})
    assert second["layer"]["position"] == 2
    assert second["context"]["layer_count"] == 2
    assert int(second["context"]["size_bytes"]) == int(layer["size_bytes"]) + len('{"b":[1,2]}')

    got = rest.get(f"/v1/contexts/{cid}/layers/{layer['layer_id']}")
    assert got.status == 200 and got.body["layer"]["data"] == {"a": 1, "nested": {"x": "y"}}

    updated = rest.put(f"/v1/contexts/{cid}/layers/{layer['layer_id']}",
                       {"data": {"a": 12345}, "expected_version": 1})
    assert updated.status == 200, updated.body
    assert updated.body["layer"]["version"] == "2"
    assert updated.body["layer"]["name"] == "base", "fields not named stay"
    assert int(updated.body["context"]["size_bytes"]) == len('{"a":12345}') + len('{"b":[1,2]}')
    stale = rest.put(f"/v1/contexts/{cid}/layers/{layer['layer_id']}", {"name": "x", "expected_version": 1})
    assert stale.status == 409 and "re-read" in stale.body["message"]
    assert rest.delete(f"/v1/contexts/{cid}/layers/{layer['layer_id']}?expected_version=1").status == 409

    moved = rest.put(f"/v1/contexts/{cid}/layers/{layer['layer_id']}", {"position": 5, "layer_type": "org"})
    assert moved.status == 200 and moved.body["layer"]["position"] == 5 and moved.body["layer"]["version"] == "3"

    deleted = rest.delete(f"/v1/contexts/{cid}/layers/{layer['layer_id']}?expected_version=3")
    assert deleted.status == 200
    assert deleted.body["context"]["layer_count"] == 1
    assert deleted.body["context"]["size_bytes"] == str(len('{"b":[1,2]}'))
    assert rest.get(f"/v1/contexts/{cid}/layers/{layer['layer_id']}").status == 404
    assert rest.delete(f"/v1/contexts/{cid}/layers/{layer['layer_id']}").status == 404
    assert rest.delete(f"/v1/contexts/{cid}").body["deleted_layers"] == 1


def test_duplicate_layer_name_or_position_is_409(rest: RestClient) -> None:
    cid = create(rest, "dups")["context_id"]
    add_layer(rest, cid, "one", {})
    add_layer(rest, cid, "two", {}, position=7)
    same_name = rest.post(f"/v1/contexts/{cid}/layers", {"name": "one", "layer_type": "user"})
    assert same_name.status == 409 and "named 'one'" in same_name.body["message"]
    same_position = rest.post(f"/v1/contexts/{cid}/layers", {"name": "three", "layer_type": "user", "position": 7})
    assert same_position.status == 409 and "position 7" in same_position.body["message"]
    assert add_layer(rest, cid, "three", {})["layer"]["position"] == 8, "appends after the highest position"
    layers = rest.get(f"/v1/contexts/{cid}/layers").body["layers"]
    assert rest.put(f"/v1/contexts/{cid}/layers/{layers[0]['layer_id']}", {"position": 8}).status == 409
    assert rest.put(f"/v1/contexts/{cid}/layers/{layers[0]['layer_id']}", {"name": "two"}).status == 409
    assert rest.get(f"/v1/contexts/{cid}").body["context"]["layer_count"] == 3


def test_layer_data_validation_names_the_key(rest: RestClient) -> None:
    cid = create(rest, "validation")["context_id"]
    path = f"/v1/contexts/{cid}/layers"
    bad = violations(rest.post(path, {"name": "", "layer_type": "UPPER", "position": -1,
                                      "data": {"some": {"key\u001f": 1}, "k" * 257: 2}}))
    assert set(bad) == {"name", "layer_type", "position", 'data.some["key\\u001f"]', "data." + "k" * 257}
    assert rest.post(path, {"name": "deep-ok", "layer_type": "t", "data": nested(32)}).status == 200
    deep = violations(rest.post(path, {"name": "deep", "layer_type": "t", "data": nested(33)}))
    assert deep == {"data" + ".k" * 32: "nested deeper than 32 levels"}
    # Deeper than protobuf itself decodes: still a 400, never a 500.
    assert "request" in violations(rest.post(path, {"name": "deeper", "layer_type": "t", "data": nested(50)}))
    big = violations(rest.post(path, {"name": "big", "layer_type": "t", "data": {"blob": "x" * (256 * 1024)}}))
    assert list(big) == ["data"] and "at most 262144" in big["data"]
    not_object = rest.post(path, {"name": "list", "layer_type": "t", "data": [1, 2]})
    assert not_object.status == 400
    layer = add_layer(rest, cid, "fine", {"a": 1})["layer"]
    upd = violations(rest.put(f"{path}/{layer['layer_id']}", {"data": {"x": {"\u0000": 1}}}))
    assert set(upd) == {'data.x["\\u0000"]'}
    assert rest.get(f"/v1/contexts/{cid}").body["context"]["layer_count"] == 2, "rejected writes change nothing"


def test_archived_context_is_read_only_until_reactivated(rest: RestClient) -> None:
    cid = create(rest, "archive-me")["context_id"]
    layer = add_layer(rest, cid, "l", {"a": 1})["layer"]
    assert rest.put(f"/v1/contexts/{cid}", {"status": "CONTEXT_STATUS_ARCHIVED"}).status == 200
    refused = rest.post(f"/v1/contexts/{cid}/layers", {"name": "m", "layer_type": "t"})
    assert refused.status == 400 and refused.body["code"] == 9  # FAILED_PRECONDITION
    assert "ACTIVE" in refused.body["message"]
    assert rest.put(f"/v1/contexts/{cid}/layers/{layer['layer_id']}", {"name": "n"}).status == 400
    assert rest.delete(f"/v1/contexts/{cid}/layers/{layer['layer_id']}").status == 400
    assert rest.get(f"/v1/contexts/{cid}/resolved").body["data"] == {"a": 1}, "still readable"
    assert rest.put(f"/v1/contexts/{cid}", {"status": "CONTEXT_STATUS_ACTIVE"}).status == 200
    assert rest.post(f"/v1/contexts/{cid}/layers", {"name": "m", "layer_type": "t"}).status == 200


def test_resolved_view_merges_layers_in_position_order(rest: RestClient) -> None:
    cid = create(rest, "resolve")["context_id"]
    session = add_layer(rest, cid, "session", {"model": {"name": "large"}, "scratch": None}, position=30)["layer"]
    base = add_layer(rest, cid, "base", {"model": {"name": "small", "params": {"t": 0.2, "top_p": 0.9}},
                                         "lang": "en", "scratch": "x", "list": [1, 2]}, position=10)["layer"]
    user = add_layer(rest, cid, "user", {"model": {"params": {"t": 0.7}}, "lang": None, "list": [3]},
                     position=20)["layer"]
    resolved = rest.get(f"/v1/contexts/{cid}/resolved")
    assert resolved.status == 200
    assert resolved.body["data"] == {"model": {"name": "large", "params": {"t": 0.7, "top_p": 0.9}}, "list": [3]}
    assert resolved.body["layer_ids"] == [base["layer_id"], user["layer_id"], session["layer_id"]]
    # Moving the session layer first lets the later layers win instead.
    assert rest.put(f"/v1/contexts/{cid}/layers/{session['layer_id']}", {"position": 5}).status == 200
    again = rest.get(f"/v1/contexts/{cid}/resolved").body
    assert again["data"]["model"]["name"] == "small"
    assert again["data"]["scratch"] == "x"
    assert again["layer_ids"][0] == session["layer_id"]
    empty = create(rest, "empty")
    assert rest.get(f"/v1/contexts/{empty['context_id']}/resolved").body["data"] == {}


def test_layers_page_in_position_order_and_filter_by_type(rest: RestClient) -> None:
    cid = create(rest, "paged-layers")["context_id"]
    for i in range(5):
        add_layer(rest, cid, f"l{i}", {"i": i}, layer_type="even" if i % 2 == 0 else "odd", position=50 - i)
    positions: list[int] = []
    token = ""
    while True:
        reply = rest.get(f"/v1/contexts/{cid}/layers?page_size=2&page_token={token}")
        assert reply.status == 200 and reply.body["page_info"]["total_size"] == 5
        positions += [layer["position"] for layer in reply.body["layers"]]
        token = reply.body["page_info"]["next_page_token"]
        if not token:
            break
    assert positions == [46, 47, 48, 49, 50]
    even = rest.get(f"/v1/contexts/{cid}/layers?layer_type=even").body
    assert [layer["name"] for layer in even["layers"]] == ["l4", "l2", "l0"]
    assert even["page_info"]["total_size"] == 3
    first = rest.get(f"/v1/contexts/{cid}/layers?page_size=2").body["page_info"]["next_page_token"]
    assert "page_token" in violations(rest.get(f"/v1/contexts/{cid}/layers?page_size=2&layer_type=odd"
                                               f"&page_token={first}"))


# --- listing, sharing --------------------------------------------------------------------------


def test_list_filters_and_pagination(rest: RestClient) -> None:
    marker = uuid.uuid4().hex[:8]
    made = [create(rest, f"{marker}-{i}", "pagetest", tags=["t-all", f"t-{i % 2}"]) for i in range(5)]
    admin = made[0]["owner"]
    seen: list[str] = []
    token = ""
    while True:
        reply = rest.get(f"/v1/contexts?type=pagetest&name_contains={marker}&page_size=2&page_token={token}")
        assert reply.status == 200 and reply.body["page_info"]["total_size"] == 5
        seen += [c["context_id"] for c in reply.body["contexts"]]
        token = reply.body["page_info"]["next_page_token"]
        if not token:
            break
    assert seen == [c["context_id"] for c in reversed(made)], "newest first, each once"

    tagged = rest.get(f"/v1/contexts?name_contains={marker}&tags=t-all&tags=t-0").body
    assert {c["name"] for c in tagged["contexts"]} == {f"{marker}-0", f"{marker}-2", f"{marker}-4"}
    rest.put(f"/v1/contexts/{made[1]['context_id']}", {"status": "CONTEXT_STATUS_ARCHIVED"})
    archived = rest.get(f"/v1/contexts?name_contains={marker}&status=CONTEXT_STATUS_ARCHIVED").body
    assert [c["context_id"] for c in archived["contexts"]] == [made[1]["context_id"]]
    active = rest.get(f"/v1/contexts?name_contains={marker}&status=context_status_active").body
    assert active["page_info"]["total_size"] == 4
    assert rest.get(f"/v1/contexts?owner={admin}&name_contains={marker}").body["page_info"]["total_size"] == 5
    assert rest.get(f"/v1/contexts?owner=service:nobody&name_contains={marker}").body["contexts"] == []
    assert "owner" in violations(rest.get("/v1/contexts?owner=nobody"))

    assert "page_token" in violations(rest.get("/v1/contexts?page_token=garbage"))
    assert "page_size" in violations(rest.get("/v1/contexts?page_size=5000"))
    assert "type" in violations(rest.get("/v1/contexts?type=Bad%20Type"))
    assert rest.get("/v1/contexts?colour=red").status == 400


def test_the_caller_is_the_token_not_a_field(rest: RestClient, accounts: dict[str, ServiceAccount]) -> None:
    """The owner is whoever created the context; the removed `caller`/`owner` fields are never believed."""
    owner = accounts["owner"]
    context = create(owner.rest(), "mine")
    assert context["owner"] == owner.subject
    admin = create(rest, "admins")
    assert admin["owner"] != owner.subject and admin["owner"], "the admin's own subject (its user id)"
    # An old client's body field is a field the contract does not know: the gateway refuses it, naming it.
    claimed = rest.post("/v1/contexts", {"name": "claim", "type": "t", "owner": owner.subject})
    assert claimed.status == 400 and "owner" in claimed.body["message"], claimed.body
    # A query parameter the contract lacks is refused (400), so an old GET learns the field is gone.
    stale_query = rest.get(f"/v1/contexts/{context['context_id']}?caller=agent")
    assert stale_query.status == 400 and "caller" in stale_query.body["message"], stale_query.body
    assert rest.anonymous().get(f"/v1/contexts/{context['context_id']}").status == 401


def test_access_list_denies_other_principals_with_403(accounts: dict[str, ServiceAccount]) -> None:
    owner, reader, outsider = (accounts[r].rest() for r in ("owner", "reader", "outsider"))
    reader_subject, outsider_subject = accounts["reader"].subject, accounts["outsider"].subject
    context = create(owner, "private", shared_with=[reader_subject])
    cid = context["context_id"]
    assert context["shared_with"] == [reader_subject] and context["owner"] == accounts["owner"].subject
    add_layer(reader, cid, "l", {"a": 1})
    for path in (f"/v1/contexts/{cid}", f"/v1/contexts/{cid}/layers", f"/v1/contexts/{cid}/resolved",
                 f"/v1/contexts/{cid}/analytics", f"/v1/contexts/analytics/trends?context_id={cid}"):
        assert reader.get(path).status == 200, path
        assert owner.get(path).status == 200, "the owner is always allowed"
        denied = outsider.get(path)
        assert denied.status == 403, path
        assert denied.body["code"] == 7 and "access list" in denied.body["message"]
        assert outsider_subject in denied.body["message"], "the message names who was refused"
    assert outsider.post(f"/v1/contexts/{cid}/layers", {"name": "m", "layer_type": "t"}).status == 403
    assert outsider.put(f"/v1/contexts/{cid}", {"name": "x"}).status == 403
    before = owner.get(f"/v1/contexts/{cid}").body["context"]["access_count"]
    outsider.get(f"/v1/contexts/{cid}")
    after = owner.get(f"/v1/contexts/{cid}").body["context"]["access_count"]
    assert int(after) == int(before) + 1, "a denied read is not counted"
    assert cid not in [c["context_id"] for c in outsider.get("/v1/contexts").body["contexts"]]
    assert cid in [c["context_id"] for c in reader.get("/v1/contexts").body["contexts"]]

    # Only the owner manages the list and deletes; on the list is not enough.
    assert reader.post(f"/v1/contexts/{cid}/shares", {"service": outsider_subject}).status == 403
    assert reader.delete(f"/v1/contexts/{cid}").status == 403
    shared = owner.post(f"/v1/contexts/{cid}/shares", {"service": outsider_subject})
    assert shared.status == 200 and shared.body["context"]["shared_with"] == sorted([reader_subject, outsider_subject])
    version = shared.body["context"]["version"]
    again = owner.post(f"/v1/contexts/{cid}/shares", {"service": outsider_subject})
    assert again.status == 200 and again.body["context"]["version"] == version, "sharing twice changes nothing"
    assert outsider.get(f"/v1/contexts/{cid}").status == 200
    visible = outsider.get(f"/v1/contexts?owner={accounts['owner'].subject}").body["contexts"]
    assert cid in [c["context_id"] for c in visible]
    # A subject in the path: ':' as it is, or escaped.
    unshared = owner.delete(f"/v1/contexts/{cid}/shares/{outsider_subject.replace(':', '%3A')}")
    assert unshared.status == 200 and unshared.body["context"]["shared_with"] == [reader_subject]
    assert outsider.get(f"/v1/contexts/{cid}").status == 403
    assert cid not in [c["context_id"] for c in outsider.get("/v1/contexts").body["contexts"]]
    assert "service" in violations(owner.post(f"/v1/contexts/{cid}/shares", {"service": "Not Valid"}))
    assert owner.delete(f"/v1/contexts/{cid}/shares/{reader_subject}").body["context"]["shared_with"] == []
    assert owner.delete(f"/v1/contexts/{cid}").status == 200


def test_a_platform_admin_may_do_what_the_owner_may(rest: RestClient, accounts: dict[str, ServiceAccount]) -> None:
    owner = accounts["owner"].rest()
    cid = create(owner, "admin-managed", shared_with=[accounts["reader"].subject])["context_id"]
    assert rest.get(f"/v1/contexts/{cid}/resolved").status == 200
    assert rest.post(f"/v1/contexts/{cid}/shares", {"service": accounts["outsider"].subject}).status == 200
    assert rest.delete(f"/v1/contexts/{cid}").status == 200


def test_context_without_access_list_is_open_to_every_principal(accounts: dict[str, ServiceAccount]) -> None:
    cid = create(accounts["owner"].rest(), "open")["context_id"]
    outsider = accounts["outsider"].rest()
    assert outsider.get(f"/v1/contexts/{cid}").status == 200
    assert outsider.post(f"/v1/contexts/{cid}/layers", {"name": "l", "layer_type": "t"}).status == 200
    refused = outsider.delete(f"/v1/contexts/{cid}")
    assert refused.status == 403 and "only the owner" in refused.body["message"]


# --- analytics, info, health -------------------------------------------------------------------


def test_context_analytics_count_reads_and_writes(rest: RestClient) -> None:
    cid = create(rest, "analytics", "metrics")["context_id"]
    add_layer(rest, cid, "a", {"x": 1}, layer_type="base")
    add_layer(rest, cid, "b", {"y": 2}, layer_type="user")
    add_layer(rest, cid, "c", {"z": 3}, layer_type="user")
    for _ in range(4):
        assert rest.get(f"/v1/contexts/{cid}").status == 200
    rest.get(f"/v1/contexts/{cid}/resolved")
    reply = rest.get(f"/v1/contexts/{cid}/analytics")
    assert reply.status == 200
    analytics = reply.body["analytics"]
    assert analytics["layer_count"] == 3
    assert analytics["size_bytes"] == str(3 * len('{"x":1}'))
    assert analytics["access_count"] == "8"
    assert (analytics["reads_last_24h"], analytics["writes_last_24h"]) == ("5", "3")
    assert analytics["layers_by_type"] == {"base": 1, "user": 2}
    assert analytics["last_access_time"] and analytics["status"] == "CONTEXT_STATUS_ACTIVE"
    assert rest.get(f"/v1/contexts/{cid}/analytics").body["analytics"]["access_count"] == "8", "not itself a read"


def test_summary_counts_by_status_and_type(rest: RestClient) -> None:
    before = rest.get("/v1/contexts/analytics/summary").body
    type_ = f"sum-{uuid.uuid4().hex[:6]}"
    a = create(rest, "s1", type_)
    create(rest, "s2", type_)
    add_layer(rest, a["context_id"], "l", {"k": "v"})
    rest.put(f"/v1/contexts/{a['context_id']}", {"status": "CONTEXT_STATUS_ARCHIVED"})
    reply = rest.get("/v1/contexts/analytics/summary")
    assert reply.status == 200
    after = reply.body
    assert int(after["total_contexts"]) >= int(before["total_contexts"]) + 2
    assert after["contexts_by_type"][type_] == "2"
    statuses = {s["status"]: int(s["count"]) for s in after["contexts_by_status"]}
    assert statuses["CONTEXT_STATUS_ARCHIVED"] >= 1 and statuses["CONTEXT_STATUS_ACTIVE"] >= 1
    assert sum(statuses.values()) == int(after["total_contexts"])
    assert int(after["total_layers"]) >= 1 and int(after["writes_last_24h"]) >= 2
    assert after["total_size_mb"] == pytest.approx(int(after["total_size_bytes"]) / 1048576, abs=1e-6)


def test_trends_per_hour_and_day(rest: RestClient) -> None:
    cid = create(rest, "trend", "trending")["context_id"]
    add_layer(rest, cid, "l", {"a": 1})
    for _ in range(3):
        rest.get(f"/v1/contexts/{cid}")
    hourly = rest.get(f"/v1/contexts/analytics/trends?window=hour&last=3&context_id={cid}")
    assert hourly.status == 200
    buckets = hourly.body["buckets"]
    assert len(buckets) == 3
    # Sums, not the last bucket alone: the calls above may straddle the turn of an hour.
    assert buckets[0]["reads"] == "0" and buckets[0]["active_contexts"] == "0"
    assert (hourly.body["total_reads"], hourly.body["total_writes"]) == ("3", "1")
    assert buckets[-1]["active_contexts"] == "1" and hourly.body["window"] == "hour"
    start = datetime.fromisoformat(buckets[-1]["start_time"].replace("Z", "+00:00"))
    assert start.minute == 0 and start <= datetime.now(UTC) < start + timedelta(hours=1)
    daily = rest.get("/v1/contexts/analytics/trends?window=day&type=trending").body
    assert len(daily["buckets"]) == 30 and int(daily["buckets"][-1]["reads"]) >= 3
    ranged = rest.get("/v1/contexts/analytics/trends?window=day&start_time=2025-01-01T12:00:00Z"
                      "&end_time=2025-01-03T00:00:00Z").body
    assert [b["start_time"] for b in ranged["buckets"]] == ["2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"]
    assert "window" in violations(rest.get("/v1/contexts/analytics/trends?window=week"))
    assert "last" in violations(rest.get("/v1/contexts/analytics/trends?last=2&start_time=2025-01-01T00:00:00Z"))
    assert "context_id" in violations(rest.get("/v1/contexts/analytics/trends?context_id=nope"))
    assert "start_time" in violations(rest.get("/v1/contexts/analytics/trends?start_time=2000-01-01T00:00:00Z"))


def test_info_and_health_endpoints(rest: RestClient) -> None:
    info = rest.get("/v1/contexts/info")
    assert info.status == 200
    assert info.body["info"]["name"] == "context"
    assert info.body["info"]["grpc_services"] == ["protomesh.context.v1.ContextService"]
    assert info.body["max_layer_bytes"] == str(256 * 1024)
    health = rest.get("/v1/contexts/health")
    assert health.status == 200 and health.body["health"]["service"] == "context"
    assert health.body["health"]["dependencies"][0]["name"] == "postgres"
    assert rest.get("/v1/contexts/health/ready").status == 200
    assert rest.get("/v1/contexts/health/live").body["state"] == "HEALTH_STATE_SERVING"
    # Health needs no credential (the contract declares it public); the replica's info does.
    for path in ("/v1/contexts/health", "/v1/contexts/health/ready", "/v1/contexts/health/live"):
        assert rest.anonymous().get(path).status == 200, path
    assert rest.anonymous().get("/v1/contexts/info").status == 401
