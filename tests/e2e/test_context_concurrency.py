"""Context counters under concurrent writers, version races, size limits and the expiry cleanup job.

Two context replicas behind Envoy, so concurrent calls really run in different processes.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chassis.tooling.mesh_testing import Reply, RestClient, eventually, running_mesh
from chassis.tooling.supervisor import Mesh

MAX_LAYER_BYTES = 8192
MAX_CONTEXT_BYTES = 20_000


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    """Context replicas with a fast cleanup job and small size limits."""
    env = {"CONTEXT_CLEANUP_INTERVAL_SECONDS": "0.3", "CONTEXT_MAX_LAYER_BYTES": str(MAX_LAYER_BYTES),
           "CONTEXT_MAX_CONTEXT_BYTES": str(MAX_CONTEXT_BYTES), "DB_POOL_MAX": "8"}
    with running_mesh(only=["context"], extra_env=env) as started:
        yield started


def create(rest: RestClient, **extra: Any) -> dict:
    reply = rest.post("/v1/contexts", {"name": "concurrent", "type": "session", **extra})
    assert reply.status == 200, reply.body
    return reply.body["context"]


def run_together(calls: list[Callable[[], Reply]], workers: int = 8) -> list[Reply]:
    """Run the calls on a thread pool and return their replies in order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda call: call(), calls))


def race(calls: list[Callable[[], Reply]]) -> list[Reply]:
    """Start the calls at the same instant (a barrier), one thread each."""
    barrier = threading.Barrier(len(calls))

    def at_once(call: Callable[[], Reply]) -> Callable[[], Reply]:
        def go() -> Reply:
            barrier.wait()
            return call()
        return go

    return run_together([at_once(c) for c in calls], workers=len(calls))


def all_layers(rest: RestClient, cid: str) -> list[dict]:
    reply = rest.get(f"/v1/contexts/{cid}/layers?page_size=1000")
    assert reply.status == 200
    return reply.body["layers"]


def envoy_retries(mesh: Mesh) -> int:
    """How many times the gateway retried a call to context (a read that timed out under load and was retried
    may have been counted by the replica too: reads are idempotent, their analytics count attempts)."""
    url = f"http://127.0.0.1:{mesh.admin_port}/stats?filter=^cluster\\.context\\.upstream_rq_retry$"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return sum(int(value) for _, _, value in (line.partition(": ") for line in text.splitlines()) if value.isdigit())


def assert_counted(counted: int, expected: int, retried: int) -> None:
    """Exactly the calls made, plus at most the gateway's retries of them."""
    assert expected <= counted <= expected + retried, (counted, expected, retried)


