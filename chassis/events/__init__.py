"""The event bus: domain events through a transactional outbox onto NATS JetStream, consumers, task queues.

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

    # 4. The service declares them; chassis.serve runs one EventBus per replica for it:
    def handlers(replica: chassis.Replica, deps: AgentDeps) -> events.EventHandlers:
        return events.EventHandlers(consumers=[consumer], workers=[worker])

    chassis.Service(..., handlers=handlers)
    await replica.events.tasks.submit("agent.run_execution", payload_message, task_id=...)

`serve` starts the bus after the database and the lifespan are up (chassis migrations, streams,
relay, consumers, workers), adds a "nats" health probe, exposes it as `replica.events`, and stops it
after the server has stopped, before the pool closes. A service with a database and NATS_URL gets
the bus (and its outbox relay) even without handlers. The dead-letter commands live in the tooling:
`chassis.tooling.deadletters_cli`.

Handlers can read the delivery (trace headers, attempt number) from `events.current_delivery.get()`;
`chassis.callcontext.current_call` carries the incoming trace context while a handler runs, so
events it writes to the outbox and gRPC calls it makes continue the trace.

Guarantees: a committed event is published at least once (server de-duplication on the event id)
and handled once per consumer (processed_events); failures are retried with exponential backoff
and dead-lettered on the max_deliver-th delivery; invalid events are dead-lettered unread.
Order is per relay batch, not guaranteed across relay replicas or retries.
"""

from chassis.events import outbox, subjects
from chassis.events.bus import EventBus, EventHandlers
from chassis.events.consumer import Consumer, Handler
from chassis.events.deadletters import DeadLetters, StoredDeadLetter
from chassis.events.delivery import Backoff, Delivery, current_delivery
from chassis.events.envelope import InvalidEvent, open_envelope
from chassis.events.relay import Relay
from chassis.events.tasks import Task, TaskHandler, TaskQueue, Worker

__all__ = [
    "Backoff",
    "Consumer",
    "DeadLetters",
    "Delivery",
    "EventBus",
    "EventHandlers",
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
