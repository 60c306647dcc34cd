"""The audit trail, the replica's side: every write and every denied call is recorded once (docs/authorization.md,
"Audit trail").

The call interceptor (chassis.interceptors) asks, when a call has ended,

    if recorder.wants(method, code, principal):
        await recorder.record(method, code, request, context)

and the recorder writes one `protomesh.identity.v1.AuditRecorded` event into the service's outbox, in a
transaction of its own (a denial happens before the servicer touched the database, and a failed write
rolled its own transaction back, so the record cannot ride on the call's transaction). The outbox relay
publishes it, and the identity service keeps it in `identity.audit_records` (services/identity/audit/).

- A write is an RPC of the contracts whose idempotency_level is not NO_SIDE_EFFECTS: recorded whatever
  its outcome. A denial is UNAUTHENTICATED or PERMISSION_DENIED on any RPC. A NOT_FOUND because the
  object belongs to another organization is not a denial (tenancy hides the object; it refuses nothing).
- What is recorded: time, principal (subject, kind, API key id, OAuth client), organization, whether the
  principal is a platform admin (cross-organization), action (the gRPC path), resource (the request's id
  field bound in the REST path), decision, status, trace id, source address, service and replica.
  Never a request or response body, so never a secret.
- The call waits for the record's commit, so an acknowledged call has its record in the outbox. When
  PostgreSQL refuses it, the record waits in memory (bounded) and is retried in the background.

Which methods are writes, and where their resource id is, is read from the descriptors once, at startup.

Denials the gateway's ext_authz check answers (no credential, a bad token, a bad API key, a key over its
rate: no replica's interceptor sees those calls) are recorded by the identity service's check handler
through `Recorder.record_refusal` (services/identity/oauth/authz.py), with the RPC a REST path binds to
(`rest_binding`), so they read like the chassis' own records.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import psycopg
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import MethodDescriptor
from psycopg_pool import AsyncConnectionPool

from chassis import telemetry
from chassis.contracts import mesh_grpc_services
from chassis.events import outbox
from chassis.identity import InvalidClaims, Principal, parse_claims_header
from protomesh.identity.v1 import audit_pb2

logger = logging.getLogger(__name__)

EVENT = audit_pb2.AuditRecorded
"""The event every service publishes (on its one subject, events.protomesh.identity.v1.audit_recorded)."""

DENIALS: frozenset[grpc.StatusCode] = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})
"""Statuses that make a call a denial (recorded on any RPC, reads included)."""

FORWARDED_FOR = "x-forwarded-for"
MAX_PENDING = 10_000
"""Records kept in memory while PostgreSQL refuses them; beyond this the oldest are dropped (and logged)."""
RETRY_SECONDS = 1.0
MAX_RESOURCE_CHARS = 256
_CONTRACT_PREFIX = "protomesh."
_PATH_VARIABLE = re.compile(r"\{([^}=]+)(?:=[^}]*)?\}")
_NOT_RESOURCES = frozenset({"request_id", "page_token"})

_KINDS: Mapping[str, int] = {
    "user": audit_pb2.AUDIT_PRINCIPAL_KIND_USER,
    "api_key": audit_pb2.AUDIT_PRINCIPAL_KIND_API_KEY,
}


@dataclass(frozen=True)
class AuditedMethod:
    """What the recorder knows of one RPC of the contracts, read once from its descriptor."""

    write: bool
    """Not NO_SIDE_EFFECTS: every call is recorded, not only denials."""
    resource: tuple[str, ...] = ()
    """The request field (a path of names) holding the id of the resource the call is about, if any."""


_READ = AuditedMethod(write=False)


@functools.cache
def audited_methods() -> Mapping[str, AuditedMethod]:
    """Every RPC of the contracts by gRPC path (`/pkg.Service/Method`). Standard RPCs (health, reflection) and
    anything outside `protomesh.*` are not in it, so they are never writes."""
    pool = descriptor_pool.Default()
    found: dict[str, AuditedMethod] = {}
    for name in mesh_grpc_services():
        if not name.startswith(_CONTRACT_PREFIX):
            continue
        for method in pool.FindServiceByName(name).methods:
            level = method.GetOptions().idempotency_level
            found[f"/{name}/{method.name}"] = AuditedMethod(
                write=level != descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS, resource=resource_field(method))
    return found


def resource_field(method: MethodDescriptor) -> tuple[str, ...]:
    """The request field naming the call's resource: the last `*_id` variable of its REST path
    (`/v1/organizations/{organization_id}/members/{user_id}` -> user_id; `/v1/contexts/{context_id}/shares/{service}`
    -> context_id), else its last variable, else a top-level `*_id` string field."""
    options = method.GetOptions()
    if options.HasExtension(annotations_pb2.http):
        rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
        pattern = getattr(rule, rule.WhichOneof("pattern") or "get", "")
        path = pattern.path if isinstance(pattern, http_pb2.CustomHttpPattern) else str(pattern)
        variables = _PATH_VARIABLE.findall(path)
        ids = [v for v in variables if v.endswith("_id")]
        if variables:
            return tuple((ids or variables)[-1].split("."))
    for field in method.input_type.fields:
        if (field.name.endswith("_id") and field.name not in _NOT_RESOURCES and not field.is_repeated
                and field.type == field.TYPE_STRING):
            return (field.name,)
    return ()


def resource_of(request: Any, path: tuple[str, ...]) -> str:
    """The id at `path` in the request ("" when absent or not text)."""
    value: Any = request
    for name in path:
        value = getattr(value, name, None)
        if value is None:
            return ""
    return value[:MAX_RESOURCE_CHARS] if isinstance(value, str) else ""


@dataclass(frozen=True)
class _RestBinding:
    verb: str
    pattern: re.Pattern[str]
    action: str
    resource_group: int
    """The regex group of the path variable holding the resource id (0 for none)."""
    specificity: tuple[int, ...]


_TEMPLATE_PART = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_.]*)(?:=([^}]*))?\}|[^{]+")


def _template_regex(template: str) -> str | None:
    """A regex for a google.api.http path template, each variable a group (None if not understood).
    The same reading as the gateway's routes (chassis.tooling.envoy_config), without importing the tooling."""
    pattern, position = "", 0
    for part in _TEMPLATE_PART.finditer(template):
        if part.start() != position:
            return None
        position = part.end()
        if part.group(1) is None:
            pattern += re.escape(part.group(0))
        elif part.group(2) in (None, "*"):
            pattern += "([^/]+)"
        elif part.group(2) == "**":
            pattern += "(.+)"
        else:
            return None
    return pattern if position == len(template) else None