def test_concurrent_writers_and_readers_keep_counters_exact(mesh: Mesh, rest: RestClient) -> None:
    retries_before = envoy_retries(mesh)
    cid = create(rest)["context_id"]
    per_writer = 20
    adds = [
        (lambda w=w, i=i: rest.post(f"/v1/contexts/{cid}/layers", {
            "name": f"w{w}-{i}", "layer_type": "user", "data": {"writer": w, "i": i, "pad": "x" * (i % 7)}}))
        for i in range(per_writer) for w in range(2)
    ]
    reads = [(lambda: rest.get(f"/v1/contexts/{cid}")) for _ in adds]
    replies = run_together([call for pair in zip(adds, reads, strict=True) for call in pair])
    assert all(r.status == 200 for r in replies), [r.body for r in replies if r.status != 200]
    added = [r for r in replies if "layer" in r.body]
    assert len(added) == 2 * per_writer
    expected_reads = len(reads)

    layers = all_layers(rest, cid)
    expected_reads += 1
    assert sorted(layer["position"] for layer in layers) == list(range(1, 2 * per_writer + 1)), \
        "appends got distinct, gap-free positions"
    context = rest.get(f"/v1/contexts/{cid}").body["context"]
    expected_reads += 1
    assert context["layer_count"] == 2 * per_writer
    assert int(context["size_bytes"]) == sum(int(r.body["layer"]["size_bytes"]) for r in added)
    assert int(context["size_bytes"]) == sum(int(layer["size_bytes"]) for layer in layers)
    assert_counted(int(context["access_count"]), 2 * per_writer + expected_reads, envoy_retries(mesh) - retries_before)

    # Second round: shrink or grow half the layers and delete the other half, while reading.
    keep, drop = layers[::2], layers[1::2]
    updates = [(lambda layer=layer: rest.put(f"/v1/contexts/{cid}/layers/{layer['layer_id']}",
                                             {"data": {"grown": "y" * (layer["position"] * 3)}})) for layer in keep]
    deletes = [(lambda layer=layer: rest.delete(f"/v1/contexts/{cid}/layers/{layer['layer_id']}")) for layer in drop]
    more_reads = [(lambda: rest.get(f"/v1/contexts/{cid}/resolved")) for _ in range(10)]
    replies = run_together(updates + deletes + more_reads)
    assert all(r.status == 200 for r in replies), [r.body for r in replies if r.status != 200]
    expected_reads += len(more_reads)
    writes = 2 * per_writer + len(updates) + len(deletes)

    layers = all_layers(rest, cid)
    expected_reads += 1
    context = rest.get(f"/v1/contexts/{cid}").body["context"]
    expected_reads += 1
    assert context["layer_count"] == len(keep) == len(layers)
    assert int(context["size_bytes"]) == sum(int(layer["size_bytes"]) for layer in layers)
    assert int(context["size_bytes"]) == sum(len('{"grown":""}') + layer["position"] * 3 for layer in keep)
    retried = envoy_retries(mesh) - retries_before
    assert_counted(int(context["access_count"]), writes + expected_reads, retried)
    analytics = rest.get(f"/v1/contexts/{cid}/analytics").body["analytics"]
    assert analytics["writes_last_24h"] == str(writes)  # writes without an idempotency key are never retried
    assert_counted(int(analytics["reads_last_24h"]), expected_reads, retried)


def test_the_loser_of_a_version_race_gets_409(rest: RestClient) -> None:
    context = create(rest)
    cid = context["context_id"]
    layer = rest.post(f"/v1/contexts/{cid}/layers",
                      {"name": "raced", "layer_type": "t", "data": {"v": 0}}).body["layer"]
    for round_ in range(5):
        version = int(rest.get(f"/v1/contexts/{cid}/layers/{layer['layer_id']}").body["layer"]["version"])
        replies = race([
            (lambda who=who, version=version: rest.put(f"/v1/contexts/{cid}/layers/{layer['layer_id']}",
                                                       {"data": {"v": who}, "expected_version": version}))
            for who in ("a", "b")
        ])
        assert sorted(r.status for r in replies) == [200, 409], [r.body for r in replies]
        winner = next(r for r in replies if r.status == 200).body["layer"]
        loser = next(r for r in replies if r.status == 409).body
        assert "re-read" in loser["message"]
        now = rest.get(f"/v1/contexts/{cid}/layers/{layer['layer_id']}").body["layer"]
        assert now["version"] == str(version + 1) == winner["version"], round_
        assert now["data"] == winner["data"]

    for _ in range(3):
        version = int(rest.get(f"/v1/contexts/{cid}").body["context"]["version"])
        replies = race([
            (lambda name=name, version=version: rest.put(f"/v1/contexts/{cid}",
                                                         {"name": name, "expected_version": version}))
            for name in ("left", "right")
        ])
        assert sorted(r.status for r in replies) == [200, 409]
        assert rest.get(f"/v1/contexts/{cid}").body["context"]["version"] == str(version + 1)


