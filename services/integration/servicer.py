"""IntegrationService: integrations, their probes and invocations, limits, caches, breakers and clients."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from chassis import Replica
from chassis.authz import creating_organization
from chassis.crypto import Cipher
from chassis.errors import FailedPrecondition, NotFound, Violations
from chassis.idempotency import idempotent
from chassis.protos import from_struct, to_struct
from chassis.resources import Keyset, UpdateMask, resource_id
from chassis.standard_rpcs import HealthRpcs
from protomesh.common.v1 import service_info_pb2
from protomesh.integration.v1 import integration_pb2, integration_service_pb2, integration_service_pb2_grpc
from services.integration import validation
from services.integration.clients.base import ClientSpec, whole_numbers
from services.integration.connections import IntegrationConnections, ProbeResult, policy_of
from services.integration.deps import IntegrationDeps
from services.integration.kinds import BY_KIND, KIND_NAMES, SPECS
from services.integration.messages import (
    NOT_SERVING,
    SERVING,
    bucket_message,
    cache_message,
    counters_message,
    duration,
    integration_message,
    probe_message,
    step_message,
)
from services.integration.rows import IntegrationRow
from services.integration.settings import IntegrationSettings
from services.integration.store import IntegrationFilter, IntegrationStore
from services.integration.targets import TargetRefused

logger = logging.getLogger(__name__)

pb = integration_service_pb2
_MASK = UpdateMask.of(pb.UpdateIntegrationRequest, resource=integration_pb2.Integration)
_INTEGRATIONS = Keyset.newest_first("integrations")
CLIENT_KEY_HEADER = "x-client-key"  # pragma: allowlist secret - a header's name, not a key
PROBE_CONCURRENCY = 8


def _integration_id(value: str) -> uuid.UUID:
    return resource_id("integration", value)


def _spec_of_path(client_type: str) -> ClientSpec:
    spec = SPECS.get(client_type)
    if spec is None:
        raise NotFound("client type", client_type)
    return spec


def _present(keys: list[str]) -> dict[str, str]:
    """Stand-ins for stored credentials when validating a new config against them (values are not needed)."""
    return dict.fromkeys(keys, "stored")


class IntegrationServicer(HealthRpcs, integration_service_pb2_grpc.IntegrationServiceServicer):
    """Implements protomesh.integration.v1.IntegrationService."""

    def __init__(self, replica: Replica, deps: IntegrationDeps) -> None:
        self._replica = replica
        self._store: IntegrationStore = deps.store
        self._connections: IntegrationConnections = deps.integrations
        self._cipher: Cipher = deps.cipher
        self._settings: IntegrationSettings = deps.settings
        self._instance = replica.settings.instance_id

    # --- integrations ---------------------------------------------------------------------------

    async def ListIntegrations(
        self, request: pb.ListIntegrationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListIntegrationsResponse:
        # The contract checked the filters' forms (kind defined, enabled a boolean, label a key or key=value).
        enabled = validation.parse_enabled(request.enabled)
        label_key, label_value = validation.parse_label(request.label)
        flt = IntegrationFilter(kind=KIND_NAMES.get(request.kind, ""), name_contains=request.name_contains,
                                enabled=enabled, label_key=label_key, label_value=label_value)
        # After the filters: the page token is bound to the finished filter object.
        page = await self._store.list_page(flt, _INTEGRATIONS.page(request, flt))
        return pb.ListIntegrationsResponse(integrations=[integration_message(r) for r in page.items],
                                           page_info=page.page_info())

    def check_CreateIntegration(self, request: pb.CreateIntegrationRequest, v: Violations) -> None:
        """The kind's credential and config rules, which the contract cannot state. The chassis runs this
        with the contract's rules too, so one answer names every bad field."""
        spec = BY_KIND[request.kind]
        config = from_struct(request.config) if request.HasField("config") else {}
        credentials = dict(request.credentials)
        validation.check_credentials(v, spec, credentials)
        validation.check_config(v, spec, config, credentials)

    @idempotent(pb.CreateIntegrationResponse)
    async def CreateIntegration(
        self, request: pb.CreateIntegrationRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateIntegrationResponse:
        v = Violations()
        self.check_CreateIntegration(request, v)
        v.raise_if_any()
        spec = BY_KIND[request.kind]  # the contract refuses an unspecified or unknown kind
        config = from_struct(request.config) if request.HasField("config") else {}
        credentials = dict(request.credentials)
        organization = creating_organization("an integration")  # the caller's: the contract has no field to say another
        await self._check_targets(spec, config)
        integration_id = uuid.uuid4()
        row = await self._store.create(
            integration_id, organization=organization, name=request.name, kind=spec.client_type,
            description=request.description, config=config,
            sealed=self._cipher.seal(credentials, str(integration_id)), credential_keys=sorted(credentials),
            enabled=not request.disabled, labels=dict(request.labels))
        logger.info("integration created", extra={"integration_id": str(row.id), "kind": row.kind,
                                                   "organization": row.organization_id,
                                                   "has_credentials": bool(credentials)})
        return pb.CreateIntegrationResponse(integration=integration_message(row))

    async def _check_targets(self, spec: ClientSpec, config: dict[str, Any]) -> None:
        """Refuse now a (valid) config that points where integrations may not connect; every connection is
        checked again, after resolving names afresh."""
        v = Violations()
        for target in validation.targets_of(spec, config):
            try:
                await self._connections.shared.targets.precheck(target.host, target.port, target.field)
            except TargetRefused as exc:
                v.add(exc.field, exc.description)
        v.raise_if_any()

    async def GetIntegration(
        self, request: pb.GetIntegrationRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetIntegrationResponse:
        row = await self._store.get(_integration_id(request.integration_id))
        return pb.GetIntegrationResponse(integration=integration_message(row))

    async def UpdateIntegration(
        self, request: pb.UpdateIntegrationRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateIntegrationResponse:
        integration_id = _integration_id(request.integration_id)
        paths = _MASK.paths(request)  # expected_version >= 0 and a masked name's presence are the contract's
        row = await self._store.get(integration_id)
        spec = SPECS[row.kind]
        v = Violations()
        changes = _MASK.copied(request, paths, "name", "description", "labels", "enabled")
        credentials = dict(request.credentials) if "credentials" in paths else None
        if credentials is not None:
            validation.check_credentials(v, spec, credentials)
            changes["credential_keys"] = sorted(credentials)
        config = from_struct(request.config) if "config" in paths else row.config
        if "config" in paths or credentials is not None:
            # A new config must suit the credentials it will be used with, and new credentials the config.
            validation.check_config(v, spec, config, credentials if credentials is not None
                                    else _present(row.credential_keys))
            changes["config"] = config
        v.raise_if_any()
        if "config" in paths:
            if credentials is None and row.credential_keys:
                validation.check_binding(v, spec, row.config, config)
                v.raise_if_any()
            await self._check_targets(spec, config)
        sealed = self._cipher.seal(credentials, str(integration_id)) if credentials is not None else None
        updated = await self._store.update(integration_id, request.expected_version, changes, sealed,
                                           replace_credentials=credentials is not None)
        logger.info("integration updated", extra={"integration_id": str(integration_id), "fields": paths})
        return pb.UpdateIntegrationResponse(integration=integration_message(updated))

    async def DeleteIntegration(
        self, request: pb.DeleteIntegrationRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteIntegrationResponse:
        integration_id = _integration_id(request.integration_id)
        await self._store.delete(integration_id)
        await self._connections.forget(integration_id)
        logger.info("integration deleted", extra={"integration_id": str(integration_id)})
        return pb.DeleteIntegrationResponse(integration_id=str(integration_id))

    # --- probes ---------------------------------------------------------------------------------

    async def _check(self, row: IntegrationRow) -> ProbeResult:
        live = await self._connections.live(row)
        result = await self._connections.check(live.client)
        await self._store.record_probe(row.id, "health", result.ok, result.detail, result.seconds * 1000)
        return result

    async def CheckIntegrationHealth(
        self, request: pb.CheckIntegrationHealthRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckIntegrationHealthResponse:
        row = await self._store.get(_integration_id(request.integration_id))
        result = await self._check(row)
        breaker = await self._connections.breaker(row.id)
        return pb.CheckIntegrationHealthResponse(integration_id=str(row.id), probe=probe_message(result, "health"),
                                                 circuit_state=breaker["state"], instance_id=self._instance)

    async def GetIntegrationStatus(
        self, request: pb.GetIntegrationStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetIntegrationStatusResponse:
        row = await self._store.get(_integration_id(request.integration_id))
        live = await self._connections.live(row)
        breaker = await self._connections.breaker(row.id)
        return pb.GetIntegrationStatusResponse(
            integration=integration_message(row), calls=counters_message(self._connections.outcome(row.id)),
            circuit_state=breaker["state"],
            rate_limit=bucket_message("integration", live.bucket, live.policy, live.unlimited_admitted),
            cache=cache_message(live.cache, live.policy), in_flight=self._connections.in_flight(row.id, live.policy),
            instance_id=self._instance)

    async def TestIntegration(
        self, request: pb.TestIntegrationRequest, context: grpc.aio.ServicerContext
    ) -> pb.TestIntegrationResponse:
        row = await self._store.get(_integration_id(request.integration_id))
        live = await self._connections.live(row)
        result = await self._connections.exercise(live.client)
        await self._store.record_probe(row.id, "test", result.ok, result.detail, result.seconds * 1000)
        logger.info("integration tested", extra={"integration_id": str(row.id), "ok": result.ok})
        return pb.TestIntegrationResponse(integration_id=str(row.id), ok=result.ok,
                                          steps=[step_message(s) for s in result.steps],
                                          probe=probe_message(result, "test"))

    # --- invocation -----------------------------------------------------------------------------

    @idempotent(pb.InvokeIntegrationResponse, own_transaction=True)
    async def InvokeIntegration(
        self, request: pb.InvokeIntegrationRequest, context: grpc.aio.ServicerContext
    ) -> pb.InvokeIntegrationResponse:
        integration_id = _integration_id(request.integration_id)
        v = Violations()
        params = whole_numbers(from_struct(request.parameters)) if request.HasField("parameters") else {}
        v.check(len(json.dumps(params, separators=(",", ":"))) <= self._settings.max_parameters_bytes, "parameters",
                f"at most {self._settings.max_parameters_bytes} bytes of JSON")
        metadata = dict(context.invocation_metadata() or ())
        # The contract checked request.client_key; one from the header it never saw is checked here.
        client_key = request.client_key or str(metadata.get(CLIENT_KEY_HEADER, ""))
        v.check(not client_key or bool(validation.CLIENT_KEY.match(client_key)), "client_key",
                "1-128 visible ASCII characters")
        v.raise_if_any()
        row = await self._store.get(integration_id)
        spec = SPECS[row.kind]
        if spec.operation(request.operation) is None:
            v.add("operation", f"{spec.client_type} integrations offer: {', '.join(o.name for o in spec.operations)}")
        else:
            spec.validate_params(v, request.operation, params, row.config)
        v.raise_if_any()
        if not row.enabled:
            raise FailedPrecondition(f"integration {row.name!r} is disabled; enable it first",
                                     metadata={"integration_id": str(row.id)})
        result = await self._connections.invoke(row, request.operation, params, client_key=client_key,
                                         skip_cache=request.skip_cache)
        return pb.InvokeIntegrationResponse(result=to_struct(result.value), from_cache=result.from_cache,
                                            stale=result.stale, attempts=result.attempts,
                                            duration=duration(result.seconds), instance_id=self._instance)

    # --- limits, cache, breaker -----------------------------------------------------------------

    async def GetRateLimitStatus(
        self, request: pb.GetRateLimitStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetRateLimitStatusResponse:
        row = await self._store.get(_integration_id(request.integration_id))
        live = await self._connections.live(row)
        clients = sorted(live.clients.items(), key=lambda kv: kv[1].admitted + kv[1].rejected, reverse=True)[:100]
        return pb.GetRateLimitStatusResponse(
            integration_id=str(row.id),
            integration=bucket_message("integration", live.bucket, live.policy, live.unlimited_admitted),
            clients=[bucket_message(key, bucket, live.policy) for key, bucket in clients],
            instance_id=self._instance)

    async def GetCacheStats(
        self, request: pb.GetCacheStatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCacheStatsResponse:
        row = await self._store.get(_integration_id(request.integration_id))
        live = await self._connections.live(row)
        return pb.GetCacheStatsResponse(integration_id=str(row.id), cache=cache_message(live.cache, live.policy),
                                        instance_id=self._instance)

    async def ClearCache(
        self, request: pb.ClearCacheRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClearCacheResponse:
        row = await self._store.get(_integration_id(request.integration_id))
        live = await self._connections.live(row)
        cleared = live.cache.clear()
        logger.info("integration cache cleared", extra={"integration_id": str(row.id), "entries": cleared})
        return pb.ClearCacheResponse(integration_id=str(row.id), cleared_entries=cleared,
                                     cache=cache_message(live.cache, live.policy), instance_id=self._instance)

    async def GetCircuitBreakerStatus(
        self, request: pb.GetCircuitBreakerStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCircuitBreakerStatusResponse:
        row = await self._store.get(_integration_id(request.integration_id))
        policy = policy_of(row.config)
        status = await self._connections.breaker(row.id)
        opened_at = status.get("opened_at")
        reply = pb.GetCircuitBreakerStatusResponse(
            integration_id=str(row.id), state=status["state"], failure_count=int(status.get("failure_count") or 0),
            failure_threshold=int(status.get("threshold") or policy.failure_threshold),
            recovery_timeout=duration(float(status.get("recovery_timeout") or policy.recovery_timeout)),
            transitions=[integration_pb2.BreakerTransition(state=t.state, time=_ts(t.at))
                         for t in status["transitions"]],
            calls=counters_message(self._connections.outcome(row.id)), instance_id=self._instance)
        if opened_at and status["state"] != "closed":
            reply.open_time.CopyFrom(_ts(opened_at))
        return reply

    async def ResetCircuitBreaker(
        self, request: pb.ResetCircuitBreakerRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResetCircuitBreakerResponse:
        row = await self._store.get(_integration_id(request.integration_id))
        before = await self._connections.breaker(row.id)
        await self._connections.caller.breakers.reset(f"integration/{row.id}")
        after = await self._connections.breaker(row.id)
        logger.info("circuit breaker reset", extra={"integration_id": str(row.id), "previous": before["state"]})
        return pb.ResetCircuitBreakerResponse(integration_id=str(row.id), previous_state=before["state"],
                                              state=after["state"], instance_id=self._instance)

    # --- clients --------------------------------------------------------------------------------

    async def ListClients(
        self, request: pb.ListClientsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListClientsResponse:
        counts = await self._store.counts_by_kind()
        return pb.ListClientsResponse(clients=[
            integration_pb2.ClientKind(
                client_type=spec.client_type, kind=spec.kind, description=spec.description,
                operations=[o.name for o in spec.operations],
                cacheable_operations=[o.name for o in spec.operations if o.cacheable],
                config_fields=[*spec.config_fields, "resilience", "rate_limit", "cache"],
                credential_fields=spec.credential_fields, integration_count=counts.get(spec.client_type, 0))
            for spec in SPECS.values()])

    async def _client_health(self, client_type: str, rows: list[IntegrationRow]) -> integration_pb2.ClientHealth:
        limit = asyncio.Semaphore(PROBE_CONCURRENCY)

        async def one(row: IntegrationRow) -> service_info_pb2.DependencyHealth:
            async with limit:
                try:
                    result = await self._check(row)
                    ok, detail = result.ok, result.detail
                except FailedPrecondition as exc:  # e.g. credentials this replica cannot decrypt
                    ok, detail = False, exc.message
            return service_info_pb2.DependencyHealth(name=row.name, state=SERVING if ok else NOT_SERVING,
                                                     detail=detail, checked_at=_ts(time.time()))

        entries = list(await asyncio.gather(*(one(r) for r in rows)))
        state = service_info_pb2.HEALTH_STATE_UNSPECIFIED
        if entries:
            state = SERVING if all(e.state == SERVING for e in entries) else NOT_SERVING
        return integration_pb2.ClientHealth(client_type=client_type, state=state, integrations=entries)

    async def CheckAllClientsHealth(
        self, request: pb.CheckAllClientsHealthRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckAllClientsHealthResponse:
        rows = await self._store.enabled()
        reports = [await self._client_health(t, [r for r in rows if r.kind == t]) for t in SPECS]
        state = NOT_SERVING if any(r.state == NOT_SERVING for r in reports) else SERVING
        return pb.CheckAllClientsHealthResponse(state=state, clients=reports)

    async def CheckClientHealth(
        self, request: pb.CheckClientHealthRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckClientHealthResponse:
        spec = _spec_of_path(request.client_type)
        rows = await self._store.enabled(spec.client_type)
        return pb.CheckClientHealthResponse(health=await self._client_health(spec.client_type, rows))

    async def TestClient(
        self, request: pb.TestClientRequest, context: grpc.aio.ServicerContext
    ) -> pb.TestClientResponse:
        spec = _spec_of_path(request.client_type)
        credentials = dict(request.credentials)
        results: list[pb.ClientTestResult] = []
        if request.HasField("config") and len(request.config.fields) > 0:
            v = Violations()
            config = from_struct(request.config)
            validation.check_credentials(v, spec, credentials)
            validation.check_config(v, spec, config, credentials)
            v.raise_if_any()
            await self._check_targets(spec, config)
            client = self._connections.make_client(spec, f"{spec.client_type} test connection", config, credentials)
            try:
                outcome = await self._connections.exercise(client)
            finally:
                await client.close()
            results.append(pb.ClientTestResult(
                ok=outcome.ok, steps=[step_message(s) for s in outcome.steps], latency=duration(outcome.seconds)))
        else:  # no config: the registered integrations (credentials without config are the contract's error)
            for row in await self._store.enabled(spec.client_type):
                live = await self._connections.live(row)
                outcome = await self._connections.exercise(live.client)
                await self._store.record_probe(row.id, "test", outcome.ok, outcome.detail, outcome.seconds * 1000)
                results.append(pb.ClientTestResult(
                    integration_id=str(row.id), name=row.name, ok=outcome.ok,
                    steps=[step_message(s) for s in outcome.steps], latency=duration(outcome.seconds)))
        return pb.TestClientResponse(client_type=spec.client_type, ok=bool(results) and all(r.ok for r in results),
                                     results=results)

    # --- replica --------------------------------------------------------------------------------

    async def GetInfo(self, request: pb.GetInfoRequest, context: grpc.aio.ServicerContext) -> pb.GetInfoResponse:
        return pb.GetInfoResponse(
            info=self._replica.service_info(), integration_count=await self._store.count(),
            client_types=list(SPECS), encryption_key_id=self._cipher.key_id,
            encryption_key_source=self._cipher.source, probe_timeout=duration(self._settings.probe_timeout_seconds))


def _ts(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts
