"""Events runtime: domain events through a transactional outbox onto NATS JetStream, consumers, task queues.

How a service uses it (everything NATS-named is derived from the contracts by `subjects`):

    from chassis import events
    from protomesh.agent.v1 import events_pb2

    # 1. Write the change and its event in one transaction (the relay publishes after commit).
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("INSERT INTO agents ...")
        await events.outbox.add(conn, events_pb2.AgentRegistered(agent_id=...),
                                subject=f"agents/{agent_id}", source="agent")

    # 2. Consume events: the handler's writes and the "handled" record commit together.
    async def on_registered(event: events_pb2.AgentRegistered, envelope, conn) -> None:
        await conn.execute("INSERT INTO known_agents ...")

    consumer = events.Consumer("context-agents", [events_pb2.AgentRegistered], on_registered,
                               max_deliver=5, backoff=events.Backoff(initial=0.5))

    # 3. Background tasks: any worker replica may run any task of its kinds.
    worker = events.Worker(["agent.run_execution"], run_execution, ack_wait=30, concurrency=2)

    # 4. One runtime per replica, owned by the lifespan (or by chassis.serve once wired in):
    runtime = events.EventsRuntime(settings, pool, consumers=[consumer], workers=[worker])
    await runtime.start()      # chassis migrations, streams, relay, consumers, workers
    await runtime.tasks.submit("agent.run_execution", payload_message, task_id=...)
    await runtime.stop(grace)

Wiring into chassis.Service (for the server's owner): one optional field, e.g.
`events: Callable[[Runtime], EventsSpec] | None` returning consumers and workers (handlers are
built from the runtime, so they can reach the lifespan's objects); `serve` then, after the
database and the lifespan are up, runs `EventsRuntime(settings, runtime.pool, consumers=...,
workers=...)`, `await start()`, adds `health.add_probe("nats", events.ping)`, exposes it as
`runtime.events` (for `runtime.events.tasks.submit`), and after `server.stop(grace)` calls
`await events.stop(grace)` before the pool closes. Until then a service's lifespan can own it
with `async with EventsRuntime(...)`. The dead-letter commands are added to the protomesh CLI
with `chassis.tooling.deadletters_cli.add_commands(subparsers)`.

Handlers can read the delivery (trace headers, attempt number) from `events.current_delivery.get()`;
`chassis.callcontext.current_call` carries the incoming trace context while a handler runs, so
events it writes to the outbox and gRPC calls it makes continue the trace.

Guarantees: a committed event is published at least once (server de-duplication on the event id)
and handled once per consumer (processed_events); failures are retried with exponential backoff
and dead-lettered on the max_deliver-th delivery; invalid events are dead-lettered unread.
Order is per relay batch, not guaranteed across relay replicas or retries.
"""

from chassis.events import outbox, subjects
from chassis.events.consumer import Consumer, Handler
from chassis.events.deadletters import DeadLetters, StoredDeadLetter
from chassis.events.delivery import Backoff, Delivery, current_delivery
from chassis.events.envelope import InvalidEvent, open_envelope
from chassis.events.relay import Relay
from chassis.events.runtime import EventsRuntime, EventsSpec
from chassis.events.tasks import Task, TaskHandler, TaskQueue, Worker

__all__ = [
    "Backoff",
    "Consumer",
    "DeadLetters",
    "Delivery",
    "EventsRuntime",
    "EventsSpec",
    "Handler",
    "InvalidEvent",
    "Relay",
    "StoredDeadLetter",
    "Task",
    "TaskHandler",
    "TaskQueue",
    "Worker",
    "current_delivery",
    "open_envelope",
    "outbox",
    "subjects",
]