@functools.cache
def _rest_bindings() -> tuple[_RestBinding, ...]:
    """Every REST binding of the contracts, ordered as the gateway matches them (literal segments first)."""
    pool = descriptor_pool.Default()
    found: list[_RestBinding] = []
    for name in mesh_grpc_services():
        if not name.startswith(_CONTRACT_PREFIX):
            continue
        for method in pool.FindServiceByName(name).methods:
            options = method.GetOptions()
            if not options.HasExtension(annotations_pb2.http):
                continue
            top: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
            resource = resource_field(method)
            for rule in (top, *top.additional_bindings):
                kind = rule.WhichOneof("pattern")
                if kind is None or kind == "custom":
                    continue
                path = str(getattr(rule, kind))
                regex = _template_regex(path)
                if regex is None:
                    continue
                variables = list(_PATH_VARIABLE.findall(path))
                held = ".".join(resource)
                found.append(_RestBinding(
                    kind.upper(), re.compile(regex), f"/{name}/{method.name}",
                    variables.index(held) + 1 if held in variables else 0,
                    tuple(0 if "{" not in seg else 2 if "**" in seg else 1 for seg in path.strip("/").split("/"))))
    return tuple(sorted(found, key=lambda binding: binding.specificity))


def rest_binding(verb: str, path: str) -> tuple[str, str] | None:
    """(the RPC's gRPC path, the resource id in the path or "") of a REST call, or None for no binding."""
    for binding in _rest_bindings():
        if binding.verb != verb.upper():
            continue
        matched = binding.pattern.fullmatch(path)
        if matched is None:
            continue
        resource = matched.group(binding.resource_group) if binding.resource_group else ""
        return binding.action, resource[:MAX_RESOURCE_CHARS]
    return None


