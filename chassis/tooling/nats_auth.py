"""Per-service NATS permissions of the local mesh, derived from the catalog and chassis.events' naming.

A service may publish only its own domain events (events.<its package>.>) and audit records (the one
subject of protomesh.identity.v1.AuditRecorded, chassis.audit), submit only its own task kinds, write
only its own keys in the registry and breaker buckets, and use the JetStream API only for the streams
and durable consumers it needs. It subscribes to nothing but reply inboxes (JetStream answers, pull
deliveries and KV watches arrive there) and, if it runs tasks, progress
reports. The supervisor's user (the operator's tools) may do everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chassis import audit, faults
from chassis.caching import generations as cache_generations
from chassis.events import subjects
from chassis.events.streams import inbox_prefix
from chassis.registry import NatsKvRegistry
from chassis.resilience.breaker import NatsKvBreakerStore
from chassis.tooling.catalog import Catalog, MeshService
from chassis.tooling.credentials import SUPERVISOR_USER, MeshCredentials
from chassis.tooling.infra.nats import NatsUser

API = "$JS.API"


@dataclass(frozen=True)
class EventNeeds:
    """What a service does on the event bus beyond publishing its own events (its durable names are not
    in the contracts, so they are declared here; a service missing here may only publish)."""

    consumers: tuple[str, ...] = ()
    """Durable event consumer names (chassis.events.Consumer.name)."""
    reads_all_events: bool = False
    """Its consumers read every other service's event stream (notification)."""
    reads_own_events: bool = False
    """Its consumers read its own package's stream (identity: the audit records every service publishes there)."""
    task_kinds: tuple[str, ...] = ()
    """Task kinds it submits and works on (chassis.events.Worker.kinds)."""


EVENT_NEEDS: dict[str, EventNeeds] = {
    "agent": EventNeeds(task_kinds=("agent.run_execution",)),
    "identity": EventNeeds(consumers=("identity-audit",), reads_own_events=True),
    "notification": EventNeeds(consumers=("notification-events",), reads_all_events=True,
                               task_kinds=("notification.deliver",)),
    # A workflow's `listen` may wait for any other service's domain event (services/workflow/listening.py).
    "workflow": EventNeeds(consumers=("workflow-listen",), reads_all_events=True),
}


def _stream_api(stream: str) -> list[str]:
    # Streams are created on first use by whichever replica needs one; info tells it they exist.
    return [f"{API}.STREAM.INFO.{stream}", f"{API}.STREAM.CREATE.{stream}"]


def _consumer_api(stream: str, consumer: str) -> list[str]:
    # nats-py creates a named consumer at CONSUMER.CREATE.<stream>.<name>[.<filter>]; the pull loop then
    # binds (INFO), fetches (MSG.NEXT) and acks, naks or extends (publishes to the $JS.ACK reply subject).
    return [f"{API}.CONSUMER.CREATE.{stream}.{consumer}", f"{API}.CONSUMER.CREATE.{stream}.{consumer}.>",
            f"{API}.CONSUMER.DURABLE.CREATE.{stream}.{consumer}", f"{API}.CONSUMER.INFO.{stream}.{consumer}",
            f"{API}.CONSUMER.MSG.NEXT.{stream}.{consumer}", f"$JS.ACK.{stream}.{consumer}.>"]


def _kv_api(bucket: str, own_keys: str) -> list[str]:
    stream = f"KV_{bucket}"
    # Reading: watches are ephemeral ordered consumers (unnamed, so not scoped by name), gets are
    # direct or message gets. Writing is limited to the service's own keys.
    return [*_stream_api(stream), f"{API}.CONSUMER.CREATE.{stream}", f"{API}.CONSUMER.CREATE.{stream}.>",
            f"{API}.CONSUMER.DELETE.{stream}.>", f"{API}.CONSUMER.INFO.{stream}.>",
            f"{API}.DIRECT.GET.{stream}", f"{API}.DIRECT.GET.{stream}.>", f"{API}.STREAM.MSG.GET.{stream}",
            f"$JS.FC.{stream}.>", f"$KV.{bucket}.{own_keys}.>"]


def service_permissions(service: MeshService, catalog: Catalog) -> tuple[list[str], list[str]]:
    """(publish, subscribe) allow lists of one service."""
    needs = EVENT_NEEDS.get(service.name, EventNeeds())
    publish: list[str] = [f"{API}.INFO"]
    for package in service.packages:
        publish += [f"{subjects.EVENT_PREFIX}.{package}.>", *_stream_api(subjects.package_stream(package))]
    # Every replica records its writes and denials through its outbox (chassis.audit): the relay publishes them
    # on this one subject, in the identity package's stream, which the relay may have to create.
    publish += [subjects.event_subject(audit.EVENT), *_stream_api(subjects.event_stream(audit.EVENT))]
    publish += _stream_api(subjects.DEAD_LETTER_STREAM)
    publish += _kv_api(NatsKvRegistry.BUCKET, service.name)
    publish += _kv_api(NatsKvBreakerStore.BUCKET, service.name)
    # The failure toggles (chassis.faults): read, and the bucket made on first use, never written by a service.
    publish += [p for p in _kv_api(faults.BUCKET, "") if not p.startswith("$KV.")]
    publish += _kv_api(cache_generations.BUCKET, service.name)  # cache generations (chassis.caching)
    read_streams = _other_streams(service, catalog) if needs.reads_all_events else []
    if needs.reads_own_events:
        read_streams += [subjects.package_stream(p) for p in service.packages]
    for consumer in needs.consumers:
        publish.append(f"{subjects.DEAD_LETTER_PREFIX}.{consumer}.>")
        for stream in read_streams:
            publish += [*_stream_api(stream), *_consumer_api(stream, consumer)]
    # Replies and pulled messages arrive on the service's own inboxes (chassis.events.streams.inbox_prefix),
    # so no service can listen in on another's.
    subscribe = [f"{inbox_prefix(service.name)}.>"]
    if needs.task_kinds:
        publish += [*_stream_api(subjects.TASK_STREAM), f"{subjects.TASK_PROGRESS_PREFIX}.>"]
        subscribe.append(f"{subjects.TASK_PROGRESS_PREFIX}.>")
    for kind in needs.task_kinds:
        consumer = subjects.task_consumer(kind)
        publish += [subjects.task_subject(kind), f"{subjects.DEAD_LETTER_PREFIX}.{consumer}.>",
                    *_consumer_api(subjects.TASK_STREAM, consumer)]
    return _unique(publish), subscribe


def _other_streams(service: MeshService, catalog: Catalog) -> list[str]:
    return [subjects.package_stream(p) for s in catalog.services if s.name != service.name for p in s.packages]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def mesh_users(catalog: Catalog, credentials: MeshCredentials) -> list[NatsUser]:
    """The supervisor's user (everything) and one limited user per service in the catalog."""
    users = [NatsUser(SUPERVISOR_USER, credentials.nats_user(SUPERVISOR_USER))]
    for service in catalog.services:
        publish, subscribe = service_permissions(service, catalog)
        users.append(NatsUser(service.name, credentials.nats_user(service.name), publish, subscribe))
    return users
