"""The context service's domain events, built from the rows they describe (published through the outbox).

Every write in services.context.store puts its event in the outbox in the same transaction as the
change, so an event is published (after commit) exactly when the change happened. Each carries its
context's organization_id, which the envelope repeats as the `pm-organization` header.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from google.protobuf.message import Message

from chassis.protos import timestamp
from protomesh.context.v1 import events_pb2
from services.context.messages import STATUS_TO_PROTO
from services.context.rows import ContextRow, LayerRow

SOURCE = "context"

# Stored column -> the contract's field path, for updated_fields (ttl and expire_time both set expires_at).
_CONTEXT_PATHS = {"expires_at": "expire_time"}
# size_bytes changes with data and is not a field a request sets.
_LAYER_HIDDEN = {"size_bytes"}


def context_subject(context_id: Any) -> str:
    """The resource a context event is about."""
    return f"contexts/{context_id}"


def layer_subject(context_id: Any, layer_id: Any) -> str:
    """The resource a layer event is about."""
    return f"contexts/{context_id}/layers/{layer_id}"


def created(row: ContextRow) -> Message:
    """ContextCreated for a new context."""
    return events_pb2.ContextCreated(
        context_id=str(row.id), name=row.name, type=row.type, owner=row.owner, shared_with=row.shared_with,
        tags=row.tags, expire_time=timestamp(row.expires_at), version=row.version,
        create_time=timestamp(row.created_at), organization_id=row.organization_id,
    )


def updated(row: ContextRow, columns: Iterable[str]) -> Message:
    """ContextUpdated naming the replaced fields by their contract paths."""
    fields = sorted({_CONTEXT_PATHS.get(c, c) for c in columns})
    return events_pb2.ContextUpdated(
        context_id=str(row.id), name=row.name, type=row.type, status=STATUS_TO_PROTO[row.status],
        updated_fields=fields, version=row.version, update_time=timestamp(row.updated_at),
        organization_id=row.organization_id,
    )


def deleted(row: ContextRow, deleted_at: datetime) -> Message:
    """ContextDeleted for a context as it was when deleted (its layers went with it)."""
    return events_pb2.ContextDeleted(
        context_id=str(row.id), name=row.name, type=row.type, owner=row.owner, deleted_layers=row.layer_count,
        version=row.version, delete_time=timestamp(deleted_at), organization_id=row.organization_id,
    )


def shares_changed(row: ContextRow, *, added: str = "", removed: str = "") -> Message:
    """ContextShared or ContextUnshared for an access list that changed."""
    event: events_pb2.ContextShared | events_pb2.ContextUnshared = (
        events_pb2.ContextShared(service=added) if added else events_pb2.ContextUnshared(service=removed)
    )
    event.context_id = str(row.id)
    event.shared_with.extend(row.shared_with)
    event.version = row.version
    event.update_time.FromDatetime(row.updated_at)
    event.organization_id = row.organization_id
    return event


def layer_added(layer: LayerRow) -> Message:
    """LayerAdded for a new layer."""
    return events_pb2.LayerAdded(
        context_id=str(layer.context_id), layer_id=str(layer.id), name=layer.name, layer_type=layer.layer_type,
        position=layer.position, version=layer.version, size_bytes=layer.size_bytes,
        create_time=timestamp(layer.created_at), organization_id=layer.organization_id,
    )


def layer_updated(layer: LayerRow, columns: Iterable[str]) -> Message:
    """LayerUpdated naming the replaced fields."""
    return events_pb2.LayerUpdated(
        context_id=str(layer.context_id), layer_id=str(layer.id), name=layer.name, layer_type=layer.layer_type,
        position=layer.position, version=layer.version, size_bytes=layer.size_bytes,
        updated_fields=sorted(set(columns) - _LAYER_HIDDEN), update_time=timestamp(layer.updated_at),
        organization_id=layer.organization_id,
    )


def layer_removed(layer: LayerRow, removed_at: datetime) -> Message:
    """LayerRemoved for a layer as it was when deleted."""
    return events_pb2.LayerRemoved(
        context_id=str(layer.context_id), layer_id=str(layer.id), name=layer.name, layer_type=layer.layer_type,
        position=layer.position, version=layer.version, size_bytes=layer.size_bytes,
        remove_time=timestamp(removed_at), organization_id=layer.organization_id,
    )


def expired(row: dict[str, Any]) -> Message:
    """ContextExpired for a context the cleanup job expired (a row of ContextStore.expire_due's query)."""
    return events_pb2.ContextExpired(
        context_id=str(row["id"]), name=row["name"], type=row["type"], owner=row["owner"],
        deleted_layers=row["deleted_layers"], version=row["version"], expire_time=timestamp(row["expires_at"]),
        cleanup_time=timestamp(row["updated_at"]), organization_id=row["organization_id"],
    )
