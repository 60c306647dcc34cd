"""Conversions between stored rows and the contracts' messages."""

from __future__ import annotations

from chassis.protos import timestamp, to_struct
from protomesh.context.v1 import context_pb2
from services.context.rows import ContextRow, LayerRow

STATUS_TO_PROTO = {
    "active": context_pb2.CONTEXT_STATUS_ACTIVE,
    "archived": context_pb2.CONTEXT_STATUS_ARCHIVED,
    "expired": context_pb2.CONTEXT_STATUS_EXPIRED,
}
STATUS_FROM_PROTO = {number: name for name, number in STATUS_TO_PROTO.items()}
_MIB = 1024 * 1024


def mib(size_bytes: int) -> float:
    """Bytes in MiB, rounded to 6 decimals."""
    return round(size_bytes / _MIB, 6)


def context_message(row: ContextRow) -> context_pb2.Context:
    """The contracts' Context for a stored context."""
    return context_pb2.Context(
        context_id=str(row.id),
        name=row.name,
        type=row.type,
        status=STATUS_TO_PROTO[row.status],
        owner=row.owner,
        shared_with=row.shared_with,
        metadata=to_struct(row.metadata),
        tags=row.tags,
        layer_count=row.layer_count,
        size_bytes=row.size_bytes,
        size_mb=mib(row.size_bytes),
        access_count=row.access_count,
        version=row.version,
        expire_time=timestamp(row.expires_at),
        create_time=timestamp(row.created_at),
        update_time=timestamp(row.updated_at),
        last_access_time=timestamp(row.last_accessed_at),
        organization_id=row.organization_id,
    )


def layer_message(row: LayerRow) -> context_pb2.Layer:
    """The contracts' Layer for a stored layer."""
    return context_pb2.Layer(
        layer_id=str(row.id),
        context_id=str(row.context_id),
        name=row.name,
        layer_type=row.layer_type,
        position=row.position,
        data=to_struct(row.data),
        size_bytes=row.size_bytes,
        version=row.version,
        create_time=timestamp(row.created_at),
        update_time=timestamp(row.updated_at),
        organization_id=row.organization_id,
    )
