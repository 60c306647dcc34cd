"""Context domain events through the transactional outbox: one event per committed write, none for a failed one.

Two context replicas (each with an outbox relay) behind Envoy; the events are read back from the
context event stream with an ordered JetStream consumer, as any subscriber would receive them. Writes
come from the local admin; the refused ones from a service account the context is not shared with.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import nats
import psycopg
import pytest
from google.protobuf import timestamp_pb2

from chassis.events import subjects
from chassis.events.envelope import open_envelope
from chassis.tooling.mesh_testing import RestClient, eventually, running_mesh
from chassis.tooling.supervisor import Mesh
from protomesh.context.v1 import events_pb2
from protomesh.events.v1 import envelope_pb2
from tests.e2e.context_principals import ServiceAccount, service_account

PACKAGE = events_pb2.DESCRIPTOR.package
STREAM = subjects.package_stream(PACKAGE)


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    """Context replicas whose cleanup job runs every 0.3 s."""
    with running_mesh(only=["context"], extra_env={"CONTEXT_CLEANUP_INTERVAL_SECONDS": "0.3"}) as started:
        yield started


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> RestClient:
    return RestClient.for_mesh(mesh)


@pytest.fixture(scope="module")
def outsider(mesh: Mesh, rest: RestClient) -> ServiceAccount:
    """A principal that neither owns nor is on the access list of the contexts here."""
    return service_account(mesh, rest, "context-events-outsider")


@dataclass(frozen=True)
class Received:
    """One message of the context event stream, opened."""

    nats_subject: str
    event: Any
    envelope: envelope_pb2.Envelope

    @property
    def kind(self) -> str:
        return type(self.event).__name__


def unsent(mesh: Mesh) -> int:
    """Committed context events the relays have not yet published."""
    with psycopg.connect(mesh.database_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM context.outbox WHERE sent_at IS NULL").fetchone()
    return row[0] if row else 0


def outbox_subjects(mesh: Mesh, prefix: str) -> list[str]:
    """Resource subjects of every event the context service ever queued about a resource."""
    with psycopg.connect(mesh.database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT envelope FROM context.outbox ORDER BY seq").fetchall()
    found = []
    for (raw,) in rows:
        envelope = envelope_pb2.Envelope.FromString(raw)
        if envelope.subject.startswith(prefix):
            found.append(envelope.subject)
    return found


def stream(mesh: Mesh) -> list[Received]:
    """The whole context event stream, once every committed event has been published."""
    eventually(lambda: unsent(mesh) == 0, timeout=10, what="the outbox to drain")

    async def read() -> list[Received]:
        nc = await nats.connect(mesh.nats_url)
        try:
            js = nc.jetstream()
            last = (await js.stream_info(STREAM)).state.last_seq
            sub = await js.subscribe(subjects.event_stream_subjects(PACKAGE)[0], ordered_consumer=True, stream=STREAM)
            found: list[Received] = []
            while True:
                msg = await sub.next_msg(timeout=5)
                event, envelope = open_envelope(msg.data, nats_subject=msg.subject)
                found.append(Received(msg.subject, event, envelope))
                if msg.metadata.sequence.stream >= last:
                    return found
        finally:
            await nc.close()

    return asyncio.run(read())


def about(mesh: Mesh, context_id: str) -> list[Received]:
    """The published events of one context and its layers."""
    return [r for r in stream(mesh) if r.event.context_id == context_id]


def check_envelope(received: Received, subject: str) -> None:
    assert received.envelope.subject == subject, received
    assert received.envelope.source == "context"
    assert received.nats_subject == subjects.event_subject(received.event)


def create(rest: RestClient, **extra: Any) -> dict:
    reply = rest.post("/v1/contexts", {"name": "evented", "type": "session", **extra})
    assert reply.status == 200, reply.body
    return reply.body["context"]


def add_layer(rest: RestClient, cid: str, name: str = "base", **extra: Any) -> dict:
    reply = rest.post(f"/v1/contexts/{cid}/layers", {"name": name, "layer_type": "user", "data": {"a": 1}, **extra})
    assert reply.status == 200, reply.body
    return reply.body["layer"]


def test_every_write_publishes_one_event_with_its_ids_and_versions(mesh: Mesh, rest: RestClient) -> None:
    context = create(rest, tags=["vip"])
    cid, owner = context["context_id"], context["owner"]
    assert rest.put(f"/v1/contexts/{cid}", {"name": "renamed", "ttl": "3600s", "expected_version": 1}).status == 200
    layer = add_layer(rest, cid)
    lid = layer["layer_id"]
    updated = rest.put(f"/v1/contexts/{cid}/layers/{lid}", {"data": {"a": 2, "b": [1, 2]}, "expected_version": 1})
    assert updated.status == 200, updated.body
    assert rest.delete(f"/v1/contexts/{cid}/layers/{lid}?expected_version=2").status == 200
    assert rest.post(f"/v1/contexts/{cid}/shares", {"service": "service:billing"}).status == 200
    assert rest.delete(f"/v1/contexts/{cid}/shares/service:billing").status == 200
    assert rest.delete(f"/v1/contexts/{cid}?expected_version=4").status == 200

    received = about(mesh, cid)
    kinds = Counter(r.kind for r in received)
    assert kinds == {name: 1 for name in ("ContextCreated", "ContextUpdated", "LayerAdded", "LayerUpdated",
                                          "LayerRemoved", "ContextShared", "ContextUnshared", "ContextDeleted")}
    by_kind: dict[str, Received] = {r.kind: r for r in received}
    for kind in ("ContextCreated", "ContextUpdated", "ContextShared", "ContextUnshared", "ContextDeleted"):
        check_envelope(by_kind[kind], f"contexts/{cid}")
    for kind in ("LayerAdded", "LayerUpdated", "LayerRemoved"):
        check_envelope(by_kind[kind], f"contexts/{cid}/layers/{lid}")
        assert by_kind[kind].event.layer_id == lid

    def event(kind: str) -> Any:
        return by_kind[kind].event

    created = event("ContextCreated")
    assert (created.name, created.type, created.owner, list(created.tags), created.version) == (
        "evented", "session", owner, ["vip"], 1)
    assert not created.HasField("expire_time") and created.HasField("create_time")
    change = event("ContextUpdated")
    assert (change.name, change.version, list(change.updated_fields)) == ("renamed", 2, ["expire_time", "name"])
    assert change.status == 1  # CONTEXT_STATUS_ACTIVE
    added = event("LayerAdded")
    assert (added.name, added.layer_type, added.position, added.version, added.size_bytes) == (
        "base", "user", 1, 1, int(layer["size_bytes"]))
    layer_change = event("LayerUpdated")
    assert (layer_change.version, list(layer_change.updated_fields), layer_change.size_bytes) == (
        2, ["data"], int(updated.body["layer"]["size_bytes"]))
    removed = event("LayerRemoved")
    assert (removed.name, removed.position, removed.version, removed.size_bytes) == (
        "base", 1, 2, layer_change.size_bytes)
    shared, unshared = event("ContextShared"), event("ContextUnshared")
    assert (shared.service, list(shared.shared_with), shared.version) == ("service:billing", ["service:billing"], 3)
    assert (unshared.service, list(unshared.shared_with), unshared.version) == ("service:billing", [], 4)
    deleted = event("ContextDeleted")
    assert (deleted.name, deleted.owner, deleted.version, deleted.deleted_layers) == ("renamed", owner, 4, 0)
    assert len({r.envelope.id for r in received}) == len(received)


def test_failed_and_no_op_writes_publish_nothing(mesh: Mesh, rest: RestClient, outsider: ServiceAccount) -> None:
    cid = create(rest, shared_with=["service:billing"])["context_id"]
    lid = add_layer(rest, cid, "only")["layer_id"]
    path = f"/v1/contexts/{cid}"
    assert rest.put(path, {"name": "stale", "expected_version": 7}).status == 409
    assert rest.delete(f"{path}?expected_version=7").status == 409
    assert rest.put(f"{path}/layers/{lid}", {"data": {"x": 1}, "expected_version": 9}).status == 409
    assert rest.delete(f"{path}/layers/{lid}?expected_version=9").status == 409
    assert rest.post(f"{path}/layers", {"name": "only", "layer_type": "user", "data": {}}).status == 409
    assert outsider.rest().post(f"{path}/shares", {"service": "service:workflow"}).status == 403
    assert outsider.rest().put(path, {"name": "intruder"}).status == 403
    # Changes nothing, so no ContextShared / ContextUnshared (and no version bump).
    assert rest.post(f"{path}/shares", {"service": "service:billing"}).body["context"]["version"] == "1"
    assert rest.delete(f"{path}/shares/service:nobody").body["context"]["version"] == "1"

    assert Counter(r.kind for r in about(mesh, cid)) == {"ContextCreated": 1, "LayerAdded": 1}
    queued = outbox_subjects(mesh, f"contexts/{cid}")
    assert queued == [f"contexts/{cid}", f"contexts/{cid}/layers/{lid}"], "nothing else was ever queued"


def test_cleanup_publishes_one_context_expired_per_context(mesh: Mesh, rest: RestClient) -> None:
    contexts = [create(rest, ttl="1.5s") for _ in range(3)]
    ids = {c["context_id"]: c for c in contexts}
    first = contexts[0]["context_id"]
    add_layer(rest, first, "a")
    add_layer(rest, first, "b")

    def expired() -> list[Received]:
        found = [r for r in stream(mesh) if r.kind == "ContextExpired" and r.event.context_id in ids]
        return found if len(found) >= len(ids) else []

    found = eventually(expired, timeout=15, interval=0.3, what="ContextExpired for every expired context")
    assert sorted(r.event.context_id for r in found) == sorted(ids), "one event per context, from one replica"
    for r in found:
        check_envelope(r, f"contexts/{r.event.context_id}")
        assert r.event.version == 2 and r.event.owner == ids[r.event.context_id]["owner"] and r.event.name == "evented"
        assert r.event.expire_time.ToJsonString() == _rfc3339(ids[r.event.context_id]["expire_time"])
        assert r.event.cleanup_time.ToDatetime() >= r.event.expire_time.ToDatetime()
    assert {r.event.context_id: r.event.deleted_layers for r in found} == {cid: 2 if cid == first else 0 for cid in ids}
    reply = rest.get(f"/v1/contexts/{first}")
    assert reply.body["context"]["status"] == "CONTEXT_STATUS_EXPIRED" and reply.body["context"]["layer_count"] == 0


def _rfc3339(value: str) -> str:
    """A REST timestamp in the form Timestamp.ToJsonString() writes."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromJsonString(value)
    return stamp.ToJsonString()
