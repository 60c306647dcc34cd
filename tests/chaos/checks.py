"""What every chaos case checks after its fault, and the one line it prints.

- recovery: the mesh answers a REST write and read and a gRPC read again, within RECOVERY_LIMIT_SECONDS;
- writes lost: acknowledged writes that cannot be read back through the gateway (must be 0);
- writes doubled: names (request ids) with more than one context row (must be 0);
- events lost: ContextCreated events committed in the outbox (every acknowledged write must have one) that
  the notification service's consumer has not handled within EVENTS_LIMIT_SECONDS (must be 0);
- events duplicated: messages in the context stream beyond the events the outbox committed (must be 0);
  handling twice is excluded by processed_events' key, publishing twice is what this counts.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
import nats
import psycopg

from chassis.events import subjects
from chassis.events.streams import nats_servers
from chassis.tooling.hosts.mesh import HostedMesh
from chassis.tooling.hosts.processes import NatsNode
from chassis.tooling.mesh_testing import RestClient, mesh_channel
from protomesh.context.v1 import context_service_pb2_grpc as pb_grpc
from protomesh.context.v1 import events_pb2
from protomesh.events.v1 import envelope_pb2
from tests.chaos.load import CallFailed, Load, grpc_read, rest_read, rest_write

RECOVERY_LIMIT_SECONDS = 30.0
"""The stated recovery time: after the fault ends the mesh must answer again within it."""
EVENTS_LIMIT_SECONDS = 45.0
"""How long committed events may take to be handled after the fault (redelivery waits out ack_wait)."""
CHECK_THREADS = 8
"""Reads and retries after a case go this many at a time (hundreds of them after a long outage)."""
CONTEXT_PACKAGE = events_pb2.DESCRIPTOR.package
CONTEXT_STREAM = subjects.package_stream(CONTEXT_PACKAGE)
CREATED = events_pb2.ContextCreated.DESCRIPTOR.full_name
CONSUMER = "notification-events"
"""The notification service's consumer of every domain event (services/notification/delivery.py)."""


@dataclass
class Verdict:
    """The figures of one case."""

    fault: str
    load: str
    failed: int
    saved: int
    writes_lost: int
    writes_doubled: int
    events_lost: int
    events_duplicated: int
    recovery: float
    error_span: float
    top_error: str = ""
    """The failed calls' most frequent error (what a client saw)."""
    diagnosis: str = ""
    """Where lost events are (only when some are): told by the failing assertion, not the line."""

    def line(self) -> str:
        """The case's one line."""
        return (f"{self.fault} | load {self.load} | failed {self.failed} (a retry saved {self.saved}) | "
                f"writes lost {self.writes_lost}, doubled {self.writes_doubled} | "
                f"events lost {self.events_lost}, duplicated {self.events_duplicated} | "
                f"recovered in {self.recovery:.1f}s (errors for {self.error_span:.1f}s after the fault)"
                + (f" | mostly {self.top_error}" if self.top_error else ""))

    def assert_nothing_lost(self) -> None:
        """The case's verdict: nothing lost or doubled, recovered within the stated time."""
        assert (self.writes_lost, self.writes_doubled, self.events_lost, self.events_duplicated) == (0, 0, 0, 0), \
            f"{self.line()} {self.diagnosis}"
        assert self.recovery <= RECOVERY_LIMIT_SECONDS, self.line()


def wait_recovered(mesh: HostedMesh, since: float, limit: float = RECOVERY_LIMIT_SECONDS) -> float:
    """Seconds from `since` until a REST write, its REST read and a gRPC read all succeed (at most `limit`)."""
    rest = RestClient.for_mesh(mesh, timeout=3)
    deadline = time.monotonic() + limit
    with mesh_channel(mesh) as channel:
        stub = pb_grpc.ContextServiceStub(channel)
        while True:
            try:
                context_id = rest_write(rest, f"probe-{uuid.uuid4()}")
                rest_read(rest, context_id)
                grpc_read(stub, context_id)
                return time.monotonic() - since
            except (CallFailed, OSError, grpc.RpcError) as error:  # any failure means not yet
                if time.monotonic() > deadline:
                    raise AssertionError(f"the mesh did not answer within {limit:.0f}s: {error}") from error
            time.sleep(0.2)