def principal_kind(principal: Principal | None) -> int:
    """The record's principal kind; a `service` is a service account (`client:`) or a mesh service (`service:`)."""
    if principal is None:
        return audit_pb2.AUDIT_PRINCIPAL_KIND_ANONYMOUS
    if principal.kind == "service":
        return (audit_pb2.AUDIT_PRINCIPAL_KIND_MESH_SERVICE if principal.subject.startswith("service:")
                else audit_pb2.AUDIT_PRINCIPAL_KIND_SERVICE_ACCOUNT)
    return _KINDS.get(principal.kind, audit_pb2.AUDIT_PRINCIPAL_KIND_UNSPECIFIED)


def principal_of(claims: str | None) -> Principal | None:
    """The principal of the claims the interceptor accepted (None: anonymous, or claims it could not read).

    Read from the claims, not chassis.current_principal(): a call refused before the interceptor set its
    principal still holds the service's own in its context."""
    if not claims:
        return None
    try:
        return parse_claims_header(claims)
    except InvalidClaims:
        return None


def source_address(metadata: Mapping[str, str], peer: str) -> str:
    """The client's address: the last X-Forwarded-For entry (the one the gateway appended: earlier entries
    are whatever the client sent), else the connection's peer (`ipv4:127.0.0.1:53412` -> `127.0.0.1:53412`)."""
    forwarded = metadata.get(FORWARDED_FOR, "")
    if forwarded:
        return forwarded.rsplit(",", 1)[-1].strip()[:128]
    return peer.partition(":")[2] if peer.startswith(("ipv4:", "ipv6:")) else peer


