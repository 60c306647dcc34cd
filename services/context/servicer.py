"""ContextService: contexts, their layers, the resolved view, sharing, analytics and replica information.

Every field rule the contract states (context_service.proto's buf.validate options) has been checked
before a method here runs; what is left in code needs the update mask, a setting or the database.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import grpc

from chassis import Replica
from chassis.errors import NotFound, Violations
from chassis.idempotency import idempotent
from chassis.identity import require_principal
from chassis.protos import timestamp, to_datetime, to_struct
from chassis.resources import Key, Keyset, UpdateMask, optional_id, resource_id
from chassis.standard_rpcs import HealthRpcs
from protomesh.context.v1 import context_pb2, context_service_pb2, context_service_pb2_grpc
from services.context import requests
from services.context.deps import ContextDeps
from services.context.guards import Access
from services.context.merge import resolve
from services.context.messages import STATUS_FROM_PROTO, STATUS_TO_PROTO, context_message, layer_message, mib
from services.context.payload import Limits, sanitize
from services.context.settings import ContextSettings
from services.context.store import ContextFilter, ContextStore
from services.context.windows import window_bounds

logger = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
"""The call's context, as every RPC method receives it."""

_CONTEXT_MASK = UpdateMask.of(context_service_pb2.UpdateContextRequest, resource=context_pb2.Context)
_LAYER_MASK = UpdateMask.of(context_service_pb2.UpdateLayerRequest, resource=context_pb2.Layer)
_CONTEXTS = Keyset.newest_first("contexts")
_LAYERS = Keyset("layers", (Key("position", int),))
# The contract refuses EXPIRED; UNSPECIFIED is left, which a mask naming `status` would otherwise store.
_SETTABLE_STATUSES = {context_pb2.CONTEXT_STATUS_ACTIVE: "active", context_pb2.CONTEXT_STATUS_ARCHIVED: "archived"}


def _context_id(value: str) -> uuid.UUID:
    return resource_id("context", value)


def _layer_id(value: str) -> uuid.UUID:
    return resource_id("layer", value)


def _access(*, owner_only: bool = False) -> Access:
    """What the call's principal may do; UNAUTHENTICATED without one (the interceptor refuses those first)."""
    return Access(require_principal(), owner_only=owner_only)


def _expiry(v: Violations, request: context_service_pb2.CreateContextRequest
            | context_service_pb2.UpdateContextRequest) -> datetime | None:
    return requests.expires_at(
        v, expire_time=request.expire_time if request.HasField("expire_time") else None,
        ttl=request.ttl if request.HasField("ttl") else None, now=datetime.now(UTC),
    )


class ContextServicer(HealthRpcs, context_service_pb2_grpc.ContextServiceServicer):
    """Implements protomesh.context.v1.ContextService over PostgreSQL."""

    def __init__(self, replica: Replica, deps: ContextDeps) -> None:
        self._replica = replica
        self._store: ContextStore = deps.store
        self._settings: ContextSettings = deps.settings
        self._layer_limits = Limits(max_bytes=self._settings.max_layer_bytes)
        self._metadata_limits = Limits(max_bytes=self._settings.max_metadata_bytes)

    # --- contexts -------------------------------------------------------------------------------

    async def ListContexts(
        self, request: context_service_pb2.ListContextsRequest, context: Context
    ) -> context_service_pb2.ListContextsResponse:
        access = _access()
        flt = ContextFilter(type=request.type, status=STATUS_FROM_PROTO.get(request.status, ""),
                            tags=tuple(requests.tags(request.tags)), owner=request.owner,
                            name_contains=request.name_contains, reader=access.principal.subject,
                            unrestricted=access.unrestricted)
        result = await self._store.contexts.list_page(flt, _CONTEXTS.page(request, flt))
        return context_service_pb2.ListContextsResponse(
            contexts=[context_message(r) for r in result.items], page_info=result.page_info(),
        )

    # Rules the contract cannot state (keys inside JSON payloads, the expiry against the clock). The
    # chassis also runs these `check_<Method>`s when the contract refuses a request, so one answer names
    # every bad field.

    def check_CreateContext(self, request: context_service_pb2.CreateContextRequest, v: Violations) -> None:
        sanitize(request.metadata, "metadata", self._metadata_limits, v)
        _expiry(v, request)

    def check_AddLayer(self, request: context_service_pb2.AddLayerRequest, v: Violations) -> None:
        sanitize(request.data, "data", self._layer_limits, v)

    @idempotent(context_service_pb2.CreateContextResponse)
    async def CreateContext(
        self, request: context_service_pb2.CreateContextRequest, context: Context
    ) -> context_service_pb2.CreateContextResponse:
        v = Violations()
        metadata, _ = sanitize(request.metadata, "metadata", self._metadata_limits, v)
        expires_at = _expiry(v, request)
        v.raise_if_any()
        row = await self._store.contexts.create(
            name=request.name, type_=request.type, owner=require_principal().subject, metadata=metadata,
            tags=requests.tags(request.tags), shared_with=requests.subjects(request.shared_with),
            expires_at=expires_at,
        )
        logger.info("context created", extra={"context_id": str(row.id), "context_type": row.type})
        return context_service_pb2.CreateContextResponse(context=context_message(row))

    async def GetContext(
        self, request: context_service_pb2.GetContextRequest, context: Context
    ) -> context_service_pb2.GetContextResponse:
        row = await self._store.contexts.read(_context_id(request.context_id), _access())
        return context_service_pb2.GetContextResponse(context=context_message(row))

    async def UpdateContext(
        self, request: context_service_pb2.UpdateContextRequest, context: Context
    ) -> context_service_pb2.UpdateContextResponse:
        context_id = _context_id(request.context_id)
        v = Violations()
        paths = _CONTEXT_MASK.paths(request, v)
        requests.check_not_cleared(v, request, paths, ("name",))
        changes = _CONTEXT_MASK.copied(request, paths, "name")
        if "metadata" in paths:
            changes["metadata"], _ = sanitize(request.metadata, "metadata", self._metadata_limits, v)
        if "tags" in paths:
            changes["tags"] = requests.tags(request.tags)
        if "status" in paths and v.check(request.status in _SETTABLE_STATUSES, "status",
                                         "required: CONTEXT_STATUS_ACTIVE or CONTEXT_STATUS_ARCHIVED"):
            changes["status"] = _SETTABLE_STATUSES[request.status]
        if "expire_time" in paths or "ttl" in paths:
            changes["expires_at"] = _expiry(v, request)
        v.raise_if_any()
        row = await self._store.contexts.update(context_id, _access(), request.expected_version,
                                               changes)
        return context_service_pb2.UpdateContextResponse(context=context_message(row))

    async def DeleteContext(
        self, request: context_service_pb2.DeleteContextRequest, context: Context
    ) -> context_service_pb2.DeleteContextResponse:
        access = _access(owner_only=True)
        deleted_layers = await self._store.contexts.delete(_context_id(request.context_id), access,
                                                          request.expected_version)
        logger.info("context deleted", extra={"context_id": request.context_id})
        return context_service_pb2.DeleteContextResponse(context_id=request.context_id,
                                                         deleted_layers=deleted_layers)

    # --- layers ---------------------------------------------------------------------------------

    async def ListLayers(
        self, request: context_service_pb2.ListLayersRequest, context: Context
    ) -> context_service_pb2.ListLayersResponse:
        context_id = _context_id(request.context_id)
        page = _LAYERS.page(request, (request.context_id, request.layer_type))
        result = await self._store.layers.list_page(context_id, _access(), layer_type=request.layer_type,
                                               page=page)
        return context_service_pb2.ListLayersResponse(
            layers=[layer_message(r) for r in result.items], page_info=result.page_info(),
        )

    @idempotent(context_service_pb2.AddLayerResponse)
    async def AddLayer(
        self, request: context_service_pb2.AddLayerRequest, context: Context
    ) -> context_service_pb2.AddLayerResponse:
        context_id = _context_id(request.context_id)
        v = Violations()
        data, size = sanitize(request.data, "data", self._layer_limits, v)
        v.raise_if_any()
        layer, row = await self._store.layers.add(
            context_id, _access(), name=request.name, layer_type=request.layer_type, data=data,
            size=size, position=request.position, max_context_bytes=self._settings.max_context_bytes,
        )
        return context_service_pb2.AddLayerResponse(layer=layer_message(layer), context=context_message(row))

    async def GetLayer(
        self, request: context_service_pb2.GetLayerRequest, context: Context
    ) -> context_service_pb2.GetLayerResponse:
        context_id = _context_id(request.context_id)
        layer = await self._store.layers.read(context_id, _layer_id(request.layer_id), _access())
        return context_service_pb2.GetLayerResponse(layer=layer_message(layer))

    async def UpdateLayer(
        self, request: context_service_pb2.UpdateLayerRequest, context: Context
    ) -> context_service_pb2.UpdateLayerResponse:
        context_id, layer_id = _context_id(request.context_id), _layer_id(request.layer_id)
        v = Violations()
        paths = _LAYER_MASK.paths(request, v)
        requests.check_not_cleared(v, request, paths, ("name", "layer_type", "position"))
        changes = _LAYER_MASK.copied(request, paths, "name", "layer_type", "position")
        if "data" in paths:
            changes["data"], changes["size_bytes"] = sanitize(request.data, "data", self._layer_limits, v)
        v.raise_if_any()
        layer, row = await self._store.layers.update(context_id, layer_id, _access(),
                                                    request.expected_version, changes,
                                                    self._settings.max_context_bytes)
        return context_service_pb2.UpdateLayerResponse(layer=layer_message(layer), context=context_message(row))

    async def DeleteLayer(
        self, request: context_service_pb2.DeleteLayerRequest, context: Context
    ) -> context_service_pb2.DeleteLayerResponse:
        context_id, layer_id = _context_id(request.context_id), _layer_id(request.layer_id)
        row = await self._store.layers.delete(context_id, layer_id, _access(), request.expected_version)
        return context_service_pb2.DeleteLayerResponse(layer_id=request.layer_id, context=context_message(row))

    async def GetResolvedContext(
        self, request: context_service_pb2.GetResolvedContextRequest, context: Context
    ) -> context_service_pb2.GetResolvedContextResponse:
        row, layers = await self._store.layers.read_all(_context_id(request.context_id), _access())
        return context_service_pb2.GetResolvedContextResponse(
            context=context_message(row),
            data=to_struct(resolve(layer.data for layer in layers)),
            layer_ids=[str(layer.id) for layer in layers],
        )

    # --- sharing --------------------------------------------------------------------------------

    async def ShareContext(
        self, request: context_service_pb2.ShareContextRequest, context: Context
    ) -> context_service_pb2.ShareContextResponse:
        access = _access(owner_only=True)
        row = await self._store.contexts.change_shares(_context_id(request.context_id), access, add=request.service)
        return context_service_pb2.ShareContextResponse(context=context_message(row))

    async def UnshareContext(
        self, request: context_service_pb2.UnshareContextRequest, context: Context
    ) -> context_service_pb2.UnshareContextResponse:
        access = _access(owner_only=True)
        row = await self._store.contexts.change_shares(_context_id(request.context_id), access, remove=request.service)
        return context_service_pb2.UnshareContextResponse(context=context_message(row))

    # --- analytics ------------------------------------------------------------------------------

    async def GetContextAnalytics(
        self, request: context_service_pb2.GetContextAnalyticsRequest, context: Context
    ) -> context_service_pb2.GetContextAnalyticsResponse:
        row = await self._store.contexts.peek(_context_id(request.context_id), _access())
        reads, writes, by_type = await self._store.analytics.context_usage(row.id)
        return context_service_pb2.GetContextAnalyticsResponse(
            analytics=context_pb2.ContextAnalytics(
                context_id=str(row.id), status=STATUS_TO_PROTO[row.status], layer_count=row.layer_count,
                size_bytes=row.size_bytes, size_mb=mib(row.size_bytes), access_count=row.access_count,
                reads_last_24h=reads, writes_last_24h=writes, last_access_time=timestamp(row.last_accessed_at),
                layers_by_type=by_type, create_time=timestamp(row.created_at),
            )
        )

    async def GetAnalyticsSummary(
        self, request: context_service_pb2.GetAnalyticsSummaryRequest, context: Context
    ) -> context_service_pb2.GetAnalyticsSummaryResponse:
        summary = await self._store.analytics.summary()
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

    async def GetUsageTrends(
        self, request: context_service_pb2.GetUsageTrendsRequest, context: Context
    ) -> context_service_pb2.GetUsageTrendsResponse:
        v = Violations()
        context_id = optional_id(v, request.context_id, "context_id", "context")
        window = request.window or "hour"
        bounds = window_bounds(
            v, window=window, last=request.last, now=datetime.now(UTC),
            start=to_datetime(request.start_time) if request.HasField("start_time") else None,
            end=to_datetime(request.end_time) if request.HasField("end_time") else None,
        )
        v.raise_if_any()
        if context_id is not None:
            await self._check_trends_access(context_id)
        buckets = await self._store.analytics.usage(bounds, context_id=context_id, type_=request.type)
        return context_service_pb2.GetUsageTrendsResponse(
            window=window,
            buckets=[context_pb2.UsageBucket(start_time=timestamp(b.start), end_time=timestamp(b.end), reads=b.reads,
                                             writes=b.writes, active_contexts=b.active_contexts) for b in buckets],
            total_reads=sum(b.reads for b in buckets),
            total_writes=sum(b.writes for b in buckets),
        )

    async def _check_trends_access(self, context_id: uuid.UUID) -> None:
        """One context's trends are for those who may read it; a deleted context's stay readable (its
        usage rows outlive it, and nobody can be checked against a list that is gone)."""
        with contextlib.suppress(NotFound):
            await self._store.contexts.peek(context_id, _access())

    # --- replica --------------------------------------------------------------------------------

    async def GetInfo(
        self, request: context_service_pb2.GetInfoRequest, context: Context
    ) -> context_service_pb2.GetInfoResponse:
        return context_service_pb2.GetInfoResponse(
            info=self._replica.service_info(), context_count=await self._store.contexts.count(),
            max_layer_bytes=self._settings.max_layer_bytes, max_context_bytes=self._settings.max_context_bytes,
        )