def unreadable(mesh: HostedMesh, load: Load) -> int:
    """Acknowledged writes of the load that cannot be read back through the gateway (three tries each)."""
    rest = RestClient.for_mesh(mesh, timeout=3)

    def lost(context_id: str) -> bool:
        for _ in range(3):
            try:
                rest_read(rest, context_id)
                return False
            except (CallFailed, OSError):
                time.sleep(0.3)
        return True

    with ThreadPoolExecutor(CHECK_THREADS) as pool:
        return sum(pool.map(lost, list(load.acked.values())))


def doubled(mesh: HostedMesh, tag: str) -> int:
    """Names of the load's writes stored more than once."""
    with psycopg.connect(mesh.database_url, connect_timeout=5) as conn:
        rows = conn.execute("SELECT count(*) FROM (SELECT name FROM context.contexts WHERE name LIKE %s"
                            " GROUP BY name HAVING count(*) > 1) AS twice", (f"{tag}-%",)).fetchone()
    return int(rows[0]) if rows else 0


def _created_events(conn: psycopg.Connection, tag: str) -> dict[str, str]:
    """event id -> context name of the load's ContextCreated events in the context outbox."""
    found: dict[str, str] = {}
    for event_id, raw in conn.execute("SELECT event_id, envelope FROM context.outbox WHERE event_type = %s",
                                      (CREATED,)):
        envelope = envelope_pb2.Envelope.FromString(raw)
        event = events_pb2.ContextCreated()
        envelope.data.Unpack(event)
        if event.name.startswith(f"{tag}-"):
            found[event_id] = event.name
    return found


def lost_events(mesh: HostedMesh, load: Load, limit: float = EVENTS_LIMIT_SECONDS) -> int:
    """Committed events of the load not handled by the consumer once the outbox drained (waits up to limit),
    plus acknowledged writes without an event at all."""
    deadline = time.monotonic() + limit
    with psycopg.connect(mesh.database_url, connect_timeout=5, autocommit=True) as conn:
        while True:
            events = _created_events(conn, load.tag)
            handled = {row[0] for row in conn.execute(
                "SELECT event_id FROM notification.processed_events WHERE consumer = %s AND event_id = ANY(%s)",
                (CONSUMER, list(events)))}
            if set(events) <= handled or time.monotonic() > deadline:
                break
            time.sleep(0.3)
    without_event = set(load.acked) - set(events.values())
    return len(set(events) - handled) + len(without_event)


def event_diagnosis(mesh: HostedMesh, load: Load) -> str:
    """Where the load's unhandled events are: still in the outbox, or published and not handled (the consumer)."""
    with psycopg.connect(mesh.database_url, connect_timeout=5, autocommit=True) as conn:
        events = _created_events(conn, load.tag)
        handled = {row[0] for row in conn.execute(
            "SELECT event_id FROM notification.processed_events WHERE consumer = %s AND event_id = ANY(%s)",
            (CONSUMER, list(events)))}
        missing = list(set(events) - handled)
        unsent = conn.execute("SELECT count(*) FROM context.outbox WHERE event_id = ANY(%s) AND sent_at IS NULL",
                              (missing,)).fetchone()
    consumer = asyncio.run(_consumer_state(mesh))
    warnings = [f"{replica.instance_id}: {line[:300]}" for replica in mesh.replicas.get("notification", [])
                for line in replica.log_tail(400).splitlines()[-400:] if '"level":"warning"' in line
                or '"level":"error"' in line][-8:]
    return (f"{len(missing)} unhandled, {unsent[0] if unsent else '?'} of them unpublished; consumer {consumer}; "
            f"notification clients on {_client_nodes(mesh)}; their last warnings: {warnings}")