def trace_id(metadata: Mapping[str, str]) -> str:
    """The active span's trace id, else the one in the incoming traceparent, else ""."""
    ids = telemetry.current_ids()
    if ids:
        return ids[0]
    parts = metadata.get("traceparent", "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else ""


class Recorder:
    """Records a replica's writes and denials through its outbox. One per replica; the interceptor holds it.

    `pool` returns the service's pool once the database is open (the interceptor is built before it).
    """

    def __init__(self, service: str, instance: str, pool: Callable[[], AsyncConnectionPool | None]) -> None:
        self._service = service
        self._instance = instance
        self._pool = pool
        self._methods = audited_methods()
        self._pending: collections.deque[audit_pb2.AuditRecorded] = collections.deque()
        self._retrying: asyncio.Task[None] | None = None
        self._warned_no_database = False
        self.recorded = 0
        """Records this replica committed to its outbox (for tests and logs)."""

    def wants(self, method: str, code: grpc.StatusCode, principal: Principal | None = None) -> bool:
        """Whether the call is recorded: a denial, a write, or anything a platform admin does (it acts across
        organizations, and every such action is audited, marked cross_org). One dict lookup per call.

        The cost: each read of a platform admin commits one outbox row too. The local admin is the caller of
        the CLI, the README's examples and (today) the benchmark's mesh side, so those reads pay it; an
        organization member's reads do not."""
        return (code in DENIALS or self._methods.get(method, _READ).write
                or (principal is not None and principal.platform_admin))

    def build(self, method: str, code: grpc.StatusCode, request: Any, principal: Principal | None,
              metadata: Mapping[str, str], peer: str) -> audit_pb2.AuditRecorded:
        """The record of one call (no body: ids, names and addresses only)."""
        record = audit_pb2.AuditRecord(
            record_id=str(uuid.uuid4()),
            principal=principal.subject if principal else "",
            principal_kind=principal_kind(principal),  # type: ignore[arg-type]
            api_key_id=principal.api_key_id if principal else "",
            client_id=principal.client_id if principal else "",
            organization_id=principal.organization if principal else "",
            cross_org=bool(principal and principal.platform_admin),
            action=method,
            resource=resource_of(request, self._methods.get(method, _READ).resource),
            decision=audit_pb2.AUDIT_DECISION_DENIED if code in DENIALS else audit_pb2.AUDIT_DECISION_ALLOWED,
            status=code.name,
            trace_id=trace_id(metadata),
            source_address=source_address(metadata, peer),
            service=self._service,
            instance_id=self._instance,
        )
        record.time.GetCurrentTime()
        return audit_pb2.AuditRecorded(record=record)

    async def record(self, method: str, code: grpc.StatusCode, request: Any, context: grpc.aio.ServicerContext,
                     claims: str | None) -> None:
        """Record the call (never raises: a call's answer does not depend on its record). `claims` are the
        verified claims the interceptor accepted from the call (None when there were none)."""
        try:
            if code == grpc.StatusCode.OK and context.cancelled():
                # The client went away mid-call (the task was cancelled, which the interceptor does not see
                # as an error): its write may or may not have committed, and the record says so.
                code = grpc.StatusCode.CANCELLED
            metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
            event = self.build(method, code, request, principal_of(claims), metadata, context.peer())
        except Exception:
            logger.exception("audit record could not be built", extra={"method": method})
            return
        await self._store(event)

    async def record_refusal(self, action: str, code: grpc.StatusCode, principal: Principal | None,
                             metadata: Mapping[str, str], *, resource: str = "", peer: str = "") -> None:
        """Record a call refused before any replica's interceptor saw it: the gateway's ext_authz check
        answering no credential, a bad token, a bad API key (UNAUTHENTICATED) or a key over its rate
        (RESOURCE_EXHAUSTED), always a denial. `metadata`: the original request's headers as the check saw
        them (x-forwarded-for, traceparent); never a credential is read from them. Never raises."""
        try:
            event = self.build(action, code, None, principal, metadata, peer)
            event.record.decision = audit_pb2.AUDIT_DECISION_DENIED
            event.record.resource = resource[:MAX_RESOURCE_CHARS]
        except Exception:
            logger.exception("audit record could not be built", extra={"method": action})
            return
        await self._store(event)

    async def _store(self, event: audit_pb2.AuditRecorded) -> None:
        try:
            await self._commit(event)
        except Exception as exc:  # PostgreSQL away: keep the record and retry in the background
            self._keep(event, exc)

    async def _commit(self, event: audit_pb2.AuditRecorded) -> None:
        pool = self._pool()
        if pool is None:
            if not self._warned_no_database:
                self._warned_no_database = True
                logger.warning("audit records are not kept: the service has no database (no outbox)")
            return
        try:
            async with pool.connection() as conn, conn.transaction():
                # The event id is the record's id: a record retried after a commit whose answer was lost
                # meets its own row (the outbox's event_id is unique) and is not written twice.
                await outbox.add(conn, event, subject=f"audit/{self._service}", source=self._service,
                                 event_id=event.record.record_id)
        except psycopg.errors.UniqueViolation:
            return
        self.recorded += 1

    def _keep(self, event: audit_pb2.AuditRecorded, exc: Exception) -> None:
        if len(self._pending) >= MAX_PENDING:
            dropped = self._pending.popleft()
            logger.error("audit record dropped: too many waiting for PostgreSQL",
                         extra={"action": dropped.record.action, "record_id": dropped.record.record_id})
        self._pending.append(event)
        logger.warning("audit record waits for PostgreSQL", extra={"waiting": len(self._pending), "error": repr(exc)})
        if self._retrying is None or self._retrying.done():
            self._retrying = asyncio.create_task(self._retry(), name=f"audit-retry-{self._service}")

    async def _retry(self) -> None:
        while self._pending:
            await asyncio.sleep(RETRY_SECONDS)
            while self._pending:
                try:
                    await self._commit(self._pending[0])
                except Exception:
                    break  # still away: wait and try again
                self._pending.popleft()

    async def close(self) -> None:
        """Stop retrying (at shutdown); what still waits is logged, not silently gone."""
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrying
        if self._pending:
            logger.error("audit records not kept at shutdown: PostgreSQL refused them",
                         extra={"records": len(self._pending)})
