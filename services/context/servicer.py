"""ContextService: contexts, their layers, the resolved view, sharing, analytics and replica information."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from chassis import Replica
from chassis.errors import Violations
from chassis.protos import timestamp, to_datetime, to_struct
from chassis.resources import Key, Keyset, UpdateMask, check_expected_version, optional_id, resource_id
from chassis.standard_rpcs import HealthRpcs
from protomesh.context.v1 import context_pb2, context_service_pb2, context_service_pb2_grpc
from services.context import validation
from services.context.deps import ContextDeps
from services.context.merge import resolve
from services.context.messages import STATUS_FROM_PROTO, STATUS_TO_PROTO, context_message, layer_message, mib
from services.context.rules import Access
from services.context.sanitize import Limits, sanitize
from services.context.settings import ContextSettings
from services.context.store import ContextFilter, ContextStore
from services.context.windows import window_bounds

logger = logging.getLogger(__name__)

_CONTEXT_MASK = UpdateMask.of(context_service_pb2.UpdateContextRequest, resource=context_pb2.Context)
_LAYER_MASK = UpdateMask.of(context_service_pb2.UpdateLayerRequest, resource=context_pb2.Layer)
_CONTEXTS = Keyset.newest_first("contexts")
_LAYERS = Keyset("layers", (Key("position", int),))
_SETTABLE_STATUSES = {context_pb2.CONTEXT_STATUS_ACTIVE: "active", context_pb2.CONTEXT_STATUS_ARCHIVED: "archived"}


def _context_id(value: str) -> uuid.UUID:
    return resource_id("context", value)


def _layer_id(value: str) -> uuid.UUID:
    return resource_id("layer", value)


def _access(caller: str, *, owner_only: bool = False) -> Access:
    v = Violations()
    validation.check_service(v, caller, "caller", required=False)
    v.raise_if_any()
    return Access(caller=caller, owner_only=owner_only)


class ContextServicer(HealthRpcs, context_service_pb2_grpc.ContextServiceServicer):
    """Implements protomesh.context.v1.ContextService over PostgreSQL."""

    def __init__(self, replica: Replica, deps: ContextDeps) -> None:
        self._replica = replica
        self._store: ContextStore = deps.store
        self._settings: ContextSettings = deps.settings
        self._layer_limits = Limits(max_bytes=self._settings.max_layer_bytes)
        self._metadata_limits = Limits(max_bytes=self._settings.max_metadata_bytes)

    # --- contexts -------------------------------------------------------------------------------

    async def ListContexts(self, request: context_service_pb2.ListContextsRequest, context: Any) -> Any:
        v = Violations()
        if request.type:
            validation.check_type(v, request.type)
        validation.check_service(v, request.owner, "owner", required=False)
        validation.check_service(v, request.caller, "caller", required=False)
        tags = validation.clean_tags(v, request.tags)
        v.raise_if_any()
        flt = ContextFilter(type=request.type, status=STATUS_FROM_PROTO.get(request.status, ""), tags=tuple(tags),
                            owner=request.owner, name_contains=request.name_contains, caller=request.caller)
        result = await self._store.list_contexts(flt, _CONTEXTS.page(request, flt))
        return context_service_pb2.ListContextsResponse(
            contexts=[context_message(r) for r in result.items], page_info=result.page_info(),
        )

    async def CreateContext(self, request: context_service_pb2.CreateContextRequest, context: Any) -> Any:
        v = Violations()
        validation.check_text(v, request.name, "name", validation.MAX_NAME)
        validation.check_type(v, request.type)
        validation.check_service(v, request.owner, "owner")
        metadata, _ = sanitize(request.metadata, "metadata", self._metadata_limits, v)
        tags = validation.clean_tags(v, request.tags)
        shared_with = validation.clean_services(v, request.shared_with, "shared_with")
        expires_at = validation.expiry(
            v, expire_time=request.expire_time if request.HasField("expire_time") else None,
            ttl=request.ttl if request.HasField("ttl") else None,
        )
        v.raise_if_any()
        row = await self._store.create_context(
            name=request.name, type_=request.type, owner=request.owner, metadata=metadata, tags=tags,
            shared_with=shared_with, expires_at=expires_at,
        )
        logger.info("context created", extra={"context_id": str(row.id), "context_type": row.type})
        return context_service_pb2.CreateContextResponse(context=context_message(row))

    async def GetContext(self, request: context_service_pb2.GetContextRequest, context: Any) -> Any:
        row = await self._store.read_context(_context_id(request.context_id), _access(request.caller))
        return context_service_pb2.GetContextResponse(context=context_message(row))

    async def UpdateContext(self, request: context_service_pb2.UpdateContextRequest, context: Any) -> Any:
        context_id, access = _context_id(request.context_id), _access(request.caller)
        v = Violations()
        check_expected_version(v, request.expected_version)
        paths = _CONTEXT_MASK.paths(request, v)
        v.raise_if_any()
        changes: dict[str, Any] = {}
        if "name" in paths:
            validation.check_text(v, request.name, "name", validation.MAX_NAME)
            changes["name"] = request.name
        if "metadata" in paths:
            changes["metadata"], _ = sanitize(request.metadata, "metadata", self._metadata_limits, v)
        if "tags" in paths:
            changes["tags"] = validation.clean_tags(v, request.tags)
        if "status" in paths and v.check(
            request.status in _SETTABLE_STATUSES, "status",
            "CONTEXT_STATUS_ACTIVE or CONTEXT_STATUS_ARCHIVED; a context expires through expire_time",
        ):
            changes["status"] = _SETTABLE_STATUSES[request.status]
        if "expire_time" in paths or "ttl" in paths:
            changes["expires_at"] = validation.expiry(
                v, expire_time=request.expire_time if request.HasField("expire_time") else None,
                ttl=request.ttl if request.HasField("ttl") else None,
            )
        v.raise_if_any()
        row = await self._store.update_context(context_id, access, request.expected_version, changes)
        return context_service_pb2.UpdateContextResponse(context=context_message(row))

    async def DeleteContext(self, request: context_service_pb2.DeleteContextRequest, context: Any) -> Any:
        context_id, access = _context_id(request.context_id), _access(request.caller, owner_only=True)
        v = Violations()
        check_expected_version(v, request.expected_version)
        v.raise_if_any()
        deleted_layers = await self._store.delete_context(context_id, access, request.expected_version)
        logger.info("context deleted", extra={"context_id": request.context_id})
        return context_service_pb2.DeleteContextResponse(context_id=request.context_id,
                                                         deleted_layers=deleted_layers)

    # --- layers ---------------------------------------------------------------------------------

    async def ListLayers(self, request: context_service_pb2.ListLayersRequest, context: Any) -> Any:
        context_id, access = _context_id(request.context_id), _access(request.caller)
        v = Violations()
        if request.layer_type:
            validation.check_type(v, request.layer_type, "layer_type")
        v.raise_if_any()
        page = _LAYERS.page(request, (request.context_id, request.layer_type))
        result = await self._store.list_layers(context_id, access, layer_type=request.layer_type, page=page)
        return context_service_pb2.ListLayersResponse(
            layers=[layer_message(r) for r in result.items], page_info=result.page_info(),
        )

    async def AddLayer(self, request: context_service_pb2.AddLayerRequest, context: Any) -> Any:
        context_id, access = _context_id(request.context_id), _access(request.caller)
        v = Violations()
        validation.check_text(v, request.name, "name", validation.MAX_LAYER_NAME)
        validation.check_type(v, request.layer_type, "layer_type")
        validation.check_position(v, request.position, allow_append=True)
        data, size = sanitize(request.data, "data", self._layer_limits, v)
        v.raise_if_any()
        layer, row = await self._store.add_layer(
            context_id, access, name=request.name, layer_type=request.layer_type, data=data, size=size,
            position=request.position, max_context_bytes=self._settings.max_context_bytes,
        )
        return context_service_pb2.AddLayerResponse(layer=layer_message(layer), context=context_message(row))

    async def GetLayer(self, request: context_service_pb2.GetLayerRequest, context: Any) -> Any:
        context_id, access = _context_id(request.context_id), _access(request.caller)
        layer = await self._store.read_layer(context_id, _layer_id(request.layer_id), access)
        return context_service_pb2.GetLayerResponse(layer=layer_message(layer))

    async def UpdateLayer(self, request: context_service_pb2.UpdateLayerRequest, context: Any) -> Any:
        context_id, access = _context_id(request.context_id), _access(request.caller)
        layer_id = _layer_id(request.layer_id)
        v = Violations()
        check_expected_version(v, request.expected_version)
        paths = _LAYER_MASK.paths(request, v)
        v.raise_if_any()
        changes: dict[str, Any] = {}
        if "name" in paths:
            validation.check_text(v, request.name, "name", validation.MAX_LAYER_NAME)
            changes["name"] = request.name
        if "layer_type" in paths:
            validation.check_type(v, request.layer_type, "layer_type")
            changes["layer_type"] = request.layer_type
        if "data" in paths:
            changes["data"], changes["size_bytes"] = sanitize(request.data, "data", self._layer_limits, v)
        if "position" in paths:
            validation.check_position(v, request.position, allow_append=False)
            changes["position"] = request.position
        v.raise_if_any()
        layer, row = await self._store.update_layer(context_id, layer_id, access, request.expected_version, changes,
                                                    self._settings.max_context_bytes)
        return context_service_pb2.UpdateLayerResponse(layer=layer_message(layer), context=context_message(row))

    async def DeleteLayer(self, request: context_service_pb2.DeleteLayerRequest, context: Any) -> Any:
        context_id, access = _context_id(request.context_id), _access(request.caller)
        layer_id = _layer_id(request.layer_id)
        v = Violations()
        check_expected_version(v, request.expected_version)
        v.raise_if_any()
        row = await self._store.delete_layer(context_id, layer_id, access, request.expected_version)
        return context_service_pb2.DeleteLayerResponse(layer_id=request.layer_id, context=context_message(row))

    async def GetResolvedContext(self, request: context_service_pb2.GetResolvedContextRequest, context: Any) -> Any:
        row, layers = await self._store.read_layers(_context_id(request.context_id), _access(request.caller))
        return context_service_pb2.GetResolvedContextResponse(
            context=context_message(row),
            data=to_struct(resolve(layer.data for layer in layers)),
            layer_ids=[str(layer.id) for layer in layers],
        )

    # --- sharing --------------------------------------------------------------------------------

    async def ShareContext(self, request: context_service_pb2.ShareContextRequest, context: Any) -> Any:
        context_id, access = _context_id(request.context_id), _access(request.caller, owner_only=True)
        v = Violations()
        validation.check_service(v, request.service, "service")
        v.raise_if_any()
        row = await self._store.change_shares(context_id, access, add=request.service)
        return context_service_pb2.ShareContextResponse(context=context_message(row))

    async def UnshareContext(self, request: context_service_pb2.UnshareContextRequest, context: Any) -> Any:
        context_id, access = _context_id(request.context_id), _access(request.caller, owner_only=True)
        v = Violations()
        validation.check_service(v, request.service, "service")
        v.raise_if_any()
        row = await self._store.change_shares(context_id, access, remove=request.service)
        return context_service_pb2.UnshareContextResponse(context=context_message(row))

    # --- analytics ------------------------------------------------------------------------------

    async def GetContextAnalytics(self, request: context_service_pb2.GetContextAnalyticsRequest, context: Any) -> Any:
        row = await self._store.peek_context(_context_id(request.context_id), _access(request.caller))
        reads, writes, by_type = await self._store.context_usage(row.id)
        return context_service_pb2.GetContextAnalyticsResponse(
            analytics=context_pb2.ContextAnalytics(
                context_id=str(row.id), status=STATUS_TO_PROTO[row.status], layer_count=row.layer_count,
                size_bytes=row.size_bytes, size_mb=mib(row.size_bytes), access_count=row.access_count,
                reads_last_24h=reads, writes_last_24h=writes, last_access_time=timestamp(row.last_accessed_at),
                layers_by_type=by_type, create_time=timestamp(row.created_at),
            )
        )

    async def GetAnalyticsSummary(self, request: context_service_pb2.GetAnalyticsSummaryRequest, context: Any) -> Any:
        summary = await self._store.summary()
        return context_service_pb2.GetAnalyticsSummaryResponse(
            total_contexts=summary.total_contexts,
            contexts_by_status=[
                context_pb2.StatusCount(status=STATUS_TO_PROTO[status], count=summary.by_status[status])
                for status in STATUS_TO_PROTO if status in summary.by_status
            ],
            contexts_by_type=summary.by_type,
            total_layers=summary.total_layers,
            total_size_bytes=summary.total_size_bytes,
            total_size_mb=mib(summary.total_size_bytes),
            total_access_count=summary.total_access_count,
            reads_last_24h=summary.reads_last_24h,
            writes_last_24h=summary.writes_last_24h,
        )

    async def GetUsageTrends(self, request: context_service_pb2.GetUsageTrendsRequest, context: Any) -> Any:
        v = Violations()
        context_id = optional_id(v, request.context_id, "context_id", "context")
        if request.type:
            validation.check_type(v, request.type)
        window = request.window or "hour"
        bounds = window_bounds(
            v, window=window, last=request.last, now=datetime.now(UTC),
            start=to_datetime(request.start_time) if request.HasField("start_time") else None,
            end=to_datetime(request.end_time) if request.HasField("end_time") else None,
        )
        v.raise_if_any()
        buckets = await self._store.usage(bounds, context_id=context_id, type_=request.type)
        return context_service_pb2.GetUsageTrendsResponse(
            window=window,
            buckets=[context_pb2.UsageBucket(start_time=timestamp(b.start), end_time=timestamp(b.end), reads=b.reads,
                                             writes=b.writes, active_contexts=b.active_contexts) for b in buckets],
            total_reads=sum(b.reads for b in buckets),
            total_writes=sum(b.writes for b in buckets),
        )

    # --- replica --------------------------------------------------------------------------------

    async def GetInfo(self, request: context_service_pb2.GetInfoRequest, context: Any) -> Any:
        return context_service_pb2.GetInfoResponse(
            info=self._replica.service_info(), context_count=await self._store.count_contexts(),
            max_layer_bytes=self._settings.max_layer_bytes, max_context_bytes=self._settings.max_context_bytes,
        )