def _client_nodes(mesh: HostedMesh) -> dict[str, list[str]]:
    """host -> names of the notification service's NATS connections its node holds (from /connz)."""
    found: dict[str, list[str]] = {}
    for node in mesh.nats_nodes:
        try:
            with urllib.request.urlopen(f"{node.monitor_url}/connz?limit=200", timeout=2) as reply:
                connections = json.loads(reply.read()).get("connections", [])
        except (OSError, ValueError):
            continue
        found[node.place.name] = sorted(c.get("name", "") for c in connections if "notification" in c.get("name", ""))
    return found


async def _consumer_state(mesh: HostedMesh) -> str:
    nc = await nats.connect(nats_servers(mesh.nats_url), connect_timeout=3, max_reconnect_attempts=3)
    try:
        js = nc.jetstream()
        stream = await js.stream_info(CONTEXT_STREAM)
        info = await js.consumer_info(CONTEXT_STREAM, CONSUMER)
        leader = info.cluster.leader if info.cluster else "?"
        return (f"leader {leader}, delivered {info.delivered.stream_seq}, ack floor {info.ack_floor.stream_seq}, "
                f"pending {info.num_pending}, unacked {info.num_ack_pending}, waiting pulls {info.num_waiting}; "
                f"stream last seq {stream.state.last_seq}, leader {stream.cluster.leader if stream.cluster else '?'}")
    finally:
        await nc.close()


def duplicated_events(mesh: HostedMesh) -> int:
    """Messages in the context stream beyond the context events the outbox holds (once the outbox drained)."""
    with psycopg.connect(mesh.database_url, connect_timeout=5, autocommit=True) as conn:
        deadline = time.monotonic() + EVENTS_LIMIT_SECONDS
        while conn.execute("SELECT count(*) FROM context.outbox WHERE sent_at IS NULL").fetchone() != (0,):
            if time.monotonic() > deadline:
                break
            time.sleep(0.3)
        row = conn.execute("SELECT count(*) FROM context.outbox WHERE event_type LIKE %s",
                           (f"{CONTEXT_PACKAGE}.%",)).fetchone()
    committed = int(row[0]) if row else 0
    published = asyncio.run(_stream_messages(mesh))
    return max(0, published - committed)


async def _stream_messages(mesh: HostedMesh) -> int:
    nc = await nats.connect(nats_servers(mesh.nats_url), connect_timeout=3, max_reconnect_attempts=3)
    try:
        info = await nc.jetstream().stream_info(CONTEXT_STREAM)
        return int(info.state.messages)
    finally:
        await nc.close()


def stream_leader(mesh: HostedMesh, stream: str = CONTEXT_STREAM) -> NatsNode:
    """The NATS node leading `stream` now."""
    async def leader() -> str:
        nc = await nats.connect(nats_servers(mesh.nats_url), connect_timeout=3, max_reconnect_attempts=3)
        try:
            info = await nc.jetstream().stream_info(stream)
            return str(info.cluster.leader if info.cluster else "")
        finally:
            await nc.close()

    name = asyncio.run(leader())
    return next(node for node in mesh.nats_nodes if node.server_name == name)


def verdict(mesh: HostedMesh, load: Load, fault: str, fault_at: float, recovery: float) -> Verdict:
    """Every check of a case, after its load stopped."""
    errors = Counter(call.error[:80] for call in load.failed)
    failed, saved = load.retry_failed()
    events_lost = lost_events(mesh, load)
    return Verdict(fault=fault, load=load.summary(), failed=failed, saved=saved,
                   diagnosis=event_diagnosis(mesh, load) if events_lost else "",
                   top_error=errors.most_common(1)[0][0] if errors else "",
                   writes_lost=unreadable(mesh, load), writes_doubled=doubled(mesh, load.tag),
                   events_lost=events_lost, events_duplicated=duplicated_events(mesh),
                   recovery=recovery, error_span=load.error_span(fault_at))