def test_update_and_delete_of_one_layer_race_cleanly(rest: RestClient) -> None:
    cid = create(rest)["context_id"]
    for _ in range(3):
        layer = rest.post(f"/v1/contexts/{cid}/layers",
                          {"name": f"l{time.monotonic_ns()}", "layer_type": "t", "data": {"a": 1}}).body["layer"]
        path = f"/v1/contexts/{cid}/layers/{layer['layer_id']}"
        replies = race([lambda path=path: rest.put(path, {"data": {"a": "x" * 50}, "expected_version": 1}),
                        lambda path=path: rest.delete(f"{path}?expected_version=1")])
        statuses = sorted(r.status for r in replies)
        assert statuses in ([200, 404], [200, 409]), [r.body for r in replies]
    context = rest.get(f"/v1/contexts/{cid}").body["context"]
    assert context["layer_count"] == len(all_layers(rest, cid))
    assert int(context["size_bytes"]) == sum(int(layer["size_bytes"]) for layer in all_layers(rest, cid))


def test_size_limits_come_from_the_environment(rest: RestClient) -> None:
    cid = create(rest)["context_id"]
    too_big = rest.post(f"/v1/contexts/{cid}/layers",
                        {"name": "big", "layer_type": "t", "data": {"s": "x" * MAX_LAYER_BYTES}})
    assert too_big.status == 400 and f"at most {MAX_LAYER_BYTES}" in too_big.field_violations()["data"]
    chunk = {"s": "x" * (MAX_LAYER_BYTES - 100)}
    for name in ("one", "two"):
        assert rest.post(f"/v1/contexts/{cid}/layers", {"name": name, "layer_type": "t", "data": chunk}).status == 200
    full = rest.post(f"/v1/contexts/{cid}/layers", {"name": "three", "layer_type": "t", "data": chunk})
    assert full.status == 400 and full.body["code"] == 9  # FAILED_PRECONDITION
    assert "CONTEXT_MAX_CONTEXT_BYTES" in full.body["message"]
    context = rest.get(f"/v1/contexts/{cid}").body["context"]
    assert context["layer_count"] == 2 and int(context["size_bytes"]) <= MAX_CONTEXT_BYTES
    assert rest.post(f"/v1/contexts/{cid}/layers", {"name": "small", "layer_type": "t", "data": {"a": 1}}).status == 200


def test_cleanup_expires_contexts_and_removes_their_layers(rest: RestClient) -> None:
    doomed = create(rest, name="doomed", ttl="1s")
    kept = create(rest, name="kept")
    extended = create(rest, name="extended", ttl="1s")
    for context in (doomed, kept, extended):
        for name in ("a", "b"):
            reply = rest.post(f"/v1/contexts/{context['context_id']}/layers",
                              {"name": name, "layer_type": "t", "data": {name: 1}})
            assert reply.status == 200, reply.body
    assert rest.put(f"/v1/contexts/{extended['context_id']}", {"ttl": "3600s"}).status == 200

    def cleaned() -> dict | None:
        context = rest.get(f"/v1/contexts/{doomed['context_id']}").body["context"]
        return context if context["layer_count"] == 0 else None

    context = eventually(cleaned, timeout=15, what="the cleanup job to remove the expired context's layers")
    assert context["status"] == "CONTEXT_STATUS_EXPIRED"
    assert context["size_bytes"] == "0" and context["name"] == "doomed", "the row stays, as a tombstone"
    assert rest.get(f"/v1/contexts/{doomed['context_id']}/layers").body["layers"] == []
    assert rest.get(f"/v1/contexts/{doomed['context_id']}/resolved").body["data"] == {}
    refused = rest.post(f"/v1/contexts/{doomed['context_id']}/layers", {"name": "late", "layer_type": "t"})
    assert refused.status == 400 and "expired" in refused.body["message"]
    assert rest.put(f"/v1/contexts/{doomed['context_id']}", {"name": "revive"}).status == 400
    expired = rest.get("/v1/contexts?status=CONTEXT_STATUS_EXPIRED").body["contexts"]
    assert doomed["context_id"] in [c["context_id"] for c in expired]

    for survivor in (kept, extended):
        context = rest.get(f"/v1/contexts/{survivor['context_id']}").body["context"]
        assert (context["status"], context["layer_count"]) == ("CONTEXT_STATUS_ACTIVE", 2), survivor["name"]

    assert rest.delete(f"/v1/contexts/{doomed['context_id']}").status == 200, "expired contexts can be deleted"
