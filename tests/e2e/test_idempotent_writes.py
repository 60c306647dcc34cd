"""Keyed writes through the real gateway survive a hung replica and a PostgreSQL crash, applied once.

A bounded stream of POST /v1/agents, each with its own Idempotency-Key; a client that gets no answer
(or a 5xx) sends the same request with the same key again, a bounded number of times. Afterwards
every acknowledged write is readable with the id it was acknowledged with, and no name was stored
twice or refused as a duplicate (a replayed first answer, not a 409). The stall is printed; the
assertions do not depend on timing.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from chassis.tooling.mesh_testing import Reply, RestClient, eventually, running_mesh
from chassis.tooling.supervisor import Mesh

WRITES = 60
DISRUPT_AT = 15
ATTEMPTS = 30
OUTAGE_SECONDS = 3.0
HANG_SECONDS = 4.0
"""How long the hung replica stays stopped. A write it committed just before the stop is answered, to
every retry with the same key, once it records that answer: 503 "retry" until then, never a 409."""
"""Tries of one write (same key) before the client gives up on it: bounded, and unacknowledged then."""


@pytest.fixture
def fresh_mesh() -> Iterator[Mesh]:
    """A mesh of its own (2 agent replicas): these tests break things."""
    with running_mesh(only=["agent"]) as mesh:
        yield mesh


@dataclass
class Stream:
    """What the client saw: acknowledged writes (name -> agent id), statuses, and each write's latency."""

    acknowledged: dict[str, str] = field(default_factory=dict)
    statuses: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


def write_stream(rest: RestClient, prefix: str, disrupt: Callable[[], None]) -> Stream:
    seen = Stream()

    def one_write(i: int) -> None:
        if i == DISRUPT_AT:
            disrupt()
        name, key = f"{prefix}-{i}", str(uuid.uuid4())
        started = time.monotonic()
        for _ in range(ATTEMPTS):
            try:
                reply = rest.call("POST", "/v1/agents", {"name": name, "type": "calculator"},
                                  headers={"Idempotency-Key": key})
            except OSError:  # no answer in time: the same key again
                seen.statuses.append(0)
                continue
            seen.statuses.append(reply.status)
            if reply.status == 200:
                seen.acknowledged[name] = reply.body["agent"]["agent_id"]
                break
            if reply.status < 500:
                break  # a refusal is final; a 409 here would be a double caught by the name
            time.sleep(0.25)
        seen.latencies.append(time.monotonic() - started)

    with ThreadPoolExecutor(max_workers=3) as pool:
        for future in [pool.submit(one_write, i) for i in range(WRITES)]:
            future.result(timeout=600)
    return seen


def check_applied_once(rest: RestClient, prefix: str, seen: Stream) -> None:
    def readable(agent_id: str) -> Reply | None:
        reply = rest.get(f"/v1/agents/{agent_id}")
        return reply if reply.status == 200 else None

    for name, agent_id in seen.acknowledged.items():
        reply = eventually(functools.partial(readable, agent_id), timeout=30, what=f"acknowledged {name} readable")
        assert reply.body["agent"]["name"] == name, (name, reply.body)
    listed = rest.get(f"/v1/agents?name_contains={prefix}-&page_size=1000")
    assert listed.status == 200, listed.body
    names = [a["name"] for a in listed.body.get("agents", [])]
    assert len(names) == len(set(names)), "no write stored twice"
    assert set(seen.acknowledged) <= set(names)
    assert 409 not in seen.statuses, "a retried keyed write was answered as a duplicate, not with its first answer"


def test_keyed_posts_survive_a_hung_replica_applied_once(fresh_mesh: Mesh) -> None:
    rest = RestClient.for_mesh(fresh_mesh, timeout=15)
    victim = fresh_mesh.replicas["agent"][0]
    assert victim.pid is not None
    pid = victim.pid
    resume = threading.Timer(HANG_SECONDS, os.kill, (pid, signal.SIGCONT))

    def hang() -> None:
        os.kill(pid, signal.SIGSTOP)
        resume.start()

    try:
        seen = write_stream(rest, "hung", hang)
    finally:
        resume.cancel()
        os.kill(pid, signal.SIGCONT)
    print(f"hung replica: {len(seen.acknowledged)}/{WRITES} keyed POSTs acknowledged, slowest "
          f"{max(seen.latencies) * 1000:.0f} ms, statuses {sorted(set(seen.statuses))}")
    check_applied_once(rest, "hung", seen)
    assert len(seen.acknowledged) == WRITES, "another replica took every write"


def test_keyed_posts_survive_a_postgres_crash_applied_once(fresh_mesh: Mesh) -> None:
    rest = RestClient.for_mesh(fresh_mesh, timeout=15)
    postgres = fresh_mesh.postgres
    assert postgres is not None
    restart = threading.Timer(OUTAGE_SECONDS, postgres.start)

    def crash() -> None:
        postgres.kill()  # SIGKILL: in-flight transactions die with it
        restart.start()

    try:
        seen = write_stream(rest, "pgcrash", crash)
    finally:
        restart.join(timeout=OUTAGE_SECONDS + 60)
    print(f"PostgreSQL killed: {len(seen.acknowledged)}/{WRITES} keyed POSTs acknowledged, slowest "
          f"{max(seen.latencies) * 1000:.0f} ms, statuses {sorted(set(seen.statuses))}")
    eventually(lambda: rest.get("/v1/agents?page_size=1").status == 200, timeout=60, what="the mesh back")
    check_applied_once(rest, "pgcrash", seen)
