"""Call policies declared in the contracts (protomesh.options.v1), with per-deployment overrides."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

import grpc
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool

from protomesh.options.v1 import resilience_pb2

if TYPE_CHECKING:
    from google.protobuf.internal.extension_dict import _ExtensionFieldDescriptor

# The generated stubs type extensions as plain FieldDescriptors; Extensions[...] needs the extendee and the value type.
_SERVICE_POLICY = cast(
    "_ExtensionFieldDescriptor[descriptor_pb2.ServiceOptions, resilience_pb2.ServicePolicy]",
    resilience_pb2.service_policy,
)
_CALL_POLICY = cast(
    "_ExtensionFieldDescriptor[descriptor_pb2.MethodOptions, resilience_pb2.CallPolicy]",
    resilience_pb2.call_policy,
)
_CODES = {
    resilience_pb2.RETRY_CODE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    resilience_pb2.RETRY_CODE_RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    resilience_pb2.RETRY_CODE_DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
}
OVERRIDES_ENV = "PROTOMESH_POLICY_OVERRIDES"
"""JSON overriding contract defaults per deployment, e.g. '{"protomesh.context.v1.ContextService": {"timeout": 2},
"protomesh.context.v1.ContextService/GetContext": {"max_attempts": 4}}'."""


@dataclass(frozen=True)
class RetrySettings:
    """How an idempotent call is retried."""

    max_attempts: int = 3
    codes: frozenset[grpc.StatusCode] = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
    initial_backoff: float = 0.05
    max_backoff: float = 1.0


@dataclass(frozen=True)
class MethodPolicy:
    """The policy of one method: deadline, idempotency, retries."""

    timeout: float = 5.0
    idempotent: bool = False
    retry: RetrySettings = field(default_factory=RetrySettings)

    @property
    def attempts(self) -> int:
        """Attempts allowed: retries only ever apply to idempotent methods."""
        return self.retry.max_attempts if self.idempotent else 1


@dataclass(frozen=True)
class TargetPolicy:
    """Limits for calls to one target (a service, or an external integration)."""

    failure_threshold: int = 5
    recovery_timeout: float = 5.0
    max_concurrent: int = 64
    default: MethodPolicy = field(default_factory=MethodPolicy)


def _seconds(duration: Any, fallback: float) -> float:
    return duration.ToNanoseconds() / 1e9 if duration.ByteSize() else fallback


def _retry(proto: resilience_pb2.RetryPolicy, base: RetrySettings) -> RetrySettings:
    if not proto.ByteSize():
        return base
    return RetrySettings(
        max_attempts=proto.max_attempts or base.max_attempts,
        codes=frozenset(_CODES[c] for c in proto.retry_codes if c in _CODES) or base.codes,
        initial_backoff=_seconds(proto.initial_backoff, base.initial_backoff),
        max_backoff=_seconds(proto.max_backoff, base.max_backoff),
    )


def _call(proto: resilience_pb2.CallPolicy, base: MethodPolicy) -> MethodPolicy:
    return replace(base, timeout=_seconds(proto.timeout, base.timeout), retry=_retry(proto.retry, base.retry))


def _apply_override(policy: Any, values: dict[str, Any]) -> Any:
    if isinstance(policy, MethodPolicy):
        retry = replace(policy.retry, **{k: v for k, v in values.items()
                                         if k in ("max_attempts", "initial_backoff", "max_backoff")})
        return replace(policy, retry=retry, **{k: v for k, v in values.items() if k == "timeout"})
    return replace(policy, **{k: v for k, v in values.items()
                              if k in ("failure_threshold", "recovery_timeout", "max_concurrent")})


class PolicyBook:
    """Looks up policies by gRPC service and method, from the contracts plus overrides."""

    def __init__(self, overrides: dict[str, dict[str, Any]] | None = None,
                 pool: descriptor_pool.DescriptorPool | None = None) -> None:
        self._pool = pool or descriptor_pool.Default()
        if overrides is None:
            raw = os.environ.get(OVERRIDES_ENV, "").strip()
            overrides = json.loads(raw) if raw else {}
        self._overrides = overrides
        self._targets: dict[str, TargetPolicy] = {}
        self._methods: dict[str, MethodPolicy] = {}

    def target(self, service: str) -> TargetPolicy:
        """Limits for calls to a gRPC service (full name), or to any named target."""
        if service not in self._targets:
            policy = TargetPolicy()
            try:
                desc: descriptor.ServiceDescriptor | None = self._pool.FindServiceByName(service)
            except KeyError:
                desc = None
            if desc is not None:
                options = desc.GetOptions().Extensions[_SERVICE_POLICY]
                policy = TargetPolicy(
                    failure_threshold=options.breaker.failure_threshold or policy.failure_threshold,
                    recovery_timeout=_seconds(options.breaker.recovery_timeout, policy.recovery_timeout),
                    max_concurrent=options.max_concurrent_calls or policy.max_concurrent,
                    default=_call(options.default_call, policy.default),
                )
            if service in self._overrides:
                policy = _apply_override(policy, self._overrides[service])
                policy = replace(policy, default=_apply_override(policy.default, self._overrides[service]))
            self._targets[service] = policy
        return self._targets[service]

    def method(self, service: str, method: str) -> MethodPolicy:
        """The policy of `service/method` (full service name, short method name)."""
        key = f"{service}/{method}"
        if key not in self._methods:
            target = self.target(service)
            policy = target.default
            try:
                desc = self._pool.FindServiceByName(service).FindMethodByName(method)
            except KeyError:
                desc = None
            if desc is not None:
                options = desc.GetOptions()
                idempotent = options.idempotency_level in (descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
                                                           descriptor_pb2.MethodOptions.IDEMPOTENT)
                policy = replace(_call(options.Extensions[_CALL_POLICY], policy), idempotent=idempotent)
            if key in self._overrides:
                policy = _apply_override(policy, self._overrides[key])
            self._methods[key] = policy
        return self._methods[key]


IDEMPOTENCY_KEY_METADATA = "idempotency-key"
"""Metadata naming a write's idempotency key (chassis.idempotency reads the same name)."""


def keyed(policy: MethodPolicy, request: Any, metadata: Any = None) -> MethodPolicy:
    """The policy of one call: a write carrying an idempotency key may be retried like an idempotent one.

    The service applies a keyed write once and answers a repeat with the first result
    (chassis.idempotency), so a retry on another replica cannot double it. The key is a non-empty
    `request_id` field (AIP-155) or the `idempotency-key` metadata.
    """
    if policy.idempotent:
        return policy
    has_key = bool(getattr(request, "request_id", "")) or any(
        name == IDEMPOTENCY_KEY_METADATA and value for name, value in (metadata or ()))
    return replace(policy, idempotent=True) if has_key else policy
